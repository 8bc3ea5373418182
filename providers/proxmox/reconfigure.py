"""Pure planning of an update: which config keys to set or delete, which disks to grow, for the changes listed.

Only what ``changes`` names is touched, and a field the spec leaves unset (None) is never written. Disks and
NICs are reconciled by slot, the config key the change names (``disks[scsi1].size`` grows ``scsi1``,
``disks[scsi1]`` with ``new=None`` removes it, ``nics[net0].network`` rewires ``net0``); list positions are
never used.

The VM driver sends the result: ``first_delete`` in its own write (PVE refuses to delete and set one key in
the same request, as re-making the EFI vars disk needs), then ``settings`` and ``delete`` together, then one
resize per grown disk. Removed disks become ``unusedN`` entries on PVE; ``removed_volumes`` names them so the
driver destroys them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import FieldChange
from virtplane.providers.proxmox.config import (
    SCSI_CONTROLLERS,
    NetworkNames,
    disk_slots,
    efidisk_value,
    new_disk_value,
    nic_slot_problem,
    nic_slots,
    nic_value,
    ostype,
    secure_boot_of,
    slot_problem,
    split_options,
)
from virtplane.providers.proxmox.ownership import encode_tags, user_tags
from virtplane.providers.vm_rules import top_field
from virtplane.specs import DiskSpec, VirtualMachineSpec

_ITEM = re.compile(r"^(disks|nics)\[([^\]]+)\](?:\.(\w+))?$")


class NoFreeSlot(ValueError):
    """A disk or NIC cannot be added: its slot does not exist or holds something else."""


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


def reconfigure(spec: VirtualMachineSpec, config: Mapping[str, Any], changes: list[FieldChange],
                names: NetworkNames, storage_for: Callable[[DiskSpec], str], efi_storage: Callable[[], str],
                finish_marker: bool = False) -> Reconfiguration:
    """What to change so that ``config`` matches ``spec`` in ``changes``; ``finish_marker`` writes the tags (the
    marker tag of an interrupted clone) even when they did not change."""
    plan = Reconfiguration()
    fields = {top_field(change.path) for change in changes}
    if {"cpus", "sockets"} & fields:
        sockets = spec.sockets or _current_sockets(config, spec.cpus)
        cpus = spec.cpus if spec.cpus is not None else _current_cpus(config)
        plan.settings.update(cores=cpus // sockets, sockets=sockets)
    if "memory" in fields and spec.memory is not None:
        plan.settings["memory"] = spec.memory
    if "guest_os" in fields and spec.guest_os is not None:
        plan.settings["ostype"] = ostype(spec.guest_os)
    if "machine" in fields and spec.machine:
        plan.settings["machine"] = spec.machine
    if "nested_virtualization" in fields and spec.nested_virtualization is not None:
        if spec.nested_virtualization:
            plan.settings["cpu"] = "host"
        else:
            plan.delete.append("cpu")
    if {"firmware", "secure_boot"} & fields:
        _firmware(plan, spec, config, efi_storage)
    if ("tags" in fields and spec.tags is not None) or finish_marker:
        plan.settings["tags"] = encode_tags(spec.tags if spec.tags is not None else user_tags(config.get("tags")))
    disk_changes = [c for c in changes if top_field(c.path) == "disks"]
    if disk_changes:
        _disks(plan, spec, config, disk_changes, storage_for)
    nic_changes = [c for c in changes if top_field(c.path) == "nics"]
    if nic_changes:
        _nics(plan, spec, config, nic_changes, names)
    return plan


def _current_sockets(config: Mapping[str, Any], cpus: int | None) -> int:
    """The VM's socket count when it divides ``cpus`` (a spec without sockets keeps the layout), else one."""
    try:
        sockets = int(config.get("sockets") or 1)
    except (TypeError, ValueError):
        sockets = 1
    if cpus is None:
        return max(sockets, 1)
    return sockets if sockets > 0 and cpus % sockets == 0 else 1


def _current_cpus(config: Mapping[str, Any]) -> int:
    try:
        return int(config.get("cores") or 1) * int(config.get("sockets") or 1)
    except (TypeError, ValueError):
        return 1


def _firmware(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any],
              efi_storage: Callable[[], str]) -> None:
    """Unset firmware or secure boot keeps the VM's own (a clone of a UEFI template declaring secure boot stays
    UEFI)."""
    live_uefi = config.get("bios") == "ovmf"
    uefi = spec.firmware == "uefi" if spec.firmware is not None else live_uefi
    secure = spec.secure_boot if spec.secure_boot is not None else secure_boot_of(config)
    if uefi != live_uefi:
        plan.settings["bios"] = "ovmf" if uefi else "seabios"
    current = config.get("efidisk0")
    volume = split_options(str(current))[0] if current else None
    if uefi:
        if current and secure_boot_of(config) == secure:
            return
        if current:
            plan.first_delete.append("efidisk0")
            plan.removed_volumes += [volume] if volume else []
        plan.settings["efidisk0"] = efidisk_value(efi_storage(), secure)
    elif current:
        plan.delete.append("efidisk0")
        plan.removed_volumes += [volume] if volume else []


def _item(change: FieldChange) -> tuple[str, str | None]:
    """(slot, attribute) of ``disks[scsi1].size``; attribute None for a whole item added or removed."""
    found = _ITEM.match(change.path)
    if found is None:
        raise NoFreeSlot(f"'{change.path}' names no disk or NIC slot")
    return found.group(2), found.group(3)


def _disks(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any], changes: list[FieldChange],
           storage_for: Callable[[DiskSpec], str]) -> None:
    live = {slot.key: slot for slot in disk_slots(config)}
    declared = {disk.slot: disk for disk in spec.disks or [] if disk.slot}
    has_scsi = any(key.startswith("scsi") for key in live)
    for change in changes:
        slot, attribute = _item(change)
        if attribute == "size" and slot in live and slot in declared:
            if declared[slot].size > live[slot].size:
                plan.resize.append((slot, declared[slot].size))
        elif attribute is None and change.new is None and slot in live:
            plan.delete.append(slot)
            plan.removed_volumes.append(live[slot].volume)
        elif attribute is None and change.old is None and slot in declared:
            want = declared[slot]
            if problem := slot_problem(slot, want.bus):
                raise NoFreeSlot(f"disk {slot} cannot be added: {problem}")
            if slot in config:
                raise NoFreeSlot(f"disk {slot} cannot be added: the VM's {slot} holds '{config[slot]}' (a CD-ROM or "
                                 "cloud-init drive); give the disk another slot")
            plan.settings[slot] = new_disk_value(storage_for(want), want.size)
            bus = want.bus or "paravirtual"
            if slot.startswith("scsi") and bus in SCSI_CONTROLLERS and not has_scsi:
                plan.settings["scsihw"] = SCSI_CONTROLLERS[bus]
                has_scsi = True
        # storage, thin and bus changes replace the VM: they never reach an update (a clone keeps them as cloned)


def _nics(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any], changes: list[FieldChange],
          names: NetworkNames) -> None:
    live = {slot.key: slot for slot in nic_slots(config)}
    declared = {nic.slot: nic for nic in spec.nics or [] if nic.slot}
    for change in changes:
        slot, attribute = _item(change)
        if attribute is None and change.new is None:
            if slot in live:
                plan.delete.append(slot)
        elif slot in declared:
            if problem := nic_slot_problem(slot):
                raise NoFreeSlot(f"NIC {slot} cannot be added: {problem}")
            plan.settings[slot] = nic_value(declared[slot], names, live.get(slot))
