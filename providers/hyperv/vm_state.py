"""Pure mapping between Hyper-V objects and the VirtualMachine spec's shape (no I/O).

- Generation 2 is ``firmware="uefi"``, Generation 1 ``"bios"`` (fixed at creation: a change is a replace).
- ``machine`` is the VM configuration version (``"10.0"``); ``cpus`` the processor count; ``memory`` the
  startup memory in MiB; ``nested_virtualization`` the processor's ExposeVirtualizationExtensions.
- Disks: slot ``scsi<ControllerNumber>:<ControllerLocation>`` (SCSI is ``bus="paravirtual"``) or
  ``ide<n>:<location>``; size from the VHD (whole GiB); ``thin`` is a dynamic VHD.
- NICs: slot = the adapter's Name (virtplane names them ``nic0``, ``nic1``…); the network is read back from
  the switch and the access VLAN (a declared Network with that VLAN on the endpoint's switch, else
  ``switch`` or ``switch.vlan``); ``sriov`` when IovWeight > 0. A VLAN setting (VMNetworkAdapterVlanSetting)
  has no VMId or adapter name of its own: it names its adapter in ``ParentAdapter``, which remoting delivers as
  the adapter's text ``VMNetworkAdapter (Name = 'nic0', VMName = 'web') [VMId = '<guid>']`` (or, where the
  session serializes deeper, as the adapter object): ``parent_adapter`` reads both.
- A disk with checkpoints is a chain of differencing disks (``.avhdx``, VhdType Differencing, ParentPath): its
  size is the leaf's, its ``thin`` the base disk's (the one virtplane made).
- Notes hold the ownership marker and the tags, each on its own line; people's own lines are kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import (
    DESCRIPTION_PREFIX,
    PENDING_PREFIX,
    Owner,
    description_marker,
    owner_from_description,
    owner_from_pending,
    vlan_named,
)

GiB = 1024**3
MiB = 1024**2
TAGS_PREFIX = "virtplane.tags: "
MAX_NAME = 100  # Hyper-V's limit on virtual machine names


def pending_name(owner: Owner) -> str:
    """The name a VM has between New-VM and the Set-VM that gives it its real name: the shared pending prefix and a
    short hash of the stack and resource (``virtplane-pending:#<hash>``: Hyper-V names are at most 100 characters,
    the marker the other hypervisors put in the name can be longer). The same pipeline writes the full marker into
    Notes (``New-VM | Set-VM -Notes``), so a create cut after it is recognised by its Notes, and one cut between the
    two by the hash of a resource the stack declares."""
    digest = hashlib.sha256(f"{owner.stack}\n{owner.resource}".encode()).hexdigest()[:24]
    return f"{PENDING_PREFIX}#{digest}"


def is_pending(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PENDING_PREFIX)


def pending_owner(name: str | None, notes: str | None, stack: str, resources: Iterable[str]) -> Owner | None:
    """The owner of a VM still under a pending name: from its Notes; else from the name itself when it carries the
    whole marker (the form ``providers.base.pending_name`` writes, and this driver wrote before names were hashed);
    else the declared resource of ``stack`` whose hashed pending name it carries; None when it is not pending or
    belongs to no such resource."""
    if not is_pending(name):
        return None
    owner = owner_from_notes(notes) or owner_from_pending(name)
    if owner is not None:
        return owner
    return next((Owner(stack, resource) for resource in resources
                 if pending_name(Owner(stack, resource)) == name), None)


_PARENT = re.compile(r"^\w+ \(Name = '(?P<name>.*?)', VMName = '.*'\) \[VMId = '(?P<vm>[0-9A-Fa-f-]{36})'\]$",
                     re.DOTALL)


def parent_adapter(setting: Any) -> tuple[str, str] | None:
    """(VMId lower case, adapter name) of a VLAN setting's ParentAdapter, whether it arrived as the adapter's text or
    as the adapter object; None when it names none."""
    parent = setting.get("ParentAdapter")
    if parent is None:
        return None
    if isinstance(parent, str):
        match = _PARENT.match(parent.strip())
        return (match["vm"].lower(), match["name"]) if match else None
    props = {str(k).lower(): v for source in ("adapted_properties", "extended_properties")
             for k, v in (getattr(parent, source, None) or {}).items()}
    if props.get("vmid") is None or props.get("name") is None:
        return None
    return str(props["vmid"]).lower(), str(props["name"])


def notes_with(notes: str | None, owner: Owner | None, tags: list[str] | None) -> str:
    """``notes`` with our marker and tags lines replaced (tags None keeps the tags line as it is)."""
    lines = (notes or "").splitlines()
    keep = [line for line in lines if not line.startswith(DESCRIPTION_PREFIX)
            and (tags is None or not line.startswith(TAGS_PREFIX))]
    ours = [description_marker(owner)] if owner is not None else []
    if tags:
        ours.append(TAGS_PREFIX + ",".join(sorted(set(tags))))
    return "\n".join(ours + keep)


def tags_from_notes(notes: str | None) -> list[str]:
    for line in (notes or "").splitlines():
        if line.startswith(TAGS_PREFIX):
            return sorted({tag for tag in line.removeprefix(TAGS_PREFIX).split(",") if tag})
    return []


def owner_from_notes(notes: str | None) -> Owner | None:
    return owner_from_description(notes)


@dataclass(frozen=True)
class Switches:
    """The endpoint's switch and the declared networks (VLANs on it)."""

    switch: str | None
    vlans: Mapping[str, int] = field(default_factory=dict)

    def wiring(self, network: str) -> tuple[str, int]:
        if network in self.vlans and self.switch:
            return self.switch, self.vlans[network]
        if (vlan := vlan_named(network, self.switch)) is not None and self.switch:
            return self.switch, vlan
        return network, 0

    def name_of(self, switch: str | None, vlan: int) -> str | None:
        if switch is None:
            return None
        if switch == self.switch:
            for name in sorted(self.vlans):
                if self.vlans[name] == vlan:
                    return name
        return f"{switch}.{vlan}" if vlan else switch


def slot_order(slot: str) -> tuple[Any, ...]:
    """Slots sort by their numbers, not as text: ``scsi0:2`` before ``scsi0:10``, ``nic2`` before ``nic10``."""
    parts = re.split(r"(\d+)", slot)
    return tuple(int(part) if part.isdigit() else part for part in parts)


def disk_slot(controller_type: str | None, number: int | None, location: int | None) -> str:
    prefix = "ide" if str(controller_type or "").upper() == "IDE" else "scsi"
    return f"{prefix}{number or 0}:{location or 0}"


def drive_slot(drive: Any) -> str:
    """The slot of a HardDiskDrive object (``scsi0:1``)."""
    return disk_slot(drive.text("ControllerType"), drive.number("ControllerNumber"), drive.number("ControllerLocation"))


def parse_disk_slot(slot: str) -> tuple[str, int, int]:
    """``scsi0:1`` -> ("SCSI", 0, 1)."""
    head, _, location = slot.partition(":")
    kind = "IDE" if head.startswith("ide") else "SCSI"
    return kind, int(head.removeprefix("ide").removeprefix("scsi") or 0), int(location or 0)


def vm_state(vm: Any, processor: Any, disks: list[tuple[Any, Any]], nics: list[tuple[Any, Any]],
             firmware: Any, host: str, switches: Switches) -> dict[str, Any]:
    """The spec-shaped state of one VM from its objects (PsObject-like: ``get``/``number``/``flag``/``text``).

    ``disks`` pairs each HardDiskDrive with its VHD chain, leaf first (empty when unread); ``nics`` each adapter
    with its VLAN setting."""
    generation = vm.number("Generation") or 1
    state = str(vm.get("State") or "")
    memory = vm.number("MemoryStartup")
    disk_items = []
    for drive, chain in disks:
        leaf, base = (chain[0], chain[-1]) if chain else (None, None)
        size = leaf.number("Size") if leaf is not None else None
        vhd_type = str(base.get("VhdType") or "") if base is not None else ""
        if vhd_type.lower() == "differencing":  # the chain's base was not read: its type is unknown
            vhd_type = ""
        disk_items.append({
            "slot": drive_slot(drive),
            "size": None if size is None else size // GiB,
            "storage": None,
            "thin": None if not vhd_type else vhd_type.lower() == "dynamic",
            "bus": "ide" if str(drive.text("ControllerType") or "").upper() == "IDE" else "paravirtual",
        })
    nic_items = []
    for adapter, vlan in nics:
        access = vlan.number("AccessVlanId") if vlan is not None else 0
        mode = str(vlan.get("OperationMode") or "") if vlan is not None else ""
        vlan_id = access if mode.lower() == "access" and access else 0
        nic_items.append({
            "slot": adapter.text("Name") or "",
            "network": switches.name_of(adapter.text("SwitchName"), vlan_id or 0),
            "adapter": "sriov" if (adapter.number("IovWeight") or 0) > 0 else "paravirtual",
            "device": None,
        })
    secure = firmware.get("SecureBoot") if firmware is not None else None
    return {
        "cpus": processor.number("Count") if processor is not None else vm.number("ProcessorCount"),
        "sockets": None,
        "memory": None if memory is None else memory // MiB,
        "node": host,
        "machine": vm.text("Version"),
        "disks": sorted(disk_items, key=lambda d: slot_order(d["slot"])),
        "nics": sorted(nic_items, key=lambda n: slot_order(n["slot"])),
        "gpus": [],
        "firmware": "uefi" if generation == 2 else "bios",
        "secure_boot": str(secure).lower() == "on" if secure is not None else False,
        "guest_os": None,
        "power": "on" if state.lower() == "running" else "off",
        "nested_virtualization": bool(processor.flag("ExposeVirtualizationExtensions")) if processor else False,
        "clone_from": None,
        "linked_clone": False,
        "tags": tags_from_notes(vm.text("Notes")),
    }
