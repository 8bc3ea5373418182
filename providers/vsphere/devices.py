"""VM devices both ways: normalize live disks/NICs to spec shape, and plan device changes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from virtplane.errors import VirtplaneError
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
_FAMILY = {"paravirtual": "scsi", "lsilogic": "scsi", "sata": "sata", "nvme": "nvme", "ide": "ide"}
_FAMILY_RANK = {"scsi": 0, "sata": 1, "nvme": 2, "ide": 3}
_UNITS = {"scsi": [u for u in range(16) if u != 7], "sata": list(range(30)), "nvme": list(range(15)),
          "ide": [0, 1]}
_MAX_CONTROLLERS = {"scsi": 4, "sata": 4, "nvme": 4, "ide": 2}

_ADAPTERS: list[tuple[type, str]] = [
    (_D.VirtualVmxnet3, "paravirtual"), (_D.VirtualE1000e, "e1000e"), (_D.VirtualE1000, "e1000")]
_NEW_ADAPTER = {"paravirtual": _D.VirtualVmxnet3, "e1000": _D.VirtualE1000, "e1000e": _D.VirtualE1000e}
_DATASTORE_PATH = re.compile(r"^\[([^\]]+)\]")
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
    return type(device).__name__.rsplit(".", 1)[-1].removeprefix("Virtual").lower()


@dataclass
class Hardware:
    """One VM's disks and NICs in spec order, with the controllers they hang off."""

    disks: list[Any] = field(default_factory=list)
    nics: list[Any] = field(default_factory=list)
    controllers: dict[int, tuple[str, int]] = field(default_factory=dict)  # key -> (bus, busNumber)
    units: dict[int, set[int]] = field(default_factory=dict)  # controller key -> used units


def split_devices(devices: list[Any] | None) -> Hardware:
    hardware = Hardware()
    for device in devices or []:
        bus = controller_bus(device)
        if bus is not None:
            hardware.controllers[device.key] = (bus, device.busNumber)
    for device in devices or []:
        if isinstance(device, _D.VirtualDisk):
            hardware.disks.append(device)
        elif isinstance(device, _D.VirtualEthernetCard):
            hardware.nics.append(device)
        if device.controllerKey in hardware.controllers and device.unitNumber is not None:
            hardware.units.setdefault(device.controllerKey, set()).add(device.unitNumber)

    def disk_order(disk: Any) -> tuple[int, int, int, int]:
        bus, number = hardware.controllers.get(disk.controllerKey, ("ide", 99))
        return _FAMILY_RANK[_FAMILY[bus]], number, disk.unitNumber or 0, disk.key

    hardware.disks.sort(key=disk_order)
    hardware.nics.sort(key=lambda nic: nic.key)
    return hardware


def disk_state(disk: Any, hardware: Hardware, datastore_names: dict[str, str]) -> dict[str, Any]:
    backing = disk.backing
    datastore = None
    if getattr(backing, "datastore", None) is not None:
        datastore = datastore_names.get(backing.datastore._moId)
    if datastore is None and getattr(backing, "fileName", None):
        match = _DATASTORE_PATH.match(backing.fileName)
        datastore = match.group(1) if match else None
    bus = hardware.controllers.get(disk.controllerKey, ("ide", 0))[0]
    return {"size": int(disk.capacityInKB or 0) // GiB_IN_KB, "storage": datastore,
            "thin": bool(getattr(backing, "thinProvisioned", False)), "bus": bus}


def nic_state(nic: Any, portgroup_name: Callable[[str], str | None]) -> dict[str, Any]:
    backing = nic.backing
    network = None
    if isinstance(backing, _D.VirtualEthernetCard.DistributedVirtualPortBackingInfo) and backing.port:
        network = portgroup_name(backing.port.portgroupKey) or backing.port.portgroupKey
    elif backing is not None:
        network = getattr(backing, "deviceName", None)
    return {"network": network, "adapter": adapter_name(nic)}


class DevicePlan:
    """Collects deviceChange entries for one CreateVM / ReconfigVM call."""

    def __init__(self, hardware: Hardware, vm_name: str):
        self.changes: list[Any] = []
        self._name = vm_name
        self._controllers = dict(hardware.controllers)
        self._units = {key: set(units) for key, units in hardware.units.items()}
        self._next_key = -100

    def _key(self) -> int:
        self._next_key -= 1
        return self._next_key

    def _controller(self, bus: str) -> tuple[int, int]:
        """(controller key, free unit) for a new disk on ``bus``, adding a controller when needed."""
        if bus not in _FAMILY:
            raise VirtplaneError(f"VM '{self._name}': {bus} disks do not exist on vSphere "
                                 f"(choices: {', '.join(_FAMILY)})")
        family = _FAMILY[bus]
        for key, (kind, _number) in sorted(self._controllers.items(), key=lambda item: item[1][1]):
            if kind == bus:
                free = [u for u in _UNITS[family] if u not in self._units.get(key, set())]
                if free:
                    return key, free[0]
        numbers = {number for kind, number in self._controllers.values() if _FAMILY[kind] == family}
        spare = [n for n in range(_MAX_CONTROLLERS[family]) if n not in numbers]
        if bus not in _NEW_CONTROLLER or not spare:
            raise VirtplaneError(f"VM '{self._name}' has no room for another {bus} disk")
        controller = _NEW_CONTROLLER[bus](key=self._key(), busNumber=spare[0])
        if isinstance(controller, _D.VirtualSCSIController):
            controller.sharedBus = _D.VirtualSCSIController.Sharing.noSharing
        self.changes.append(_D.VirtualDeviceSpec(operation="add", device=controller))
        self._controllers[controller.key] = (bus, spare[0])
        return controller.key, _UNITS[family][0]

    def add_disk(self, disk: DiskSpec, datastore_name: str, datastore: Any) -> None:
        controller, unit = self._controller(disk.bus)
        self._units.setdefault(controller, set()).add(unit)
        backing = _D.VirtualDisk.FlatVer2BackingInfo(
            fileName=f"[{datastore_name}]", datastore=datastore, diskMode="persistent",
            thinProvisioned=disk.thin)
        device = _D.VirtualDisk(key=self._key(), controllerKey=controller, unitNumber=unit,
                                capacityInKB=disk.size * GiB_IN_KB, backing=backing)
        self.changes.append(_D.VirtualDeviceSpec(operation="add", fileOperation="create", device=device))

    def grow_disk(self, disk: Any, size: int) -> None:
        disk.capacityInKB = size * GiB_IN_KB
        if getattr(disk, "capacityInBytes", None):
            disk.capacityInBytes = size * GiB_IN_KB * 1024
        self.changes.append(_D.VirtualDeviceSpec(operation="edit", device=disk))

    def remove_disk(self, disk: Any) -> None:
        self.changes.append(_D.VirtualDeviceSpec(operation="remove", fileOperation="destroy", device=disk))

    def add_nic(self, nic: NicSpec, backing: Any) -> None:
        device = _NEW_ADAPTER[nic.adapter](
            key=self._key(), backing=backing, addressType="generated",
            connectable=_D.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True,
                                                     connected=False))
        self.changes.append(_D.VirtualDeviceSpec(operation="add", device=device))

    def remove_nic(self, nic: Any) -> None:
        self.changes.append(_D.VirtualDeviceSpec(operation="remove", device=nic))

    def rewire_nic(self, nic: Any, backing: Any) -> None:
        nic.backing = backing
        self.changes.append(_D.VirtualDeviceSpec(operation="edit", device=nic))


def nic_backing(network: Any) -> Any:
    """The NIC backing for a NetworkRef (distributed port group or standard network)."""
    if network.distributed:
        port = vim.dvs.PortConnection(switchUuid=network.switch_uuid, portgroupKey=network.portgroup_key)
        return _D.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    return _D.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network.ref)
