"""VM devices both ways: normalize live disks/NICs to spec shape with their slots, and plan device changes.

A disk's slot is its controller family, the controller's bus number and the disk's unit (``scsi0:1``,
``sata0:0``, ``nvme1:2``, ``ide0:1``); PVSCSI and LSI Logic controllers are both of the ``scsi`` family and
share its bus numbers. A NIC's slot is ``ethernetN``, N being its device key minus 4000 (vSphere's own
numbering of ``ethernetN`` in the .vmx), or, for a key outside that range, its index in key order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from virtplane.errors import VirtplaneError
from virtplane.providers.vsphere.pci import is_pci_gpu, sriov_function
from virtplane.specs import DiskSpec, NicSpec

GiB_IN_KB = 1024 * 1024
_D = vim.vm.device

# (controller class, neutral bus); order matters where classes are related.
_CONTROLLERS: list[tuple[type, str]] = [
    (_D.ParaVirtualSCSIController, "paravirtual"),
    (_D.VirtualLsiLogicSASController, "lsilogic"),
    (_D.VirtualLsiLogicController, "lsilogic"),
    (_D.VirtualAHCIController, "sata"),
    (_D.VirtualNVMEController, "nvme"),
    (_D.VirtualIDEController, "ide"),
]
_NEW_CONTROLLER = {"paravirtual": _D.ParaVirtualSCSIController, "lsilogic": _D.VirtualLsiLogicController,
                   "sata": _D.VirtualAHCIController, "nvme": _D.VirtualNVMEController}
# Controllers of one family share bus numbers; disks are ordered by family, bus number, unit.
FAMILY = {"paravirtual": "scsi", "lsilogic": "scsi", "sata": "sata", "nvme": "nvme", "ide": "ide"}
_FAMILY_DEFAULT_BUS = {"scsi": "paravirtual", "sata": "sata", "nvme": "nvme", "ide": "ide"}
_FAMILY_RANK = {"scsi": 0, "sata": 1, "nvme": 2, "ide": 3}
_UNITS = {"scsi": [u for u in range(16) if u != 7], "sata": list(range(30)), "nvme": list(range(15)),
          "ide": [0, 1]}
_MAX_CONTROLLERS = {"scsi": 4, "sata": 4, "nvme": 4, "ide": 2}
DEFAULT_BUS = "paravirtual"

_ADAPTERS: list[tuple[type, str]] = [
    (_D.VirtualVmxnet3, "paravirtual"), (_D.VirtualE1000e, "e1000e"), (_D.VirtualE1000, "e1000"),
    (_D.VirtualSriovEthernetCard, "sriov")]
_NEW_ADAPTER = {"paravirtual": _D.VirtualVmxnet3, "e1000": _D.VirtualE1000, "e1000e": _D.VirtualE1000e}
NIC_KEY_BASE = 4000  # ethernetN has device key 4000 + N
_NIC_KEY_RANGE = 100
_DATASTORE_PATH = re.compile(r"^\[([^\]]+)\]")
DISK_SLOT = re.compile(r"^(scsi|sata|nvme|ide)(\d+):(\d+)$")
NIC_SLOT = re.compile(r"^ethernet(\d+)$")
# The IDE controllers every new VM gets from vSphere (keys 200 and 201).
DEFAULT_IDE = {200: ("ide", 0), 201: ("ide", 1)}


def controller_bus(device: Any) -> str | None:
    for cls, bus in _CONTROLLERS:
        if isinstance(device, cls):
            return bus
    return None


def adapter_name(device: Any) -> str:
    for cls, name in _ADAPTERS:
        if isinstance(device, cls):
            return name
    return device.__class__.__name__.rsplit(".", 1)[-1].removeprefix("Virtual").lower()


def disk_slot(family: str, bus_number: int, unit: int) -> str:
    return f"{family}{bus_number}:{unit}"


def parse_disk_slot(slot: str | None) -> tuple[str, int, int] | None:
    """``scsi0:1`` -> ("scsi", 0, 1); None when it is not a vSphere disk slot."""
    match = DISK_SLOT.match(slot or "")
    return (match.group(1), int(match.group(2)), int(match.group(3))) if match else None


def parse_nic_slot(slot: str | None) -> int | None:
    """``ethernet2`` -> 2; None when it is not a vSphere NIC slot."""
    match = NIC_SLOT.match(slot or "")
    return int(match.group(1)) if match else None


def slot_problem(collection: str, item: Any) -> str | None:
    """Why a slot the stack names cannot be a vSphere slot for ``item`` (a DiskSpec or NicSpec), or None."""
    if item.slot is None:
        return None
    if collection == "nics":
        return None if parse_nic_slot(item.slot) is not None else (
            f"'{item.slot}' is not a vSphere NIC slot (ethernet0, ethernet1, …)")
    parsed = parse_disk_slot(item.slot)
    if parsed is None:
        return f"'{item.slot}' is not a vSphere disk slot (scsi0:1, sata0:0, nvme0:0, ide0:1)"
    family, number, unit = parsed
    if number >= _MAX_CONTROLLERS[family] or unit not in _UNITS[family]:
        return f"'{item.slot}' is outside what a {family} controller offers on vSphere"
    if item.bus in FAMILY and FAMILY[item.bus] != family:
        return f"'{item.slot}' is a {family} slot, but the disk's bus is {item.bus}"
    return None


def new_disk_slot(bus: str | None, taken: set[str]) -> str:
    """The first free slot for a new disk on ``bus`` (None: the creation default, PVSCSI).

    PVSCSI disks fill SCSI bus 0 first, LSI Logic disks SCSI bus 1 first, so a VM declared with both gets
    one controller of each type; other families fill bus 0 first."""
    bus = bus or DEFAULT_BUS
    family = FAMILY.get(bus, "scsi")
    numbers = list(range(_MAX_CONTROLLERS[family]))
    if bus == "lsilogic":
        numbers = numbers[1:] + numbers[:1]
    used = {(parsed[1], parsed[2]) for parsed in map(parse_disk_slot, taken)
            if parsed is not None and parsed[0] == family}
    for number in numbers:
        for unit in _UNITS[family]:
            if (number, unit) not in used:
                return disk_slot(family, number, unit)
    raise VirtplaneError(f"no free {family} slot is left for another {bus} disk on vSphere")


@dataclass
class Hardware:
    """One VM's disks and NICs by slot (in slot order), with the controllers they hang off, and its GPUs
    (PCI passthrough and vGPU devices) in key order."""

    disks: dict[str, Any] = field(default_factory=dict)  # slot -> VirtualDisk
    nics: dict[str, Any] = field(default_factory=dict)  # slot -> VirtualEthernetCard
    gpus: list[Any] = field(default_factory=list)  # VirtualPCIPassthrough devices in key order
    controllers: dict[int, tuple[str, int]] = field(default_factory=dict)  # key -> (bus, busNumber)
    units: dict[int, set[int]] = field(default_factory=dict)  # controller key -> used units
    keys: set[int] = field(default_factory=set)  # every device key in use


def split_devices(devices: list[Any] | None) -> Hardware:
    hardware = Hardware()
    devices = list(devices or [])
    for device in devices:
        hardware.keys.add(device.key)
        bus = controller_bus(device)
        if bus is not None:
            hardware.controllers[device.key] = (bus, device.busNumber)
    disks: list[tuple[tuple[int, int, int, int], str, Any]] = []
    nics: list[Any] = []
    for device in devices:
        if isinstance(device, _D.VirtualDisk):
            controller = hardware.controllers.get(device.controllerKey)
            if controller is None:
                disks.append(((9, 0, 0, device.key), f"disk{device.key}", device))
            else:
                family = FAMILY[controller[0]]
                unit = device.unitNumber or 0
                disks.append(((_FAMILY_RANK[family], controller[1], unit, device.key),
                              disk_slot(family, controller[1], unit), device))
        elif isinstance(device, _D.VirtualEthernetCard):
            nics.append(device)
        elif is_pci_gpu(device):
            hardware.gpus.append(device)
        if device.controllerKey in hardware.controllers and device.unitNumber is not None:
            hardware.units.setdefault(device.controllerKey, set()).add(device.unitNumber)
    hardware.disks = {slot: device for _, slot, device in sorted(disks, key=lambda item: item[0])}
    hardware.nics = _nic_slots(nics)
    hardware.gpus.sort(key=lambda gpu: gpu.key)
    return hardware


def _nic_slots(nics: list[Any]) -> dict[str, Any]:
    ordered = sorted(nics, key=lambda nic: nic.key)
    numbers: dict[int, Any] = {}
    for nic in ordered:
        if 0 <= nic.key - NIC_KEY_BASE < _NIC_KEY_RANGE:
            numbers[nic.key - NIC_KEY_BASE] = nic
    for index, nic in enumerate(ordered):
        if 0 <= nic.key - NIC_KEY_BASE < _NIC_KEY_RANGE:
            continue
        number = index
        while number in numbers:
            number += 1
        numbers[number] = nic
    return {f"ethernet{number}": numbers[number] for number in sorted(numbers)}


def disk_state(slot: str, disk: Any, hardware: Hardware, datastore_names: dict[str, str]) -> dict[str, Any]:
    backing = disk.backing
    datastore = None
    if getattr(backing, "datastore", None) is not None:
        datastore = datastore_names.get(backing.datastore._moId)
    if datastore is None and getattr(backing, "fileName", None):
        match = _DATASTORE_PATH.match(backing.fileName)
        datastore = match.group(1) if match else None
    bus = hardware.controllers.get(disk.controllerKey, ("ide", 0))[0]
    return {"size": int(disk.capacityInKB or 0) // GiB_IN_KB, "storage": datastore,
            "thin": bool(getattr(backing, "thinProvisioned", False)), "bus": bus, "slot": slot}


def nic_state(slot: str, nic: Any, portgroup_name: Callable[[str], str | None]) -> dict[str, Any]:
    backing = nic.backing
    network = None
    if isinstance(backing, _D.VirtualEthernetCard.DistributedVirtualPortBackingInfo) and backing.port:
        network = portgroup_name(backing.port.portgroupKey) or backing.port.portgroupKey
    elif backing is not None:
        network = getattr(backing, "deviceName", None)
    return {"network": network, "adapter": adapter_name(nic), "device": sriov_function(nic), "slot": slot}


def vm_folder(vm_path_name: str | None) -> str | None:
    """The folder of a VM's files from its ``files.vmPathName`` (``[ds1] web-1/web-1.vmx`` -> ``[ds1] web-1``),
    which keeps the name the VM had when it was made, whatever it is called now; None when it has none."""
    if not vm_path_name or "/" not in vm_path_name:
        return None
    return vm_path_name.rsplit("/", 1)[0].strip()


def in_folder(file_name: str | None, folder: str | None) -> bool:
    """``[ds1] web-1/web-1_1.vmdk`` is in folder ``[ds1] web-1``; ``[ds1] other/disk.vmdk`` is not."""
    if not file_name or not folder:
        return False
    return file_name.strip().startswith(folder + "/")


class DevicePlan:
    """Collects deviceChange entries for one CreateVM / ReconfigVM call: removals first, then edits and
    additions (so a slot freed by a removal can be filled again in the same call)."""

    def __init__(self, hardware: Hardware, vm_name: str, folder: str | None = None):
        self._folder = folder  # where the VM's files are: a removed disk's file is destroyed only there
        self._removals: list[Any] = []
        self._others: list[Any] = []
        self._name = vm_name
        self._controllers = dict(hardware.controllers)
        self._units = {key: set(units) for key, units in hardware.units.items()}
        self._keys = set(hardware.keys)
        self._next_key = -100

    @property
    def changes(self) -> list[Any]:
        return self._removals + self._others

    def _key(self) -> int:
        self._next_key -= 1
        return self._next_key

    def _controller(self, family: str, number: int, bus: str | None, slot: str) -> int:
        """The key of the ``family`` controller with bus number ``number``, added (of type ``bus``, or the
        family's default) when the VM has none."""
        for key, (kind, existing) in self._controllers.items():
            if FAMILY[kind] == family and existing == number:
                if bus is not None and kind != bus:
                    raise VirtplaneError(
                        f"VM '{self._name}': disk slot {slot} is on its {kind} controller, but the disk's bus is "
                        f"{bus}; name a slot on another {family} bus number (slot=…) or leave bus unset")
                return key
        kind = bus or _FAMILY_DEFAULT_BUS[family]
        if kind not in _NEW_CONTROLLER:
            raise VirtplaneError(f"VM '{self._name}' has no {family} controller {number} for disk slot {slot}, "
                                 f"and vSphere cannot add {kind} controllers")
        controller = _NEW_CONTROLLER[kind](key=self._key(), busNumber=number)
        if isinstance(controller, _D.VirtualSCSIController):
            controller.sharedBus = _D.VirtualSCSIController.Sharing.noSharing
        self._others.append(_D.VirtualDeviceSpec(operation="add", device=controller))
        self._controllers[controller.key] = (kind, number)
        return controller.key

    def add_disk(self, disk: DiskSpec, datastore_name: str, datastore: Any) -> None:
        """Add ``disk`` at its slot (``disk.slot``), creating the controller of its bus when missing."""
        if disk.bus is not None and disk.bus not in FAMILY:
            raise VirtplaneError(f"VM '{self._name}': {disk.bus} disks do not exist on vSphere "
                                 f"(choices: {', '.join(FAMILY)})")
        parsed = parse_disk_slot(disk.slot)
        if parsed is None:
            raise VirtplaneError(f"VM '{self._name}': disk slot {disk.slot!r} is not a vSphere disk slot "
                                 "(scsi0:1, sata0:0, nvme0:0, ide0:1)")
        family, number, unit = parsed
        if disk.bus is not None and FAMILY[disk.bus] != family:
            raise VirtplaneError(f"VM '{self._name}': disk slot {disk.slot} is a {family} slot, but the disk's "
                                 f"bus is {disk.bus}")
        controller = self._controller(family, number, disk.bus, disk.slot or "")
        if unit in self._units.get(controller, set()) or unit not in _UNITS[family]:
            raise VirtplaneError(f"VM '{self._name}': disk slot {disk.slot} is not free")
        self._units.setdefault(controller, set()).add(unit)
        backing = _D.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[{datastore_name}]", datastore=datastore, diskMode="persistent",
            thinProvisioned=True if disk.thin is None else disk.thin)
        device = _D.VirtualDisk(key=self._key(), controllerKey=controller, unitNumber=unit,
                                capacityInKB=disk.size * GiB_IN_KB, backing=backing)
        self._others.append(_D.VirtualDeviceSpec(operation="add", fileOperation="create", device=device))

    def grow_disk(self, disk: Any, size: int) -> None:
        disk.capacityInKB = size * GiB_IN_KB
        if getattr(disk, "capacityInBytes", None):
            disk.capacityInBytes = size * GiB_IN_KB * 1024
        self._others.append(_D.VirtualDeviceSpec(operation="edit", device=disk))

    def remove_disk(self, disk: Any) -> None:
        """Detach the disk; its file is destroyed only when it lives in this VM's own folder (where its files are,
        ``files.vmPathName``), where vSphere put the disks it made for the VM. A disk attached from elsewhere
        (another VM's folder) is detached and its file kept."""
        self._release(disk)
        change = _D.VirtualDeviceSpec(operation="remove", device=disk)
        if in_folder(getattr(disk.backing, "fileName", None), self._folder):
            change.fileOperation = "destroy"
        self._removals.append(change)

    def nic_key(self, slot: str | None) -> int:
        """The device key of NIC slot ``ethernetN`` (4000 + N), which must be free."""
        number = parse_nic_slot(slot)
        if number is None:
            raise VirtplaneError(f"VM '{self._name}': NIC slot {slot!r} is not a vSphere NIC slot "
                                 "(ethernet0, ethernet1, …)")
        key = NIC_KEY_BASE + number
        if key in self._keys:
            raise VirtplaneError(f"VM '{self._name}': NIC slot {slot} is not free")
        self._keys.add(key)
        return key

    def add_nic(self, nic: NicSpec, backing: Any) -> None:
        """Add ``nic`` at its slot (``nic.slot``)."""
        adapter = nic.adapter or "paravirtual"
        if adapter not in _NEW_ADAPTER:  # SR-IOV NICs are built from the host's PCI devices (pci.py)
            raise VirtplaneError(f"VM '{self._name}': NIC {nic.slot} adapter {adapter} is not supported here")
        device = _NEW_ADAPTER[adapter](
            key=self.nic_key(nic.slot), backing=backing, addressType="generated",
            connectable=_D.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True,
                                                     connected=False))
        self._others.append(_D.VirtualDeviceSpec(operation="add", device=device))

    def remove_nic(self, nic: Any) -> None:
        self.remove_device(nic)

    def add_device(self, device: Any) -> None:
        """Add a device built elsewhere (a GPU, an SR-IOV NIC keyed with ``nic_key``)."""
        self._others.append(_D.VirtualDeviceSpec(operation="add", device=device))

    def remove_device(self, device: Any) -> None:
        self._release(device)
        self._removals.append(_D.VirtualDeviceSpec(operation="remove", device=device))

    def new_key(self) -> int:
        """A temporary key for a new device (vSphere gives it its own)."""
        return self._key()

    def rewire_nic(self, nic: Any, backing: Any) -> None:
        nic.backing = backing
        self._others.append(_D.VirtualDeviceSpec(operation="edit", device=nic))

    def _release(self, device: Any) -> None:
        self._keys.discard(device.key)
        if device.unitNumber is not None and device.controllerKey in self._units:
            self._units[device.controllerKey].discard(device.unitNumber)


def nic_backing(network: Any) -> Any:
    """The NIC backing for a NetworkRef (distributed port group or standard network)."""
    if network.distributed:
        port = vim.dvs.PortConnection(switchUuid=network.switch_uuid, portgroupKey=network.portgroup_key)
        return _D.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    return _D.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network.ref)
