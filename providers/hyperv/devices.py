"""GPUs on Hyper-V: Discrete Device Assignment (``passthrough``) and GPU partitioning (``vgpu``).

Sources: Microsoft's "Deploy graphics devices by using Discrete Device Assignment" and "Plan for GPU
acceleration / GPU partitioning" pages and the cmdlet references of Add-/Remove-VMAssignableDevice,
Dismount-/Mount-VMHostAssignableDevice, Set-VMHostPartitionableGpu and Add-/Remove-VMGpuPartitionAdapter.

- Passthrough: the VM needs ``AutomaticStopAction TurnOff``, ``GuestControlledCacheTypes $true`` and MMIO
  space: 3 GB low, and high sized from the devices' BARs plus the 512 MB default as buffer (Microsoft's
  single-GPU example, 33280 MB, is one 32 GiB BAR; an H100 or an 80 GB A100 maps 128 GiB and would not start
  with it). BAR sizes come from ``BAR_BYTES`` (NVIDIA's published BAR1 sizes, by PCI vendor and device id);
  a device not in it is assumed to need 32 GiB. Also static memory and the VM off. The host gives the device up
  as Microsoft's steps do: ``Disable-PnpDevice -InstanceId <id> -Confirm:$false``, then
  ``Dismount-VMHostAssignableDevice -LocationPath -Force`` (when not dismounted yet), then
  ``Add-VMAssignableDevice -LocationPath``. Removal is ``Remove-VMAssignableDevice``,
  ``Mount-VMHostAssignableDevice`` and ``Enable-PnpDevice``: the host gets its device back.
- A device's class is its Get-PnpDevice Class: only ``Display`` devices are GPUs; DDA also assigns NVMe
  controllers (SCSIAdapter) and NICs (Net), which a GPU request never takes.
- Partition: profile ``gpu-p/<partition count>``; the device is the partitionable GPU's Name. The host's
  partition count is set when it differs and no partition is in use; ``Add-VMGpuPartitionAdapter``.

Read back into ``gpus: [{"mode", "profile", "device", "vendor"}]``; the vendor comes from the PCI vendor id
(``VEN_10DE``) in the device's instance path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.hyperv.client import Cmd, Statement, pipe, u32, u64, vm_by_id

GiB = 1024**3
MiB = 1024**2
LOW_MMIO = 3 * GiB  # Microsoft's GPU example: -LowMemoryMappedIoSpace 3Gb
DEFAULT_BAR = 32 * GiB  # Microsoft's GPU example: 33280Mb = 32 GiB for the device + the 512 MB default
MMIO_BUFFER = 512 * MiB
# BAR1 of GPUs by "vendor:device" (NVIDIA product briefs: BAR1 size; the frame buffer rounded up to a power of two)
BAR_BYTES = {"10de:25b6": 16 * GiB,  # A2
             "10de:2236": 32 * GiB,  # A10
             "10de:27b8": 32 * GiB,  # L4
             "10de:20f1": 64 * GiB,  # A100 40GB PCIe
             "10de:20b5": 128 * GiB,  # A100 80GB PCIe
             "10de:2235": 64 * GiB,  # A40
             "10de:26b5": 64 * GiB,  # L40
             "10de:26b9": 64 * GiB,  # L40S
             "10de:2331": 128 * GiB,  # H100 PCIe
             "10de:2330": 128 * GiB}  # H100 SXM5
PNP_CLASSES = ("Display", "SCSIAdapter", "Net")
LOCATION_PATHS = "DEVPKEY_Device_LocationPaths"
PROFILE_PREFIX = "gpu-p/"
VENDORS = {"10de": "nvidia", "1002": "amd", "1022": "amd", "8086": "intel"}
_VENDOR_ID = re.compile(r"VEN_([0-9A-Fa-f]{4})")
_DEVICE_ID = re.compile(r"DEV_([0-9A-Fa-f]{4})")


def vendor_of(instance_path: str | None) -> str | None:
    """``PCI\\VEN_10DE&DEV_2236…`` -> ``nvidia``; None when the path names no known vendor."""
    match = _VENDOR_ID.search(instance_path or "")
    return VENDORS.get(match.group(1).lower()) if match else None


def pci_ids(instance_path: str | None) -> tuple[str | None, str | None]:
    """The vendor and device ids (``0x10de``, ``0x2236``) in an instance path, or None each."""
    vendor = _VENDOR_ID.search(instance_path or "")
    device = _DEVICE_ID.search(instance_path or "")
    return (f"0x{vendor.group(1).lower()}" if vendor else None, f"0x{device.group(1).lower()}" if device else None)


def bar_bytes(instance_path: str | None) -> int:
    """The BAR space a device maps (BAR_BYTES by its ids; DEFAULT_BAR when unknown)."""
    vendor, device = pci_ids(instance_path)
    if vendor is None or device is None:
        return DEFAULT_BAR
    return BAR_BYTES.get(f"{vendor[2:]}:{device[2:]}", DEFAULT_BAR)


def high_mmio(instance_paths: Iterable[str | None]) -> int:
    """HighMemoryMappedIoSpace for a VM holding these devices: their BARs plus the 512 MB default as buffer."""
    return sum(bar_bytes(path) for path in instance_paths) + MMIO_BUFFER


def partition_count(profile: str | None) -> int | None:
    """``gpu-p/4`` -> 4; None for anything else."""
    if not profile or not profile.lower().startswith(PROFILE_PREFIX):
        return None
    number = profile[len(PROFILE_PREFIX):]
    return int(number) if number.isdigit() and int(number) > 0 else None


def partition_gpu(partition: Any, gpu_names: Sequence[str]) -> str:
    """The partitionable GPU a VMGpuPartitionAdapter sits on. The type documents no GPU (its InstancePath is only
    Add-VMGpuPartitionAdapter's parameter; the WMI object Msvm_GpuPartition has DeviceInstancePath): read it where
    a host reports it, else the host's only partitionable GPU, else "" (unknown)."""
    named = partition.text("InstancePath")
    if named:
        return named
    return gpu_names[0] if len(gpu_names) == 1 else ""


def observed_gpus(assigned: Iterable[Any], partitions: Iterable[Any], counts: dict[str, int]) -> list[dict[str, Any]]:
    """The VM's GPUs in spec shape: assigned devices (by location path), then its partition (``counts``: the
    partitionable GPUs' current partition counts by name)."""
    items = [{"mode": "passthrough", "profile": None, "device": d.text("LocationPath"),
              "vendor": vendor_of(d.text("InstanceID"))}
             for d in sorted(assigned, key=lambda d: d.text("LocationPath") or "")]
    lowered = {name.lower(): count for name, count in counts.items()}
    for partition in partitions:
        gpu = partition_gpu(partition, list(counts))
        count = lowered.get(gpu.lower())
        items.append({"mode": "vgpu", "profile": f"{PROFILE_PREFIX}{count}" if count else None, "device": gpu or None,
                      "vendor": vendor_of(gpu)})
    return items


def order_like(observed: list[dict[str, Any]], declared: Sequence[Any] | None) -> list[dict[str, Any]]:
    """``observed`` reordered so each declared GPU meets a live one of its mode at its own position (the diff
    compares GPUs by position)."""
    left = list(observed)
    ordered = []
    for gpu in declared or []:
        match = next((item for item in left if item["mode"] == gpu.mode and matches(item, gpu)), None)
        match = match or next((item for item in left if item["mode"] == gpu.mode), None)
        if match is None:
            break
        left.remove(match)
        ordered.append(match)
    return ordered + left


def matches(have: dict[str, Any] | None, want: Any) -> bool:
    """A live GPU serves a declared one: same mode, and every attribute the stack sets is equal."""
    if have is None or want is None or have["mode"] != want.mode:
        return False
    return all(getattr(want, key) is None or str(getattr(want, key)).lower() == str(have.get(key) or "").lower()
               for key in ("profile", "device", "vendor"))


@dataclass
class HostDevices:
    """What the host holds now: dismounted devices no VM holds, devices held by VMs (location path -> VMId),
    partitionable GPUs (name -> (valid counts, current count)) and partitions in use per GPU name."""

    free_dismounted: list[Any] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    gpus: dict[str, tuple[list[int], int]] = field(default_factory=dict)
    partitions_in_use: dict[str, int] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # instance id (lower case) -> Get-PnpDevice Class
    instances: dict[str, str] = field(default_factory=dict)  # location path (lower case) -> instance id

    @staticmethod
    def statements() -> list[Statement]:
        return [pipe(Cmd("Get-VMHostAssignableDevice")), pipe(Cmd("Get-VMHostPartitionableGpu")),
                pipe(Cmd("Get-VM"), Cmd("Get-VMAssignableDevice")),
                pipe(Cmd("Get-VM"), Cmd("Get-VMGpuPartitionAdapter")),
                pipe(Cmd("Get-PnpDevice", {"Class": list(PNP_CLASSES)}),
                     Cmd("Select-Object", {"Property": ["InstanceId", "Class", "FriendlyName", "Present"]})),
                pipe(Cmd("Get-PnpDevice", {"Class": list(PNP_CLASSES), "PresentOnly": True}),
                     Cmd("Get-PnpDeviceProperty", {"KeyName": LOCATION_PATHS}),
                     Cmd("Select-Object", {"Property": ["InstanceId", "Data"]}))]

    @classmethod
    def from_objects(cls, objects: Iterable[Any]) -> HostDevices:
        found = cls()
        partitions: list[Any] = []
        for obj in objects:
            short = obj.type_name.rsplit(".", 1)[-1]
            if short == "VMHostAssignableDevice":
                found.free_dismounted.append(obj)
                found.instances[(obj.text("LocationPath") or "").lower()] = obj.text("InstanceID") or ""
            elif short == "VMAssignedDevice":
                found.held[(obj.text("LocationPath") or "").lower()] = str(obj.get("VMId") or "").lower()
                found.instances[(obj.text("LocationPath") or "").lower()] = obj.text("InstanceID") or ""
            elif short.startswith("Win32_PnPEntity") or (obj.get("Class") is not None and obj.get("Data") is None):
                found.classes[(obj.text("InstanceId") or "").lower()] = obj.text("Class") or ""
            elif obj.get("Data") is not None and obj.get("InstanceId") is not None:
                for path in obj.get("Data") or []:
                    found.instances.setdefault(str(path).lower(), obj.text("InstanceId") or "")
            elif short == "VMHostPartitionableGpu":
                counts = [int(c) for c in obj.get("ValidPartitionCounts") or []]
                found.gpus[obj.text("Name") or ""] = (counts, obj.number("PartitionCount") or 0)
            elif short == "VMGpuPartitionAdapter":
                partitions.append(obj)
        for partition in partitions:  # after the GPUs are known: a partition names none of its own
            gpu = partition_gpu(partition, list(found.gpus)).lower()
            found.partitions_in_use[gpu] = found.partitions_in_use.get(gpu, 0) + 1
        return found

    def is_dismounted(self, location: str) -> bool:
        return any((d.text("LocationPath") or "").lower() == location.lower() for d in self.free_dismounted)

    def free_device(self, vendor: str | None, taken: set[str]) -> str | None:
        """A dismounted GPU (Get-PnpDevice Class Display: not an NVMe drive or a NIC, nor a device of unknown
        class) no VM holds (of ``vendor`` when given), not in ``taken``."""
        for device in self.free_dismounted:
            location = device.text("LocationPath") or ""
            if location.lower() in taken or location.lower() in self.held:
                continue
            if self.classes.get((device.text("InstanceID") or "").lower()) != "Display":
                continue
            if vendor is None or vendor_of(device.text("InstanceID")) == vendor:
                return location
        return None

    def instance_of(self, location: str) -> str | None:
        return self.instances.get(location.lower()) or None

    def gpu_for(self, device: str | None, count: int) -> str | None:
        """The partitionable GPU named ``device`` (any, when None) that offers ``count`` partitions."""
        for name, (valid, _) in self.gpus.items():
            if (device is None or name.lower() == device.lower()) and count in valid:
                return name
        return None


class DeviceError(Exception):
    """A GPU the driver cannot give the VM: one sentence, raised before anything changes."""


def add_passthrough(vm_id: str, locations: list[str], host: HostDevices, *, new_vm: bool, holding: list[str]
                    ) -> list[Statement]:
    """The VM-side settings (MMIO for every device the VM will hold: ``holding``, location paths), the host-side
    disable and dismount (when needed) and the assignment of each device of ``locations``."""
    settings: dict[str, Any] = {"AutomaticStopAction": "TurnOff", "GuestControlledCacheTypes": True,
                                "LowMemoryMappedIoSpace": u32(LOW_MMIO),
                                "HighMemoryMappedIoSpace": u64(high_mmio(host.instance_of(p) for p in holding))}
    if new_vm:
        settings["StaticMemory"] = True  # a VM we made: make sure; an existing one with dynamic memory is refused
    statements = [pipe(vm_by_id(vm_id), Cmd("Set-VM", settings))]
    for location in locations:
        if not host.is_dismounted(location) and location.lower() not in host.held:
            instance = host.instance_of(location)
            if instance is None:
                raise DeviceError(f"no device of the host has the location path '{location}' "
                                  "(Get-PnpDeviceProperty DEVPKEY_Device_LocationPaths)")
            statements.append(pipe(Cmd("Disable-PnpDevice", {"InstanceId": instance, "Confirm": False})))
            statements.append(pipe(Cmd("Dismount-VMHostAssignableDevice", {"LocationPath": location, "Force": True})))
        statements.append(pipe(vm_by_id(vm_id), Cmd("Add-VMAssignableDevice", {"LocationPath": location})))
    return statements


def remove_passthrough(vm_id: str, location: str, instance: str | None = None) -> list[Statement]:
    statements = [pipe(vm_by_id(vm_id), Cmd("Remove-VMAssignableDevice", {"LocationPath": location})),
                  pipe(Cmd("Mount-VMHostAssignableDevice", {"LocationPath": location}))]
    if instance:
        statements.append(pipe(Cmd("Enable-PnpDevice", {"InstanceId": instance, "Confirm": False})))
    return statements


def add_partition(vm_id: str, gpu: str, count: int, host: HostDevices) -> list[Statement]:
    statements = []
    _, current = host.gpus.get(gpu, ([], 0))
    if current != count:
        if host.partitions_in_use.get(gpu.lower()):
            raise DeviceError(f"the partitionable GPU '{gpu}' is split into {current} partitions and "
                              f"{host.partitions_in_use[gpu.lower()]} are in use, so it cannot be split into {count}")
        statements.append(pipe(Cmd("Set-VMHostPartitionableGpu", {"Name": gpu, "PartitionCount": count})))
    statements.append(pipe(vm_by_id(vm_id), Cmd("Add-VMGpuPartitionAdapter", {"InstancePath": gpu})))
    return statements


def remove_partition(vm_id: str) -> list[Statement]:
    return [pipe(vm_by_id(vm_id), Cmd("Remove-VMGpuPartitionAdapter"))]


def reconcile(vm_id: str, have: list[dict[str, Any]], want: Sequence[Any], host: HostDevices, *,
              new_vm: bool) -> list[Statement]:
    """Statements that turn the VM's GPUs ``have`` into ``want`` (position by position, as the diff compares):
    removals first, then additions. Raises DeviceError when a wanted GPU cannot be found."""
    removals: list[Statement] = []
    locations: list[str] = []
    partitions: list[Statement] = []
    taken = {str(item.get("device") or "").lower() for item in have if item["mode"] == "passthrough"}
    for index in range(max(len(have), len(want))):
        old = have[index] if index < len(have) else None
        new = want[index] if index < len(want) else None
        if old is not None and new is not None and matches(old, new):
            continue
        if old is not None:
            if old["mode"] == "passthrough":
                removals += remove_passthrough(vm_id, old["device"], host.instance_of(old["device"]))
            else:
                removals += remove_partition(vm_id)
                gpu_name = str(old.get("device") or "").lower()
                host.partitions_in_use[gpu_name] = max(0, host.partitions_in_use.get(gpu_name, 0) - 1)
            taken.discard(str(old.get("device") or "").lower())
        if new is None:
            continue
        if new.mode == "passthrough":
            location = new.device or host.free_device(new.vendor, taken)
            if location is None:
                what = f"{new.vendor} GPU" if new.vendor else "GPU"
                raise DeviceError(f"the host has no dismounted {what} free for Discrete Device Assignment "
                                  "(Dismount-VMHostAssignableDevice)")
            taken.add(location.lower())
            locations.append(location)
        else:
            count = partition_count(new.profile)
            if count is None:
                raise DeviceError(f"GPU partition profile '{new.profile}' is not 'gpu-p/<partition count>'")
            gpu = host.gpu_for(new.device, count)
            if gpu is None:
                offered = ", ".join(f"{PROFILE_PREFIX}{c}" for valid, _ in host.gpus.values() for c in valid) or "none"
                raise DeviceError(f"no partitionable GPU offers '{new.profile}' (offered: {offered})")
            partitions += add_partition(vm_id, gpu, count, host)
    holding = [str(old["device"]) for old, new in zip(have, want, strict=False)
               if old["mode"] == "passthrough" and matches(old, new)] + locations
    additions = add_passthrough(vm_id, locations, host, new_vm=new_vm, holding=holding) if locations else []
    return removals + additions + partitions
