"""Host description files: what a simulated Hyper-V host is, in YAML or JSON.

The lab's built-in hosts are such files (``hosts/gpu.yaml``, ``hosts/sriov.yaml``, ``hosts/plain.yaml``); a
test, or a user rehearsing a plan against a model of their own hosts, writes one the same way and passes its
path as ``--profile``. Every key, with the source a real host reports it from::

    os:                      # Get-CimInstance Win32_OperatingSystem
      caption: Microsoft Windows Server 2025 Datacenter
      version: 10.0.26100    # the build is the last part: 26100 Server 2025, 20348 Server 2022, 17763 Server 2019
    cpu:                     # Get-CimInstance Win32_Processor (one instance per socket)
      manufacturer: GenuineIntel      # or AuthenticAMD
      name: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
      sockets: 2
      cores_per_socket: 16
      threads_per_core: 2
    memory:                  # Get-VMHost MemoryCapacity; Get-VMHostNumaNode splits it over the nodes
      total_gib: 256
      numa_nodes: 2
    iov:                     # Get-VMHost IovSupport / IovSupportReasons (IOMMU, ACS, interrupt remapping)
      support: true
      reasons: []
    versions:                # Get-VMHostSupportedVersion: the configuration versions, and the default
      supported: ["8.0", "9.0", "10.0", "11.0", "12.0"]
      default: "12.0"
    automatic_checkpoints: false   # what New-VM gives AutomaticCheckpointsEnabled (Windows clients: true)
    cluster_node: false            # a Failover Cluster node (Get-Service ClusSvc: Running)
    nics:                    # physical adapters for external switches; vfs > 0: SR-IOV with that many VFs
      - {name: Ethernet, description: Intel(R) Ethernet Controller X710, vfs: 0}
    switches:                # VM switches the host already has (New-VMSwitch at start)
      - {name: lab-switch, type: Internal}          # or {name: sriov, nic: "SLOT 3", iov: true}
    devices:                 # PCI devices for Discrete Device Assignment (Get-PnpDevice, Get-VMHostAssignableDevice)
      - name: NVIDIA A2
        class: Display       # Get-PnpDevice Class: Display (GPU), SCSIAdapter (NVMe controller), Net (NIC)
        instance_id: PCI\\VEN_10DE&DEV_25B6&SUBSYS_157E10DE&REV_A1\\4&2CD8A6F&0&0018
        location_path: PCIROOT(0)#PCI(0300)#PCI(0000)
        mmio_mib: 16384      # the MMIO its BARs need in the VM (Microsoft's DDA survey script reports it)
        mitigation_driver: false   # false: Dismount-VMHostAssignableDevice needs -Force
        dismounted: false    # true: already given up by the host (Disable-PnpDevice + Dismount at start)
    partitionable_gpus:      # Get-VMHostPartitionableGpu (Windows Server 2025)
      - name: "\\\\?\\PCI#VEN_10DE&DEV_25B6…"
        valid_partition_counts: [1, 2, 4, 8]
        partition_count: 4
        location_path: PCIROOT(0)#PCI(0200)#PCI(0000)
        total: {VRAM: 1000000000, Encode: 1000000000, Decode: 1000000000, Compute: 1000000000}

A key that is not listed here, or a value of the wrong kind, is refused with one sentence naming the file and the
key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .model import GB, MB, HostHardware, HostNic, PartitionableGpu, PciDevice

HOSTS = Path(__file__).with_name("hosts")
_SECTIONS = {
    "os": {"caption", "version"},
    "cpu": {"manufacturer", "name", "sockets", "cores_per_socket", "threads_per_core"},
    "memory": {"total_gib", "numa_nodes"},
    "iov": {"support", "reasons"},
    "versions": {"supported", "default"},
    "automatic_checkpoints": None, "cluster_node": None, "nics": None, "switches": None, "devices": None,
    "partitionable_gpus": None,
}
_DEVICE_KEYS = {"name", "class", "instance_id", "location_path", "mmio_mib", "mitigation_driver", "dismounted"}
_GPU_KEYS = {"name", "valid_partition_counts", "partition_count", "location_path", "total"}
_NIC_KEYS = {"name", "description", "vfs"}
_SWITCH_KEYS = {"name", "type", "nic", "iov"}


class HostFileError(ValueError):
    """A host description that cannot be used: one sentence naming the file and the key."""


def builtin(name: str) -> Path:
    return HOSTS / f"{name}.yaml"


def load(spec: str) -> HostHardware:
    """``spec`` is a built-in host's name (``gpu``, ``sriov``, ``plain``) or a path to a YAML or JSON file."""
    path = Path(spec)
    if not path.suffix and builtin(spec).exists():
        path = builtin(spec)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in HOSTS.glob("*.yaml")))
        raise HostFileError(f"host description '{spec}' is neither a file nor a built-in host ({known})")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise HostFileError(f"host description {path} cannot be read: {str(exc).splitlines()[0]}") from None
    return parse(data, str(path))


def parse(data: Any, where: str = "the host description") -> HostHardware:
    if not isinstance(data, dict):
        raise HostFileError(f"{where}: expected a mapping of sections ({', '.join(_SECTIONS)})")
    _known(where, "", data, set(_SECTIONS))
    for section, keys in _SECTIONS.items():
        if keys is not None and section in data:
            _known(where, section + ".", _mapping(where, section, data[section]), keys)
    os_ = data.get("os") or {}
    cpu = data.get("cpu") or {}
    memory = data.get("memory") or {}
    iov = data.get("iov") or {}
    versions = data.get("versions") or {}
    try:
        hardware = HostHardware(
            os_caption=str(os_.get("caption", "Microsoft Windows Server 2025 Datacenter")),
            os_version=str(os_.get("version", "10.0.26100")),
            cpu_manufacturer=str(cpu.get("manufacturer", "GenuineIntel")),
            cpu_name=str(cpu.get("name", "Intel(R) Xeon(R) CPU")),
            sockets=int(cpu.get("sockets", 1)), cores_per_socket=int(cpu.get("cores_per_socket", 4)),
            threads_per_core=int(cpu.get("threads_per_core", 2)),
            memory_capacity=int(float(memory.get("total_gib", 64)) * GB), numa_nodes=int(memory.get("numa_nodes", 1)),
            iov_support=bool(iov.get("support", False)), iov_support_reasons=[str(r) for r in iov.get("reasons", [])],
            supported_versions=[str(v) for v in versions.get("supported", ["8.0", "9.0", "10.0"])],
            default_version=str(versions.get("default", "10.0")),
            automatic_checkpoints=bool(data.get("automatic_checkpoints", False)),
            cluster_node=bool(data.get("cluster_node", False)),
            pci_devices=[_device(where, i, d) for i, d in enumerate(data.get("devices") or [])],
            partitionable_gpus=[_gpu(where, i, g) for i, g in enumerate(data.get("partitionable_gpus") or [])],
            nics=[_nic(where, i, n) for i, n in enumerate(data.get("nics") or [])],
            switches=[_switch(where, i, s) for i, s in enumerate(data.get("switches") or [])])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, HostFileError):
            raise
        raise HostFileError(f"{where}: a value has the wrong kind: {exc}") from None
    if hardware.default_version not in hardware.supported_versions:
        raise HostFileError(f"{where}: versions.default {hardware.default_version} is not among versions.supported")
    return hardware


def _known(where: str, prefix: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise HostFileError(f"{where}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(allowed))})")


def _mapping(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HostFileError(f"{where}: '{key}' must be a mapping")
    return value


def _device(where: str, index: int, item: Any) -> PciDevice:
    item = _mapping(where, f"devices[{index}]", item)
    _known(where, f"devices[{index}].", item, _DEVICE_KEYS)
    for key in ("name", "instance_id", "location_path"):
        if not item.get(key):
            raise HostFileError(f"{where}: devices[{index}].{key} is required")
    return PciDevice(name=str(item["name"]), instance_id=str(item["instance_id"]),
                     location_path=str(item["location_path"]), pnp_class=str(item.get("class", "Display")),
                     mmio_bytes=int(item.get("mmio_mib", 256)) * MB,
                     mitigation_driver=bool(item.get("mitigation_driver", False)),
                     enabled=not item.get("dismounted", False),
                     state="dismounted" if item.get("dismounted") else "host")


def _gpu(where: str, index: int, item: Any) -> PartitionableGpu:
    item = _mapping(where, f"partitionable_gpus[{index}]", item)
    _known(where, f"partitionable_gpus[{index}].", item, _GPU_KEYS)
    counts = [int(c) for c in item["valid_partition_counts"]]
    return PartitionableGpu(name=str(item["name"]), valid_partition_counts=counts,
                            partition_count=int(item["partition_count"]),
                            total={str(k): int(v) for k, v in (item.get("total") or {}).items()},
                            location_path=str(item.get("location_path", "")))


def _nic(where: str, index: int, item: Any) -> HostNic:
    item = _mapping(where, f"nics[{index}]", item)
    _known(where, f"nics[{index}].", item, _NIC_KEYS)
    return HostNic(str(item["name"]), str(item.get("description", item["name"])), int(item.get("vfs", 0)))


def _switch(where: str, index: int, item: Any) -> dict[str, Any]:
    item = _mapping(where, f"switches[{index}]", item)
    _known(where, f"switches[{index}].", item, _SWITCH_KEYS)
    if item.get("type", "Internal") not in ("Internal", "Private") and not item.get("nic"):
        raise HostFileError(f"{where}: switches[{index}] needs type Internal or Private, or a nic for an external one")
    return dict(item)
