"""The lab's pool: three Intel hosts that differ on purpose (a pool cannot mix CPU vendors: ocaml/xapi/xapi_pool.ml
refuses a joining host of another vendor), one shared SR, the pool-wide networks of eth0 and eth1, a control
domain per host, and templates.

- ``xs-gpu`` (the master, 127.0.0.1): 256 GiB, IOMMU on, nested virtualization offered (VMX in its HVM
  featureset), an NVIDIA A100 (GRID A100-4C/-10C/-20C enabled, 10/4/2 per GPU; passthrough supported, not
  enabled) and an NVIDIA L4 hidden from dom0 for passthrough.
- ``xs-sriov`` (127.0.0.2): 128 GiB, IOMMU on, no VMX offered to HVM guests (no nested virtualization), an Intel
  X710 behind eth1 with SR-IOV enabled: the network ``lab-sriov`` (network_sriov, 8 virtual functions).
- ``xs-plain`` (127.0.0.3): 64 GiB, IOMMU off (VT-d disabled), only its Matrox BMC display (the system display
  device: supports passthrough, has nothing enabled).
- Templates: ``Other install media`` (a default template: BIOS boot from CD, no disks), ``Debian Bookworm 12``
  (a default template whose ``other_config:disks`` asks provision for a 10 GiB disk), and ``debian-12-base`` (a
  custom template with a 10 GiB disk and UEFI, as a user makes by converting a VM).

Host facts follow what XAPI stores: ``cpu_info`` (ocaml/xapi/create_misc.ml: cpu_count, socket_count, vendor,
modelname, flags as dom0 sees them, and the Xen featuresets as dash-separated hex words), ``capabilities`` (Xen's
``xen-3.0-x86_64``, ``hvm-3.0-x86_64``…), ``chipset_info`` (``iommu``), ``software_version``.
"""

from __future__ import annotations

from typing import Any

from .db import Db, stable_uuid
from .schema import NULL

GiB = 1024**3
MiB = 1024**2

_FLAGS = ("fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush acpi mmx fxsr sse sse2 ht syscall nx lm "
          "constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq monitor est ssse3 fma cx16 sse4_1 sse4_2 "
          "movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 bmi2 erms")
# Xen featureset words: word 1 is CPUID.1:ECX (bit 5 VMX), word 3 CPUID.0x80000001:ECX (bit 2 SVM).
_WITH_VMX = "1fcbfbff-f7fa3223-2c100800-00000121-0000000f-f1bf07a9-00405f4e-00000000-00000000-10000400"
_WITHOUT_VMX = "1fcbfbff-f7fa3203-2c100800-00000121-0000000f-f1bf07a9-00405f4e-00000000-00000000-10000400"
_CAPABILITIES = ["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"]
_SOFTWARE = {"product_brand": "XCP-ng", "product_version": "8.3.0", "platform_name": "XCP",
             "platform_version": "3.4.0", "xapi": "24.19", "xen": "4.17.5", "hostname": ""}

HOSTS: list[dict[str, Any]] = [
    {"name": "xs-gpu", "address": "127.0.0.1", "memory": 256 * GiB, "cpus": 64, "iommu": True,
     "features": _WITH_VMX, "model": "Intel(R) Xeon(R) Gold 6342 CPU @ 2.80GHz"},
    {"name": "xs-sriov", "address": "127.0.0.2", "memory": 128 * GiB, "cpus": 48, "iommu": True,
     "features": _WITHOUT_VMX, "model": "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz"},
    {"name": "xs-plain", "address": "127.0.0.3", "memory": 64 * GiB, "cpus": 16, "iommu": False,
     "features": _WITH_VMX, "model": "Intel(R) Xeon(R) E-2388G CPU @ 3.20GHz"},
]
DOM0_MEMORY = 4 * GiB
SRIOV_VFS = 8

A100 = ("NVIDIA Corporation", "GA100 [A100 PCIe 40GB]")
L4 = ("NVIDIA Corporation", "AD104GL [L4]")
MATROX = ("Matrox Electronics Systems Ltd.", "Integrated Matrox G200eW3 Graphics Controller")
X710 = ("Intel Corporation", "Ethernet Controller X710 for 10GbE SFP+")
GRID_A100 = (("GRID A100-4C", 4, 10), ("GRID A100-10C", 10, 4), ("GRID A100-20C", 20, 2))


def seed(pool: Any) -> None:
    """Fill ``pool.db`` with the lab pool; sets the pool's master address."""
    db: Db = pool.db
    sr = db.add("SR", {"name_label": "lab-nfs", "name_description": "NFS SR shared by the pool", "type": "nfs",
                       "content_type": "user", "shared": True, "physical_size": str(4096 * GiB),
                       "physical_utilisation": "0", "virtual_allocation": "0"}, uuid_=stable_uuid("sr lab-nfs"))
    hosts = [_host(db, spec) for spec in HOSTS]
    master = hosts[0]
    db.add("pool", {"name_label": "lab-pool", "master": master, "default_SR": sr,
                    "cpu_info": {"vendor": "GenuineIntel", "features_hvm": _WITHOUT_VMX}},
           uuid_=stable_uuid("pool lab-pool"))
    pool.master_address = HOSTS[0]["address"]
    eth = {}
    for device in ("eth0", "eth1"):
        eth[device] = db.add("network", {"name_label": f"Pool-wide network associated with {device}",
                                         "name_description": "", "bridge": f"xenbr{device[-1]}",
                                         "other_config": {}, "MTU": "1500"}, uuid_=stable_uuid(f"net {device}"))
    pifs: dict[tuple[str, str], str] = {}
    for host, spec in zip(hosts, HOSTS, strict=True):
        for index, device in enumerate(("eth0", "eth1")):
            pifs[(spec["name"], device)] = db.add("PIF", {
                "device": device, "network": eth[device], "host": host, "MAC": _mac(spec["name"], index),
                "MTU": "1500", "VLAN": "-1", "physical": True, "currently_attached": True,
                "management": device == "eth0", "managed": True, "capabilities": []},
                uuid_=stable_uuid(f"pif {spec['name']} {device}"))
    _gpus(db, hosts[0], hosts[2])
    _sriov(db, hosts[1], pifs[("xs-sriov", "eth1")])
    _templates(db, sr)


def _mac(host: str, index: int) -> str:
    digest = stable_uuid(f"mac {host} {index}").replace("-", "")
    return "00:16:3e:" + ":".join(digest[i:i + 2] for i in range(0, 6, 2))


def _host(db: Db, spec: dict[str, Any]) -> str:
    metrics = db.add("host_metrics", {"memory_total": str(spec["memory"]), "live": True},
                     uuid_=stable_uuid(f"metrics {spec['name']}"))
    cpu_info = {"cpu_count": str(spec["cpus"]), "socket_count": "2", "threads_per_core": "2", "nr_nodes": "2",
                "vendor": "GenuineIntel", "speed": "2800.000", "modelname": spec["model"], "family": "6",
                "model": "106", "stepping": "6", "flags": _FLAGS, "features_pv": _WITHOUT_VMX,
                "features_hvm": spec["features"], "features_hvm_host": spec["features"],
                "features_pv_host": _WITHOUT_VMX}
    host = db.add("host", {
        "name_label": spec["name"], "hostname": spec["name"], "address": spec["address"], "enabled": True,
        "API_version_major": "2", "API_version_minor": "21", "API_version_vendor": "XenSource",
        "software_version": {**_SOFTWARE, "hostname": spec["name"]}, "capabilities": list(_CAPABILITIES),
        "cpu_info": cpu_info, "metrics": metrics, "chipset_info": {"iommu": str(spec["iommu"]).lower()},
        "memory_overhead": str(512 * MiB), "edition": "xcp-ng", "virtual_hardware_platform_versions": ["0", "1", "2"],
        "display": "enabled"}, uuid_=stable_uuid(f"host {spec['name']}"))
    db.add("VM", {"name_label": f"Control domain on host: {spec['name']}", "is_control_domain": True,
                  "power_state": "Running", "resident_on": host, "is_a_template": False, "domid": "0",
                  "memory_static_max": str(DOM0_MEMORY), "memory_dynamic_max": str(DOM0_MEMORY),
                  "memory_dynamic_min": str(DOM0_MEMORY), "memory_static_min": str(DOM0_MEMORY),
                  "VCPUs_max": "16", "VCPUs_at_startup": "16", "domain_type": "pv"},
           uuid_=stable_uuid(f"dom0 {spec['name']}"))
    return host


def _pci(db: Db, host: str, address: str, class_name: str, names: tuple[str, str], driver: str) -> str:
    return db.add("PCI", {"class_name": class_name, "vendor_name": names[0], "device_name": names[1], "host": host,
                          "pci_id": address, "driver_name": driver}, uuid_=stable_uuid(f"pci {host} {address}"))


def _vgpu_type(db: Db, model: str, framebuffer_gib: int, implementation: str = "nvidia") -> str:
    passthrough = implementation == "passthrough"
    return db.add("VGPU_type", {
        "vendor_name": "" if passthrough else "NVIDIA Corporation", "model_name": model,
        "framebuffer_size": str(framebuffer_gib * GiB), "max_heads": "0" if passthrough else "1",
        "max_resolution_x": "0" if passthrough else "4096", "max_resolution_y": "0" if passthrough else "2160",
        "implementation": implementation, "identifier": "passthrough" if passthrough else f"nvidia-{model.lower()}",
        "experimental": False}, uuid_=stable_uuid(f"vgpu type {model}"))


def _gpus(db: Db, gpu_host: str, plain_host: str) -> None:
    passthrough = _vgpu_type(db, "passthrough", 0, "passthrough")
    grid = [(_vgpu_type(db, model, size), count) for model, size, count in GRID_A100]
    a100_group = db.add("GPU_group", {"name_label": f"Group of {A100[0]} {A100[1]} GPUs", "GPU_types": [A100[1]],
                                      "allocation_algorithm": "depth_first"}, uuid_=stable_uuid("group a100"))
    a100 = _pci(db, gpu_host, "0000:3b:00.0", "3D controller", A100, "nvidia")
    db.add("PGPU", {"PCI": a100, "GPU_group": a100_group, "host": gpu_host,
                    "supported_VGPU_types": [t for t, _ in grid] + [passthrough],
                    "enabled_VGPU_types": [t for t, _ in grid],
                    "supported_VGPU_max_capacities": {**{t: str(n) for t, n in grid}, passthrough: "1"},
                    "dom0_access": "enabled", "is_system_display_device": False}, uuid_=stable_uuid("pgpu a100"))
    l4_group = db.add("GPU_group", {"name_label": f"Group of {L4[0]} {L4[1]} GPUs", "GPU_types": [L4[1]],
                                    "allocation_algorithm": "depth_first"}, uuid_=stable_uuid("group l4"))
    l4 = _pci(db, gpu_host, "0000:af:00.0", "3D controller", L4, "pciback")
    db.add("PGPU", {"PCI": l4, "GPU_group": l4_group, "host": gpu_host, "supported_VGPU_types": [passthrough],
                    "enabled_VGPU_types": [passthrough], "supported_VGPU_max_capacities": {passthrough: "1"},
                    "dom0_access": "disabled", "is_system_display_device": False}, uuid_=stable_uuid("pgpu l4"))
    matrox_group = db.add("GPU_group", {"name_label": f"Group of {MATROX[0]} {MATROX[1]} GPUs",
                                        "GPU_types": [MATROX[1]], "allocation_algorithm": "depth_first"},
                          uuid_=stable_uuid("group matrox"))
    matrox = _pci(db, plain_host, "0000:03:00.0", "VGA compatible controller", MATROX, "mgag200")
    db.add("PGPU", {"PCI": matrox, "GPU_group": matrox_group, "host": plain_host,
                    "supported_VGPU_types": [passthrough], "enabled_VGPU_types": [],
                    "supported_VGPU_max_capacities": {passthrough: "1"}, "dom0_access": "enabled",
                    "is_system_display_device": True}, uuid_=stable_uuid("pgpu matrox"))


def _sriov(db: Db, host: str, physical: str) -> None:
    pci = _pci(db, host, "0000:5e:00.0", "Ethernet controller", X710, "i40e")
    db.set("PIF", physical, PCI=pci, capabilities=["sriov"])
    network = db.add("network", {"name_label": "lab-sriov", "name_description": "SR-IOV network on eth1 of xs-sriov",
                                 "bridge": "", "other_config": {}, "MTU": "1500"}, uuid_=stable_uuid("net lab-sriov"))
    logical = db.add("PIF", {"device": "eth1", "network": network, "host": host, "MAC": db.get("PIF", physical)["MAC"],
                             "MTU": "1500", "VLAN": "-1", "physical": False, "currently_attached": True,
                             "management": False, "managed": True, "capabilities": [], "PCI": NULL},
                     uuid_=stable_uuid("pif xs-sriov sriov"))
    sriov = db.add("network_sriov", {"physical_PIF": physical, "logical_PIF": logical, "requires_reboot": False,
                                     "configuration_mode": "sysfs"}, uuid_=stable_uuid("sriov xs-sriov eth1"))
    db.vfs_total[sriov] = SRIOV_VFS


def _template(db: Db, name: str, *, default: bool, firmware: str = "bios",
              other_config: dict[str, str] | None = None) -> str:
    return db.add("VM", {
        "name_label": name, "name_description": "", "is_a_template": True, "is_default_template": default,
        "power_state": "Halted", "memory_static_max": str(2 * GiB), "memory_dynamic_max": str(2 * GiB),
        "memory_dynamic_min": str(2 * GiB), "memory_static_min": str(512 * MiB), "VCPUs_max": "2",
        "VCPUs_at_startup": "2", "HVM_boot_policy": "BIOS order", "domid": "-1",
        "HVM_boot_params": {"order": "cdn", "firmware": firmware},
        "platform": {"nx": "true", "acpi": "1", "apic": "true", "pae": "true", "viridian": "false",
                     "device-model": "qemu-upstream-compat"},
        "other_config": {**({"default_template": "true"} if default else {}), **(other_config or {})}},
        uuid_=stable_uuid(f"template {name}"))


def _templates(db: Db, sr: str) -> None:
    _template(db, "Other install media", default=True, other_config={"install-methods": "cdrom"})
    sr_uuid = ""  # as shipped: the installer (xe vm-install, XenCenter) fills in the SR before provision
    disks = f'<provision><disk device="0" size="{10 * GiB}" sr="{sr_uuid}" bootable="true" type="system"/></provision>'
    _template(db, "Debian Bookworm 12", default=True, other_config={"disks": disks, "install-methods": "cdrom,http"})
    base = _template(db, "debian-12-base", default=False, firmware="uefi")
    vdi = db.add("VDI", {"name_label": "debian-12-base 0", "SR": sr, "virtual_size": str(10 * GiB), "type": "system",
                         "sharable": False, "read_only": False, "other_config": {}, "managed": True},
                 uuid_=stable_uuid("vdi debian-12-base"))
    db.add("VBD", {"VM": base, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                   "unpluggable": False, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                   "qos_algorithm_params": {}}, uuid_=stable_uuid("vbd debian-12-base"))
    db.set("SR", sr, virtual_allocation=str(10 * GiB))
