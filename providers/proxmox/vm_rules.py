"""How each changed VirtualMachine field can be applied on Proxmox VE.

- In place: ``power``, ``tags``; disks added, removed or grown and NICs added, removed or moved to another
  network (PVE's default ``hotplug`` is ``network,disk,usb``).
- Power off: ``cpus``, ``sockets`` and ``memory`` (CPU and memory hotplug need NUMA and the ``hotplug``
  option, which virtplane does not set), ``firmware``, ``secure_boot`` (the EFI vars disk is re-made),
  ``guest_os``, ``machine``, ``nested_virtualization``, a NIC's ``adapter``, and ``node``: the VM migrates
  offline, because disks on local storage (local-lvm, the usual case) cannot move with a running VM.
- Replace: a disk's ``storage``, ``thin`` or ``bus``.
- Refused: shrinking a disk.
"""

from __future__ import annotations

import re

from virtplane.providers.base import FieldChange, RefusedChange, Rule

_ITEM = re.compile(r"^(disks|nics)\[(\d+)\](?:\.(\w+))?$")
_POWER_OFF = {"cpus", "sockets", "memory", "firmware", "secure_boot", "guest_os", "machine",
              "nested_virtualization", "node"}
_DISK_REPLACE = {"storage", "thin", "bus"}


def top_field(path: str) -> str:
    """``disks[0].size`` -> ``disks``; ``memory`` -> ``memory``."""
    return re.split(r"[\[.]", path, maxsplit=1)[0]


def vm_rule(change: FieldChange) -> Rule:
    if change.path in _POWER_OFF:
        return Rule.POWER_OFF
    match = _ITEM.match(change.path)
    if match is None:
        return Rule.IN_PLACE  # power, tags
    kind, attribute = match.group(1), match.group(3)
    if attribute is None:
        return Rule.IN_PLACE  # an item added or removed
    if kind == "disks":
        if attribute in _DISK_REPLACE:
            return Rule.REPLACE
        if attribute == "size" and change.old is not None and change.new < change.old:
            raise RefusedChange(f"shrinking a disk from {change.old} GiB to {change.new} GiB is not possible on "
                                "Proxmox; grow it or replace the VM")
        return Rule.IN_PLACE
    if attribute == "adapter":
        return Rule.POWER_OFF
    return Rule.IN_PLACE
