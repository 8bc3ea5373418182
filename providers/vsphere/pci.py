"""GPUs and SR-IOV NICs both ways: read VirtualPCIPassthrough / VirtualSriovEthernetCard devices back into
the spec's shape, and build them from the spec and the host's PCI devices.

- ``Gpu("passthrough")``: a VirtualPCIPassthrough with a Dynamic DirectPath backing that allows the vendor
  and device ids of the GPU placement chose (any identical GPU of the host will do), or, when the stack
  names the ``device``, a fixed DeviceBackingInfo for exactly that PCI address.
- ``Gpu("vgpu", profile=…)``: a VirtualPCIPassthrough with a VmiopBackingInfo (NVIDIA GRID profile).
- ``Nic(adapter="sriov")``: a VirtualSriovEthernetCard whose physical function backing names the PF.

A VM given a device that maps more than 16 GB (a large-BAR GPU, passthrough or its C-series vGPU) gets the
extraConfig VMware documents for it: ``pciPassthru.use64bitMMIO = "TRUE"`` and ``pciPassthru.64bitMMIOSizeGB`` = its
large BARs added up, rounded up to a power of two (VMware blog "How to Enable Nvidia V100 GPU in Passthrough mode on
vSphere"; KB 2142307); BIOS firmware with such a device is refused by the policy (hw.mmio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from virtplane import gpus as boards
from virtplane.errors import VirtplaneError
from virtplane.inventory import GPU_CLASSES
from virtplane.placement import VENDOR_IDS, normalize_address
from virtplane.providers.vsphere.collector import retrieve_objects
from virtplane.specs import GpuSpec, NicSpec

_P = vim.vm.device.VirtualPCIPassthrough
_SRIOV = vim.vm.device.VirtualSriovEthernetCard
_VENDORS = {int(hex_id, 16): name for name, hex_id in VENDOR_IDS.items()}


def unsigned16(value: int | None) -> int:
    """A PCI id from the API's signed short (-32634) as the unsigned number it is (0x8086)."""
    return (value or 0) & 0xFFFF


def signed16(value: int) -> int:
    """An unsigned PCI id as the API's signed short (0x8086 -> -32634)."""
    value &= 0xFFFF
    return value - 0x10000 if value >= 0x8000 else value


def vendor_name(vendor_id: int | None) -> str | None:
    return None if vendor_id is None else _VENDORS.get(unsigned16(vendor_id))


def is_pci_gpu(device: Any) -> bool:
    return isinstance(device, _P)


def gpu_state(device: Any) -> dict[str, Any]:
    """One VirtualPCIPassthrough as the spec's ``Gpu``: mode, profile, device (the PCI address of a fixed
    backing; for Dynamic DirectPath the one it was assigned when vSphere reports it), vendor."""
    backing = device.backing
    if isinstance(backing, _P.VmiopBackingInfo):
        profile = backing.vgpu or None
        vendor = "nvidia" if profile and profile.startswith("grid_") else None
        return {"mode": "vgpu", "profile": profile, "device": None, "vendor": vendor}
    if isinstance(backing, _P.DynamicBackingInfo):
        allowed = list(backing.allowedDevice or [])
        assigned = getattr(backing, "assignedId", None)
        return {"mode": "passthrough", "profile": None,
                "device": normalize_address(assigned) if assigned else None,
                "vendor": vendor_name(allowed[0].vendorId) if allowed else None}
    if isinstance(backing, _P.DeviceBackingInfo):
        return {"mode": "passthrough", "profile": None,
                "device": normalize_address(backing.id) if backing.id else None,
                "vendor": vendor_name(backing.vendorId)}
    return {"mode": "passthrough", "profile": None, "device": None, "vendor": None}


def sriov_function(nic: Any) -> str | None:
    """The PCI address of the physical function an SR-IOV NIC is a virtual function of, or None."""
    backing = getattr(getattr(nic, "sriovBacking", None), "physicalFunctionBacking", None)
    return normalize_address(backing.id) if backing is not None and backing.id else None


def holds_devices(gpus: Sequence[Any] | None, nics: Sequence[Any] | None) -> bool:
    """True when a VM with these GPUs and NICs holds PCI devices (which need all its memory reserved)."""
    return bool(gpus) or any(nic.adapter == "sriov" for nic in nics or [])


@dataclass
class HostPci:
    """One host's PCI devices by address, the SR-IOV physical functions enabled on it, and the system id
    PCI backings name."""

    name: str
    system_id: str
    devices: dict[str, Any] = field(default_factory=dict)  # address -> vim.host.PciDevice
    sriov_enabled: list[str] = field(default_factory=list)  # PF addresses with SR-IOV enabled
    passthrough_enabled: set[str] = field(default_factory=set)  # addresses enabled for passthrough
    passthrough_active: set[str] = field(default_factory=set)  # enabled and the host rebooted since
    serving_vgpus: set[str] = field(default_factory=set)  # GPUs in Shared Direct or running vGPUs

    def device(self, address: str, what: str) -> Any:
        found = self.devices.get(normalize_address(address))
        if found is None:
            raise VirtplaneError(f"{what}: host {self.name} has no PCI device {address}")
        return found

    def gpu_for(self, gpu: GpuSpec, what: str) -> Any:
        """The GPU named by ``gpu.device`` (placement names one for a new VM), else the host's first GPU of the
        wanted vendor: those enabled for passthrough first (a server's own VGA chip is a display device too, but
        never enabled), then active ones (not waiting for a reboot), then those not serving vGPUs."""
        if gpu.device:
            return self.device(gpu.device, what)
        wanted = None if gpu.vendor is None else int(VENDOR_IDS[gpu.vendor], 16)
        order = sorted(self.devices, key=lambda a: (a not in self.passthrough_enabled, a not in self.passthrough_active,
                                                     a in self.serving_vgpus, a))
        for address in order:
            device = self.devices[address]
            if f"0x{unsigned16(device.classId):04x}"[:6] in GPU_CLASSES and (
                    wanted is None or unsigned16(device.vendorId) == wanted):
                return device
        kind = f"{gpu.vendor} GPU" if gpu.vendor else "GPU"
        raise VirtplaneError(f"{what}: host {self.name} has no {kind}")

    def function_for(self, nic: NicSpec, what: str) -> Any:
        """The SR-IOV physical function named by ``nic.device``, else the host's first one enabled."""
        if nic.device:
            return self.device(nic.device, what)
        if not self.sriov_enabled:
            raise VirtplaneError(f"{what}: host {self.name} has no SR-IOV physical function enabled")
        return self.device(self.sriov_enabled[0], what)


def fixed_backing(device: Any, host: HostPci) -> Any:
    """A DeviceBackingInfo for exactly this host PCI device."""
    return _P.DeviceBackingInfo(id=device.id, deviceId=f"{unsigned16(device.deviceId):x}",
                                systemId=host.system_id, vendorId=signed16(unsigned16(device.vendorId)),
                                deviceName=device.deviceName or "")


def new_gpu(gpu: GpuSpec, fixed: bool, host: HostPci | None, what: str, key: int) -> Any:
    """The VirtualPCIPassthrough for ``gpu``: vGPU, fixed passthrough (``fixed``: the stack named the
    device) or Dynamic DirectPath allowing that GPU model."""
    if gpu.mode == "vgpu":
        return _P(key=key, backing=_P.VmiopBackingInfo(vgpu=gpu.profile))
    if host is None:
        raise VirtplaneError(f"{what}: a passthrough GPU needs the host the VM runs on")
    device = host.gpu_for(gpu, what)
    if fixed:
        return _P(key=key, backing=fixed_backing(device, host))
    allowed = _P.AllowedDevice(vendorId=unsigned16(device.vendorId), deviceId=unsigned16(device.deviceId))
    return _P(key=key, backing=_P.DynamicBackingInfo(deviceName="", allowedDevice=[allowed]))


def _bar_gib(device: Any, host: HostPci | None) -> int | None:
    """The large BAR of one VirtualPCIPassthrough's device, in GiB (None: not a large-BAR device, or not known)."""
    backing = device.backing
    if isinstance(backing, _P.VmiopBackingInfo):
        described = boards.profile(backing.vgpu or "")
        sizes = [b.bar1_gib for b in boards.BOARDS.values() if described.series == "c" and b.token == described.board]
        size = min(sizes) if sizes else None
    elif isinstance(backing, _P.DynamicBackingInfo):
        allowed = list(backing.allowedDevice or [])
        size = boards.bar_gib(f"0x{unsigned16(allowed[0].vendorId):04x}", f"0x{unsigned16(allowed[0].deviceId):04x}",
                              None) if allowed else None
    elif isinstance(backing, _P.DeviceBackingInfo) and host is not None and backing.id:
        found = host.devices.get(normalize_address(backing.id))
        size = None if found is None else boards.bar_gib(f"0x{unsigned16(found.vendorId):04x}",
                                                          f"0x{unsigned16(found.deviceId):04x}", None,
                                                          found.deviceName)
    else:
        size = None
    return size if size is not None and size >= boards.LARGE_BAR_GIB else None


def large_bar_options(devices: Sequence[Any], host: HostPci | None) -> list[Any]:
    """The extraConfig a VM with these VirtualPCIPassthrough devices needs: 64-bit MMIO sized to its large BARs
    (none when it has no large-BAR device)."""
    bars = [size for device in devices if (size := _bar_gib(device, host)) is not None]
    if not bars:
        return []
    return [vim.option.OptionValue(key="pciPassthru.use64bitMMIO", value="TRUE"),
            vim.option.OptionValue(key="pciPassthru.64bitMMIOSizeGB", value=str(boards.mmio_size_gib(bars)))]


def new_sriov_nic(nic: NicSpec, host: HostPci | None, network_backing: Any, key: int, what: str) -> Any:
    """A VirtualSriovEthernetCard: a virtual function of ``nic.device`` (the PF), on the port group."""
    if host is None:
        raise VirtplaneError(f"{what}: an SR-IOV NIC needs the host the VM runs on")
    function = host.function_for(nic, what)
    backing = _SRIOV.SriovBackingInfo(physicalFunctionBacking=fixed_backing(function, host))
    return _SRIOV(key=key, backing=network_backing, sriovBacking=backing, addressType="generated",
                  connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True,
                                                                      connected=False))


def read_host_pci(content: Any, host: Any, name: str) -> HostPci:
    """The host's PCI devices, its enabled SR-IOV functions and the system id of its PCI backings: the
    id the compute resource's config target gives for the host's passthrough devices (vCenter), else the
    host's system UUID (the simulator lists no passthrough targets)."""
    rows = retrieve_objects(content, [host], vim.HostSystem,
                            ["hardware.pciDevice", "hardware.systemInfo", "config.pciPassthruInfo",
                             "config.graphicsInfo", "parent"])
    props = rows[0][1] if rows else {}
    devices = {normalize_address(d.id): d for d in props.get("hardware.pciDevice") or [] if d.id}
    passthru = [info for info in props.get("config.pciPassthruInfo") or [] if info.id]
    enabled = sorted(normalize_address(info.id) for info in passthru
                     if isinstance(info, vim.host.SriovInfo) and info.sriovEnabled)
    passthrough = {normalize_address(info.id) for info in passthru if info.passthruEnabled}
    active = {normalize_address(info.id) for info in passthru if info.passthruActive}
    vgpus = {normalize_address(info.pciId) for info in props.get("config.graphicsInfo") or []
             if info.pciId and (info.graphicsType == "sharedDirect" or info.vm)}
    system_id = _config_target_system_id(props.get("parent"), host)
    if system_id is None:
        system_id = getattr(props.get("hardware.systemInfo"), "uuid", None) or ""
    return HostPci(name, system_id, devices, enabled, passthrough, active, vgpus)


def _config_target_system_id(compute_resource: Any, host: Any) -> str | None:
    browser = getattr(compute_resource, "environmentBrowser", None)
    if browser is None:
        return None
    try:
        target = browser.QueryConfigTarget(host=host)
    except vmodl.MethodFault:
        return None
    for info in [*(getattr(target, "pciPassthrough", None) or []), *(getattr(target, "sriov", None) or [])]:
        if getattr(info, "systemId", None):
            return str(info.systemId)
    return None
