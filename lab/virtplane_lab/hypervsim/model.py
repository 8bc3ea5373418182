"""The simulated host's state: its hardware (from a host description, hostfile.py) and its VMs, disks, switches.

Storage layout as Hyper-V creates it ("Should I create a generation 1 or 2 virtual machine in Hyper-V?" and
"Plan for Hyper-V scalability in Windows Server", learn.microsoft.com): a Generation 1 VM has two IDE controllers
of two locations each, its DVD drive at IDE 1:0, and no SCSI controller until Add-VMScsiController adds one; a
Generation 2 VM made by New-VM has one SCSI controller and no IDE. A VM has at most four SCSI controllers of 64
locations each.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

MB = 1024 * 1024
GB = 1024 * MB
DEFAULT_VM_ROOT = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
DEFAULT_VHD_ROOT = "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"
MAX_SCSI_CONTROLLERS = 4
SCSI_LOCATIONS = 64
IDE_CONTROLLERS = 2
IDE_LOCATIONS = 2
MAX_NAME = 100  # Hyper-V Manager and the VMMS refuse longer virtual machine names


@dataclass
class HardDrive:
    vm_id: uuid.UUID
    controller_type: str  # IDE | SCSI
    controller_number: int
    controller_location: int
    path: str
    id: str = ""
    disk_number: int | None = None  # a pass-through physical disk (its Path is then a description, no file)


@dataclass
class NetworkAdapter:
    vm_id: uuid.UUID
    name: str
    switch_name: str = ""
    mac_address: str = ""
    iov_weight: int = 0
    vlan_mode: str = "Untagged"  # Untagged | Access
    access_vlan_id: int = 0
    mac_address_spoofing: str = "Off"
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
class Checkpoint:
    """A checkpoint (VMSnapshot): each of the VM's disks continues in a differencing .avhdx whose parent is the
    disk the VM had ("Using checkpoints", Hyper-V on Windows docs)."""

    id: uuid.UUID
    vm_id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    automatic: bool
    drives: dict[str, str] = field(default_factory=dict)  # differencing disk path -> its parent path


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
    automatic_checkpoints: bool = False
    checkpoint_type: str = "Production"
    guest_controlled_cache_types: bool = False
    low_mmio: int = 128 * MB
    high_mmio: int = 512 * MB
    expose_virtualization_extensions: bool = False
    secure_boot: str = "On"
    secure_boot_template: str = "MicrosoftWindows"
    scsi_controllers: int = 0
    is_clustered: bool = False
    hard_drives: list[HardDrive] = field(default_factory=list)
    dvd_drives: list[tuple[str, int, int]] = field(default_factory=list)  # (controller type, number, location)
    dvd_media: dict[tuple[str, int, int], str] = field(default_factory=dict)  # a DVD drive's ISO file (cmdlets_dvd)
    adapters: list[NetworkAdapter] = field(default_factory=list)
    assigned_devices: list[AssignedDevice] = field(default_factory=list)
    gpu_partitions: list[GpuPartition] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)


@dataclass
class Vhd:
    path: str
    size: int
    vhd_type: str = "Dynamic"  # Dynamic | Fixed | Differencing
    parent_path: str = ""  # a differencing disk's parent (New-VHD -ParentPath -Differencing)
    access_denied: bool = False  # on an SMB share the host may not reach with the caller's identity (double hop)

    @property
    def vhd_format(self) -> str:
        return "VHDX" if self.path.lower().endswith((".vhdx", ".avhdx")) else "VHD"


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
    """A host PCI device that can be dismounted for Discrete Device Assignment.

    ``pnp_class`` is its Get-PnpDevice class (Display for a GPU, SCSIAdapter for an NVMe controller, Net for a
    NIC); ``mmio_bytes`` the memory-mapped I/O its BARs need in the VM (Microsoft's DDA survey script reports it).
    """

    name: str
    instance_id: str
    location_path: str
    pnp_class: str = "Display"
    mmio_bytes: int = 256 * MB
    mitigation_driver: bool = False  # False: Dismount needs -Force
    enabled: bool = True  # Disable-PnpDevice / Enable-PnpDevice
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
    """What a host description file says (hostfile.py documents each field)."""

    os_caption: str
    os_version: str  # "10.0.26100": Windows Server 2025 is build 26100, 2022 is 20348, 2019 is 17763
    cpu_manufacturer: str  # Win32_Processor.Manufacturer: GenuineIntel | AuthenticAMD
    cpu_name: str
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    memory_capacity: int  # bytes
    numa_nodes: int
    iov_support: bool
    iov_support_reasons: list[str]
    supported_versions: list[str]
    default_version: str
    automatic_checkpoints: bool = False  # what New-VM sets AutomaticCheckpointsEnabled to on this host
    cluster_node: bool = False  # a Failover Cluster node: the Cluster service (ClusSvc) runs
    pci_devices: list[PciDevice] = field(default_factory=list)
    partitionable_gpus: list[PartitionableGpu] = field(default_factory=list)
    nics: list[HostNic] = field(default_factory=list)
    switches: list[dict[str, Any]] = field(default_factory=list)  # made at start: name, type, nic, iov

    @property
    def build(self) -> int:
        return int(self.os_version.rsplit(".", 1)[-1])

    @property
    def logical_processor_count(self) -> int:
        return self.sockets * self.cores_per_socket * self.threads_per_core

    @property
    def cpu_vendor(self) -> str:
        return "AMD" if "amd" in self.cpu_manufacturer.lower() else "Intel"


@dataclass
class Host:
    name: str
    hardware: HostHardware
    vms: list[Vm] = field(default_factory=list)
    vhds: dict[str, Vhd] = field(default_factory=dict)  # by path, lower case
    files: dict[str, bytes] = field(default_factory=dict)  # other files (ISOs Set-Content wrote), by path, lower case
    switches: list[Switch] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        for switch in self.hardware.switches:
            nic = switch.get("nic") or ""
            self.switches.append(Switch(uuid.UUID(int=self._rng.getrandbits(128)), switch["name"],
                                        "External" if nic else switch.get("type", "Internal"), "",
                                        bool(switch.get("iov")), nic))

    def new_mac(self) -> str:
        return "00155D" + "".join(f"{self._rng.randrange(256):02X}" for _ in range(3))

    def vm(self, vm_id: uuid.UUID) -> Vm | None:
        return next((v for v in self.vms if v.vm_id == vm_id), None)

    def switch(self, name: str) -> Switch | None:
        return next((s for s in self.switches if s.name.lower() == name.lower()), None)

    def vhd(self, path: str) -> Vhd | None:
        return self.vhds.get(path.lower())

    def holder_of(self, path: str) -> Vm | None:
        """The VM using this file: attached, or the parent of a checkpoint's differencing disk."""
        lowered = path.lower()
        for vm in self.vms:
            if any(d.path.lower() == lowered for d in vm.hard_drives):
                return vm
            if any(lowered in (child.lower(), parent.lower())
                   for c in vm.checkpoints for child, parent in c.drives.items()):
                return vm
        return None

    def pci_device(self, location_path: str | None = None, instance_id: str | None = None) -> PciDevice | None:
        for device in self.hardware.pci_devices:
            if location_path and device.location_path.lower() == location_path.lower():
                return device
            if instance_id and device.instance_id.lower() == instance_id.lower():
                return device
        return None

    def memory_in_use(self) -> int:
        return sum(v.memory_startup for v in self.vms if v.state == "Running")

    def dump(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, uuid.UUID):
                return str(value)
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        return plain({"name": self.name, "hardware": asdict(self.hardware), "vms": [asdict(v) for v in self.vms],
                      "vhds": [asdict(v) for v in self.vhds.values()],
                      "switches": [asdict(s) for s in self.switches]})
