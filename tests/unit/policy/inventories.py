"""Two realistic inventories for policy tests: a vSphere-shaped one and a Proxmox-shaped one, hosts that differ.

vSphere endpoint ``vc``: esx-gpu (everything on: A100 capable+enabled, a T4 held by a VM outside the stack,
vGPU profiles, Shared Direct graphics, an SR-IOV PF with 2 free VFs), esx-off (GPU capable but not enabled, graphics
Shared, SR-IOV disabled), esx-noiommu (no IOMMU, nested unsupported, old hardware versions), esx-shared (an A40 in
graphics type Shared), esx-reboot (an A40 enabled for passthrough, not active until a reboot), esx-claimed (an A40
that a powered-off Dynamic DirectPath VM takes at power-on), esx-unknown (nothing reported).
Proxmox endpoint ``pve``: pve1 (L4 with mdev types and a mapping, an SR-IOV PF whose free VFs are unknown),
pve2 (no IOMMU, nested off), pve3 (GPU sharing its IOMMU group, nested unknown)."""

from virtplane.inventory import DeviceClaim, Host, Inventory, PciDevice, PciMapping, SriovFunction, VgpuType

A100, T4, NIC = "0000:3b:00.0", "0000:af:00.0", "0000:5e:00.0"
L4, PVE_NIC = "0000:01:00.0", "0000:41:00.0"


DEVICE_IDS = {"A100 PCIe 40GB": "0x20f1", "A100 PCIe 80GB": "0x20b5", "Tesla T4": "0x1eb8", "A40": "0x2235",
              "L4": "0x27b8", "A2": "0x25b6"}


def gpu(address: str, name: str, capable: bool | None = True, enabled: bool | None = True, used: tuple = (),
        group: int | None = None, active: bool | None = None, **facts) -> PciDevice:
    """An NVIDIA GPU with the PCI device id of the board its name ends with ("GA100 [A100 PCIe 40GB]")."""
    device_id = next((i for board, i in DEVICE_IDS.items() if name.endswith(f"[{board}]")), "0x1234")
    return PciDevice(**{"address": address, "class_id": "0x0302", "vendor_id": "0x10de", "device_id": device_id,
                        "vendor_name": "NVIDIA Corporation", "device_name": name, "passthrough_capable": capable,
                        "passthrough_enabled": enabled, "passthrough_active": active, "in_use_by": list(used),
                        "iommu_group": group, **facts})


def esx(name: str, **facts) -> Host:
    base = {"name": name, "endpoint": "vc", "hypervisor": "vsphere", "product": "VMware ESXi", "version": "8.0.2",
            "online": True, "cpu_vendor": "intel", "hardware_virtualization": True, "slat": True, "iommu": True,
            "nested": True, "memory_total_mib": 524288, "memory_free_mib": 262144, "graphics_mode": "sharedDirect",
            "max_hardware_version": "vmx-21", "devices_in_use_known": True}
    return Host(**{**base, **facts})


def pve(name: str, **facts) -> Host:
    base = {"name": name, "endpoint": "pve", "hypervisor": "proxmox", "product": "Proxmox VE", "version": "8.2",
            "online": True, "cpu_vendor": "amd", "hardware_virtualization": True, "slat": True, "iommu": True,
            "nested": True, "memory_total_mib": 262144, "memory_free_mib": 131072}
    return Host(**{**base, **facts})


VSPHERE = Inventory(hosts=[
    esx("esx-gpu",
        pci_devices=[gpu(A100, "GA100 [A100 PCIe 40GB]"), gpu(T4, "TU104GL [Tesla T4]", used=("other-team-vm",))],
        vgpu_types=[VgpuType(profile="grid_a100-20c", device=A100, available=2, total=2),
                    VgpuType(profile="grid_a100-10c", device=A100, available=4, total=4)],
        sriov=[SriovFunction(address=NIC, enabled=True, vfs_max=8, vfs_enabled=4, vfs_free=2)]),
    esx("esx-off", graphics_mode="shared", pci_devices=[gpu("0000:3c:00.0", "GA102GL [A40]", enabled=False)],
        sriov=[SriovFunction(address=NIC, enabled=False, vfs_max=8)], memory_free_mib=65536),
    esx("esx-shared", pci_devices=[gpu("0000:3c:00.0", "GA102GL [A40]", graphics_type="shared")],
        vgpu_types=[VgpuType(profile="grid_a100-20c", device="0000:3c:00.0", available=2)]),
    esx("esx-reboot", pci_devices=[gpu("0000:3c:00.0", "GA102GL [A40]", active=False)]),
    esx("esx-claimed", pci_devices=[gpu("0000:3c:00.0", "GA102GL [A40]")],
        device_claims=[DeviceClaim(vm="render-farm-7", devices=["0000:3c:00.0"])]),
    esx("esx-noiommu", iommu=False, nested=False, max_hardware_version="vmx-13",
        pci_devices=[gpu("0000:3d:00.0", "TU104GL [Tesla T4]", capable=False, enabled=False)],
        memory_free_mib=32768),
    Host(name="esx-unknown", endpoint="vc", hypervisor="vsphere",
         pci_devices=[gpu("0000:3e:00.0", "GA100 [A100 PCIe 40GB]", capable=None, enabled=None)],
         vgpu_types=[VgpuType(profile="grid_a100-20c", device="0000:3e:00.0")],
         sriov=[SriovFunction(address=NIC)]),
])

PROXMOX = Inventory(hosts=[
    pve("pve1", pci_devices=[gpu(L4, "AD104GL [L4]", group=12)],
        vgpu_types=[VgpuType(profile="nvidia-471", device=L4, available=2, description="L4-12Q"),
                    VgpuType(profile="nvidia-472", device=L4, available=0, description="L4-24Q")],
        pci_mappings=[PciMapping(id="l4", addresses=[L4])],
        sriov=[SriovFunction(address=PVE_NIC, enabled=True, vfs_max=64, vfs_enabled=8)]),
    pve("pve2", iommu=False, nested=False, pci_devices=[gpu(L4, "AD104GL [L4]", capable=False, group=-1)]),
    pve("pve3", nested=None, pci_devices=[gpu(L4, "GA100 [A100 PCIe 80GB]", group=5),
                                          PciDevice(address="0000:02:00.0", class_id="0x0c03", vendor_id="0x1022",
                                                    device_id="0x149c", iommu_group=5)]),
])

BOTH = Inventory(hosts=[*VSPHERE.hosts, *PROXMOX.hosts])


def hyperv(name: str, **facts) -> Host:
    base = {"name": name, "endpoint": "hv", "hypervisor": "hyperv", "online": True, "cpu_vendor": "intel",
            "hardware_virtualization": True, "slat": True, "iommu": True, "nested": True,
            "memory_free_mib": 65536, "max_hardware_version": "10.0"}
    return Host(**{**base, **facts})
