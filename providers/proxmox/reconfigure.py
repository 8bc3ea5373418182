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
    enrolled_keys,
    new_disk_value,
    nic_slot_problem,
    nic_slots,
    nic_value,
    ostype,
    slot_problem,
    split_options,
)
from virtplane.providers.proxmox.devices import (
    DeviceWriter,
    PciView,
    free_hostpci,
    hostpci_entries,
    is_hostpci_slot,
    kind_of,
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
                finish_marker: str | None = None, devices: DeviceWriter | None = None, node: str = "",
                pci: PciView | None = None) -> Reconfiguration:
    """What to change so that ``config`` matches ``spec`` in ``changes``; ``finish_marker`` (the resource's name)
    writes the tags (the marker tag of an interrupted clone) even when they did not change, and gives the VM that
    name in the same write (a clone bears a pending name until then: providers/marker.py). ``devices`` writes GPUs
    and SR-IOV NICs (``pci`` and ``node`` tell which live ``hostpciN`` is which); a VM given its first device gets
    ``balloon=0``."""
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
    if finish_marker and config.get("name") != finish_marker:
        plan.settings["name"] = finish_marker
    disk_changes = [c for c in changes if top_field(c.path) == "disks"]
    if disk_changes:
        _disks(plan, spec, config, disk_changes, storage_for)
    nic_changes = [c for c in changes if top_field(c.path) == "nics"]
    if nic_changes:
        _nics(plan, spec, config, nic_changes, names, devices)
    if "gpus" in fields and spec.gpus is not None:
        _gpus(plan, spec, config, _writer(devices), node, pci or PciView())
    if any(is_hostpci_slot(key) for key in plan.settings) and str(config.get("balloon", "")) != "0":
        plan.settings["balloon"] = 0
    return plan


def _writer(devices: DeviceWriter | None) -> DeviceWriter:
    if devices is None:
        raise NoFreeSlot("PCI devices cannot be changed here: no device writer was given")
    return devices


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
    UEFI). The EFI vars disk (boot entries, enrolled keys) is data: SeaBIOS leaves it alone, so going back to BIOS
    keeps it and going back to UEFI finds it again; it is re-made only when secure boot changes, because PVE
    enrolls the keys only when it makes the disk (the plan marks that change as destroying it: vm.py)."""
    live_uefi = config.get("bios") == "ovmf"
    uefi = spec.firmware == "uefi" if spec.firmware is not None else live_uefi
    if uefi != live_uefi:
        plan.settings["bios"] = "ovmf" if uefi else "seabios"
    if not uefi:
        return
    current = config.get("efidisk0")
    secure = spec.secure_boot if spec.secure_boot is not None else (enrolled_keys(config) if current else False)
    if current and enrolled_keys(config) == secure:
        return
    if current:
        volume = split_options(str(current))[0]
        plan.first_delete.append("efidisk0")
        plan.removed_volumes += [volume] if volume else []
    plan.settings["efidisk0"] = efidisk_value(efi_storage(), secure)


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
          names: NetworkNames, devices: DeviceWriter | None) -> None:
    live = {slot.key: slot for slot in nic_slots(config)}
    functions = {entry.key: entry for entry in hostpci_entries(config)}
    declared = {nic.slot: nic for nic in spec.nics or [] if nic.slot}
    for change in changes:
        slot, attribute = _item(change)
        if attribute is None and change.new is None:
            if slot in live or slot in functions:
                plan.delete.append(slot)
        elif slot in declared and is_hostpci_slot(slot):
            if attribute is None and change.old is None and slot in config:
                raise NoFreeSlot(f"NIC {slot} cannot be added: {slot} already holds another PCI device "
                                 f"({config[slot]}); name a free hostpci slot with Nic(..., slot=...)")
            if attribute not in (None, "device"):
                continue  # a VF's network is a label on Proxmox (check() refuses a VLAN); its adapter is refused
            if problem := nic_slot_problem(slot, declared[slot].adapter):
                raise NoFreeSlot(f"NIC {slot} cannot be added: {problem}")
            try:
                plan.settings[slot] = _writer(devices).vf(declared[slot], functions.get(slot) if attribute else None)
            except ValueError as exc:
                raise NoFreeSlot(f"NIC {slot} {exc}") from None
        elif slot in declared:
            if problem := nic_slot_problem(slot, declared[slot].adapter):
                raise NoFreeSlot(f"NIC {slot} cannot be added: {problem}")
            plan.settings[slot] = nic_value(declared[slot], names, live.get(slot))


def _gpus(plan: Reconfiguration, spec: VirtualMachineSpec, config: Mapping[str, Any], devices: DeviceWriter,
          node: str, pci: PciView) -> None:
    """GPUs by position: ``gpus[i]`` is the i-th live GPU entry (hostpci order); extra declared ones take the lowest
    free hostpci keys, extra live ones are removed."""
    entries = hostpci_entries(config)
    live = [entry for entry in entries if kind_of(entry, node, pci) == "gpu"]
    taken = {entry.key for entry in entries} | {key for key in plan.settings if is_hostpci_slot(key)}
    wanted = spec.gpus or []
    for index, gpu in enumerate(wanted):
        previous = live[index] if index < len(live) else None
        try:
            value = devices.gpu(gpu, previous)
        except ValueError as exc:
            raise NoFreeSlot(f"gpus[{index}] {exc}") from None
        if previous is not None:
            if value != config.get(previous.key):
                plan.settings[previous.key] = value
            continue
        key = free_hostpci(taken)
        if key is None:
            raise NoFreeSlot(f"gpus[{index}] cannot be added: every hostpci slot is taken")
        taken.add(key)
        plan.settings[key] = value
    plan.delete += [entry.key for entry in live[len(wanted):]]
