"""How each changed VirtualMachine field can be applied on vSphere."""

from __future__ import annotations

import re

from virtplane.providers.base import FieldChange, RefusedChange, Rule

_ITEM = re.compile(r"^(disks|nics)\[(\d+)\](?:\.(\w+))?$")
_ALWAYS_POWER_OFF = {"firmware", "secure_boot", "guest_os", "nested_virtualization", "sockets"}
# A hardware version is set at creation; vSphere can only upgrade it, so a new one means a new VM.
_REPLACE = {"machine"}
_HOT_ADD = {"cpus", "memory"}
_DISK_REPLACE = {"storage", "thin", "bus"}


def top_field(path: str) -> str:
    """``disks[0].size`` -> ``disks``; ``memory`` -> ``memory``."""
    return re.split(r"[\[.]", path, maxsplit=1)[0]


def vm_rule(change: FieldChange) -> Rule:
    path = change.path
    if path in _HOT_ADD:
        if change.old is not None and change.new is not None and change.new < change.old:
            return Rule.POWER_OFF
        return Rule.IN_PLACE
    if path in _ALWAYS_POWER_OFF:
        return Rule.POWER_OFF
    if path in _REPLACE:
        return Rule.REPLACE
    match = _ITEM.match(path)
    if match is None:
        return Rule.IN_PLACE  # power, tags, node (vMotion) and anything else settable live
    kind, attribute = match.group(1), match.group(3)
    if attribute is None:
        return Rule.IN_PLACE  # an item added or removed
    if kind == "disks":
        if attribute in _DISK_REPLACE:
            return Rule.REPLACE
        if attribute == "size" and change.old is not None and change.new < change.old:
            raise RefusedChange(f"shrinking a disk from {change.old} GiB to {change.new} GiB is not possible; "
                                "grow it or replace the VM")
        return Rule.IN_PLACE
    if attribute == "adapter":
        return Rule.POWER_OFF
    return Rule.IN_PLACE
