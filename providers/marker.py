"""The ownership marker, written once for every provider: its format, where a create writes it, how an interrupted
create is found, and the record of a power state virtplane changed.

**Format.** ``Owner.encode()`` (providers/base.py): ``stack=…;endpoint=…;resource=…``. In free text (a
description, a VM's notes) it is the line ``virtplane.owner: <marker>``.

**Where a create writes it.** The complete marker is what makes an object ours on every later run (vSphere's
custom attribute ``virtplane.owner``, Proxmox's tag ``virtplane`` with the description line, the Hyper-V Notes
line). A create cannot always write it in the call that makes the object, so it first writes the marker where the
creating call itself can, and completes it right after:

- vSphere VM: CreateVM/CloneVM carry the marker in ``extraConfig`` (read, in one more property pass, for every
  VM without our custom attribute); a distributed port group: its description. The custom attribute is written
  next.
- Proxmox VM: a create writes tag and description at once; a clone (whose call takes no tags) writes the
  description line and names the VM ``pending_label(resource)``; the update that follows renames it and adds the
  tag in one configuration write.
- Hyper-V VM: New-VM cannot set Notes, so the VM is named ``pending_name(owner)`` until a Set-VM writes the Notes
  line and the real name in one call; a XenServer VM likewise, until its other_config is written.

**Finding an interrupted create.** ``observe`` reads all of those places in its one batched pass, for every object
(declared or not), so an apply killed between the two writes is found by the next plan, by ``destroy`` and by the
deletion of an object the stack no longer declares. An object carrying this stack's marker only in a creation
place is an interrupted create (``Observed.marker_complete=False``: the engine finishes or deletes it) only when
its name is the one the create gave it (``made_by_create``): a copy of one of our objects made by hand under
another name, which carries the same text, is never taken for ours.

**Power.** A VM that virtplane switches off for a change that needs it off, and that is to run again afterwards,
is recorded as such before it is switched off: the line ``virtplane.restore: power=on`` in the same free text as
the marker (``with_restore``: the Proxmox description, the Hyper-V Notes), on vSphere the custom attribute
``virtplane.restore`` (``power=on``), on XenServer the VM's ``other_config`` key of that name (through the power
protocol of providers/power.py). It is removed once the VM runs again. A run killed in between leaves the
record, so the next plan powers the VM on again (``power: off → on``, also reported by drift) even when the stack
leaves power unset (read back as ``Observed.restore_power``).
"""

from __future__ import annotations

from virtplane.providers.base import (
    DESCRIPTION_PREFIX,
    PENDING_PREFIX,
    Owner,
    description_marker,
    owner_from_description,
    owner_from_pending,
    pending_name,
)

PENDING_SUFFIX = ".virtplane-pending"  # Proxmox: names are DNS names
RESTORE_PREFIX = "virtplane.restore: "
RESTORE_KEY = "virtplane.restore"  # where a key-value store keeps the power record (vSphere, XenServer)


def pending_label(resource: str) -> str:
    """The name a VM has between its creation and the write of its complete marker, where names are DNS names
    (Proxmox): the resource's name with a label of ours after it; the marker itself is in the description."""
    return resource + PENDING_SUFFIX


def is_pending_label(name: str | None) -> bool:
    return bool(name) and str(name).endswith(PENDING_SUFFIX)


def made_by_create(name: str | None, owner: Owner) -> bool:
    """Whether an object named ``name`` carrying ``owner`` in a creation place is that create's object: it bears
    the name the create gives (the resource's name, or its pending name)."""
    return name in (owner.resource, pending_label(owner.resource), pending_name(owner))


def with_marker(text: str | None, owner: Owner) -> str:
    """``text`` (a description, notes) with our marker line first and no other marker line; people's lines kept."""
    kept = [line for line in (text or "").splitlines() if not line.startswith(DESCRIPTION_PREFIX)]
    return "\n".join([description_marker(owner), *kept])


def restore_from(text: str | None) -> str | None:
    """The power state to restore that ``text`` records (``"on"``), or None."""
    for line in (text or "").splitlines():
        if line.startswith(RESTORE_PREFIX):
            settings = dict(part.split("=", 1) for part in line.removeprefix(RESTORE_PREFIX).split(";") if "=" in part)
            return settings.get("power") or None
    return None


def with_restore(text: str | None, power: str | None) -> str:
    """``text`` with the power record set to ``power`` (None removes it); every other line kept in its place."""
    lines = [line for line in (text or "").splitlines() if not line.startswith(RESTORE_PREFIX)]
    if power is not None:
        lines.append(f"{RESTORE_PREFIX}power={power}")
    return "\n".join(lines)


__all__ = ["PENDING_PREFIX", "PENDING_SUFFIX", "RESTORE_KEY", "RESTORE_PREFIX", "description_marker",
           "is_pending_label", "made_by_create", "owner_from_description", "owner_from_pending", "pending_label",
           "pending_name", "restore_from", "with_marker", "with_restore"]
