"""The simulated host's state: its hardware (seeded from a profile) and its VMs, disks, switches."""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
GB = 1024 * MB
DEFAULT_VM_ROOT = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"


@dataclass
class HardDrive:
    vm_id: uuid.UUID
    controller_type: str  # IDE | SCSI
    controller_number: int
    controller_location: int
    path: str
    id: str = ""


@dataclass
class NetworkAdapter:
    vm_id: uuid.UUID
    name: str
    switch_name: str = ""
    mac_address: str = ""
    iov_weight: int = 0
    vlan_mode: str = "Untagged"  # Untagged | Access
    access_vlan_id: int = 0
    id: str = ""


@dataclass
class AssignedDevice:
    vm_id: uuid.UUID
    instance_id: str
    location_path: str


@dataclass
class GpuPartition:
    vm_id: uuid.UUID
    gpu_name: str
    id: str
    sizes: dict[str, int] = field(default_factory=dict)  # MinPartitionVRAM … OptimalPartitionCompute


@dataclass
class Vm:
    vm_id: uuid.UUID
    name: str
    generation: int
    version: str
    path: str
    memory_startup: int = 512 * MB
    state: str = "Off"
    processor_count: int = 1
    dynamic_memory: bool = False
    memory_minimum: int = 512 * MB
    memory_maximum: int = 1024 * GB
    notes: str = ""
    automatic_stop_action: str = "Save"
    automatic_start_action: str = "StartIfRunning"
    guest_controlled_cache_types: bool = False
    low_mmio: int = 128 * MB
    high_mmio: int = 512 * MB
    expose_virtualization_extensions: bool = False
    secure_boot: str = "On"
    secure_boot_template: str = "MicrosoftWindows"
    hard_drives: list[HardDrive] = field(default_factory=list)
    adapters: list[NetworkAdapter] = field(default_factory=list)
    assigned_devices: list[AssignedDevice] = field(default_factory=list)
    gpu_partitions: list[GpuPartition] = field(default_factory=list)


@dataclass
class Vhd:
    path: str
    size: int
    vhd_type: str = "Dynamic"  # Dynamic | Fixed | Differencing
    parent_path: str = ""  # a differencing disk's parent (New-VHD -ParentPath -Differencing)

    @property
    def vhd_format(self) -> str:
        return "VHDX" if self.path.lower().endswith(".vhdx") else "VHD"


@dataclass
class Switch:
    id: uuid.UUID
    name: str
    switch_type: str  # External | Internal | Private
    notes: str = ""
    iov_enabled: bool = False
    net_adapter_name: str = ""


@dataclass
class PciDevice:
    """A host PCI device that can be dismounted for Discrete Device Assignment."""

    name: str
    instance_id: str
    location_path: str
    kind: str = "gpu"  # gpu | nic
    mitigation_driver: bool = False  # False: Dismount needs -Force
    state: str = "host"  # host | dismounted (a VM holding it is in Vm.assigned_devices)


@dataclass
class PartitionableGpu:
    name: str
    valid_partition_counts: list[int]
    partition_count: int
    total: dict[str, int]  # VRAM, Encode, Decode, Compute
    location_path: str = ""


@dataclass
class HostNic:
    name: str
    interface_description: str
    iov_virtual_function_count: int = 0  # 0: no SR-IOV


@dataclass
class HostHardware:
    cpu_vendor: str  # Intel | AMD
    logical_processor_count: int
    memory_capacity: int
    iov_support: bool
    iov_support_reasons: list[str]
    supported_versions: list[str]
    default_version: str
    pci_devices: list[PciDevice] = field(default_factory=list)
    partitionable_gpus: list[PartitionableGpu] = field(default_factory=list)
    nics: list[HostNic] = field(default_factory=list)
    os_name: str = "Microsoft Windows Server 2025 Datacenter"


VERSIONS = ["8.0", "9.0", "9.1", "9.2", "9.3", "10.0", "11.0", "12.0"]
NVIDIA_GPU = "PCI\\VEN_10DE&DEV_2236&SUBSYS_148210DE&REV_A1\\4&2CD8A6F&0&0018"
GPU_LOCATION = "PCIROOT(0)#PCI(0300)#PCI(0000)"


def profile(name: str) -> HostHardware:
    """A seeded host: ``gpu`` (Intel, IOMMU, one DDA GPU, one partitionable GPU), ``sriov`` (AMD, an SR-IOV
    NIC) or ``plain`` (no IOMMU, no GPU)."""
    if name == "gpu":
        return HostHardware(
            cpu_vendor="Intel", logical_processor_count=32, memory_capacity=256 * GB, iov_support=True,
            iov_support_reasons=[], supported_versions=VERSIONS, default_version="12.0",
            pci_devices=[PciDevice(name="NVIDIA A2", instance_id=NVIDIA_GPU, location_path=GPU_LOCATION)],
            partitionable_gpus=[PartitionableGpu(
                name="\\\\?\\PCI#VEN_10DE&DEV_25B6&SUBSYS_157E10DE&REV_A1#4&3A1F2B7&0&0010#{064092b3-625e-43bf-9eb5-dc845897dd59}",
                valid_partition_counts=[1, 2, 4, 8], partition_count=4, location_path="PCIROOT(0)#PCI(0200)#PCI(0000)",
                total={"VRAM": 1_000_000_000, "Encode": 18_446_744_073_709_551_615 // 1024,
                       "Decode": 1_000_000_000, "Compute": 1_000_000_000})],
            nics=[HostNic("Ethernet", "Intel(R) Ethernet Controller X710")])
    if name == "sriov":
        return HostHardware(
            cpu_vendor="AMD", logical_processor_count=64, memory_capacity=512 * GB, iov_support=True,
            iov_support_reasons=[], supported_versions=VERSIONS, default_version="12.0",
            nics=[HostNic("SLOT 3", "Mellanox ConnectX-5 Adapter", iov_virtual_function_count=8),
                  HostNic("Ethernet", "Broadcom NetXtreme Gigabit Ethernet")])
    if name == "plain":
        return HostHardware(
            cpu_vendor="Intel", logical_processor_count=8, memory_capacity=64 * GB, iov_support=False,
            iov_support_reasons=["To use SR-IOV on this system, the system BIOS must be updated to allow Windows to "
                                 "control PCI Express. Contact your system manufacturer for an update."],
            supported_versions=VERSIONS[:6], default_version="10.0",
            os_name="Microsoft Windows Server 2022 Datacenter",
            nics=[HostNic("Ethernet", "Realtek PCIe GbE Family Controller")])
    raise ValueError(f"unknown profile {name!r} (gpu, sriov, plain, or a JSON file)")


def load_profile(spec: str) -> HostHardware:
    """A profile name, or a JSON file with HostHardware's fields (nested lists as objects)."""
    if not spec.lower().endswith(".json"):
        return profile(spec)
    data = json.loads(Path(spec).read_text())
    data["pci_devices"] = [PciDevice(**d) for d in data.get("pci_devices", [])]
    data["partitionable_gpus"] = [PartitionableGpu(**g) for g in data.get("partitionable_gpus", [])]
    data["nics"] = [HostNic(**n) for n in data.get("nics", [])]
    return HostHardware(**data)


@dataclass
class Host:
    name: str
    hardware: HostHardware
    vms: list[Vm] = field(default_factory=list)
    vhds: dict[str, Vhd] = field(default_factory=dict)  # by path, lower case
    switches: list[Switch] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    def new_mac(self) -> str:
        return "00155D" + "".join(f"{self._rng.randrange(256):02X}" for _ in range(3))

    def vm(self, vm_id: uuid.UUID) -> Vm | None:
        return next((v for v in self.vms if v.vm_id == vm_id), None)

    def switch(self, name: str) -> Switch | None:
        return next((s for s in self.switches if s.name.lower() == name.lower()), None)

    def vhd(self, path: str) -> Vhd | None:
        return self.vhds.get(path.lower())

    def holder_of(self, path: str) -> Vm | None:
        return next((v for v in self.vms for d in v.hard_drives if d.path.lower() == path.lower()), None)

    def pci_device(self, location_path: str | None = None, instance_id: str | None = None) -> PciDevice | None:
        for device in self.hardware.pci_devices:
            if location_path and device.location_path.lower() == location_path.lower():
                return device
            if instance_id and device.instance_id.lower() == instance_id.lower():
                return device
        return None

    def dump(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, uuid.UUID):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return plain({"name": self.name, "hardware": asdict(self.hardware), "vms": [asdict(v) for v in self.vms],
                      "vhds": [asdict(v) for v in self.vhds.values()],
                      "switches": [asdict(s) for s in self.switches]})
