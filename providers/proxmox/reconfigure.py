"""Pure planning of an update: which config keys to set or delete, which disks to grow, for changed fields.

The VM driver sends the result: ``first_delete`` in its own write (PVE refuses to delete and set one key in
the same request, as re-making the EFI vars disk needs), then ``settings`` and ``delete`` together, then one
resize per grown disk. Removed disks become ``unusedN`` entries on PVE; ``removed_volumes`` names them so the
driver destroys them too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.proxmox.config import (
    BUS_PREFIX,
    SCSI_CONTROLLERS,
    NetworkNames,
    disk_key,
    disk_slots,
    efidisk_value,
    new_disk_value,
    next_nic_key,
    nic_slots,
    nic_state,
    nic_value,
    ostype,
    secure_boot_of,
    split_options,
)
from virtplane.providers.proxmox.ownership import encode_tags
from virtplane.specs import VirtualMachineSpec


class NoFreeSlot(ValueError):
    """A disk or NIC cannot be added: its bus (or the VM) has no free slot left."""


@dataclass
class Reconfiguration:
    first_delete: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    resize: list[tuple[str, int]] = field(default_factory=list)  # (disk key, GiB)
    removed_volumes: list[str] = field(default_factory=list)

    @property
    def writes_config(self) -> bool:
        return bool(self.first_delete or self.settings or self.delete)


def reconfigure(spec: VirtualMachineSpec, config: Mapping[str, Any], fields: Collection[str], names: NetworkNames,
                storage_for: Callable[[int], str], efi_storage: Callable[[], str]) -> Reconfiguration:
    """What to change so that ``config`` matches ``spec`` in ``fields`` (top-level field names)."""
    plan = Reconfiguration()
    if {"cpus", "sockets"} & set(fields):
        sockets = spec.sockets or _current_sockets(config, spec.cpus)
        plan.settings.update(cores=spec.cpus // sockets, sockets=sockets)
    if "memory" in fields:
        plan.settings["memory"] = spec.memory
    if "guest_os" in fields:
        plan.settings["ostype"] = ostype(spec.guest_os)
    if "machine" in fields and spec.machine:
        plan.settings["machine"] = spec.machine
    if "nested_virtualization" in fields:
        if spec.nested_virtualization:
            plan.settings["cpu"] = "host"
        else:
            plan.delete.append("cpu")
    if {"firmware", "secure_boot"} & set(fields):
        _firmware(plan, spec, config, efi_storage)
    if "tags" in fields:
        plan.settings["tags"] = encode_tags(spec.tags)
    if "disks" in fields:
        _disks(plan, spec, config, storage_for)
    if "nics" in fields:
        _nics(plan, spec, config, names)
    return plan


def _current_sockets(config: Mapping[str, Any], cpus: int) -> int:
    """The VM's socket count when it divides ``cpus`` (a spec without sockets keeps the layout), else one."""
    try:
        sockets = int(config.get("sockets") or 1)
    except (TypeError, ValueError):
        sockets = 1
    return sockets if sockets > 0 and cpus % sockets == 0 else 1


def _firmware(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any],
              efi_storage: Callable[[], str]) -> None:
    plan.settings["bios"] = "ovmf" if spec.firmware == "uefi" else "seabios"
    current = config.get("efidisk0")
    volume = split_options(str(current))[0] if current else None
    if spec.firmware == "uefi":
        if current and secure_boot_of(config) == spec.secure_boot:
            return
        if current:
            plan.first_delete.append("efidisk0")
            plan.removed_volumes += [volume] if volume else []
        plan.settings["efidisk0"] = efidisk_value(efi_storage(), spec.secure_boot)
    elif current:
        plan.delete.append("efidisk0")
        plan.removed_volumes += [volume] if volume else []


def _disks(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any],
           storage_for: Callable[[int], str]) -> None:
    live = disk_slots(config)
    highest = max((slot.index for slot in live), default=-1)
    has_scsi = any(slot.prefix == "scsi" for slot in live)
    for position, want in enumerate(spec.disks):
        if position < len(live):
            if want.size > live[position].size:
                plan.resize.append((live[position].key, want.size))
            continue
        key = disk_key(want.bus, position, highest)
        if key is None:
            raise NoFreeSlot(f"disk {position} cannot be added: Proxmox has no {BUS_PREFIX[want.bus]} slot after "
                             f"{BUS_PREFIX[want.bus]}{highest}")
        highest = int(key.removeprefix(BUS_PREFIX[want.bus]))
        plan.settings[key] = new_disk_value(storage_for(position), want.size)
        if want.bus in SCSI_CONTROLLERS and not has_scsi:
            plan.settings["scsihw"] = SCSI_CONTROLLERS[want.bus]
            has_scsi = True
    for slot in live[len(spec.disks):]:
        plan.delete.append(slot.key)
        plan.removed_volumes.append(slot.volume)


def _nics(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any], names: NetworkNames) -> None:
    live = nic_slots(config)
    added: list[str] = []
    for position, want in enumerate(spec.nics):
        if position < len(live):
            if nic_state(live[position], names) != want.model_dump():
                plan.settings[live[position].key] = nic_value(want, names, live[position])
            continue
        key = next_nic_key(live, added)
        if key is None:
            raise NoFreeSlot(f"NIC {position} cannot be added: Proxmox has no network device slot left")
        added.append(key)
        plan.settings[key] = nic_value(want, names)
    plan.delete += [slot.key for slot in live[len(spec.nics):]]
