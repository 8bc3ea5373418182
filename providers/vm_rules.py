"""How a changed VirtualMachine field is applied, as a table each hypervisor fills in.

Every driver answers the same question (in place, powered off, replace, or refused) for the same paths
(``memory``, ``disks[1].size``, ``nics[0]``); only the sets of fields differ between hypervisors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from virtplane.providers.base import FieldChange, RefusedChange, Rule

_ITEM = re.compile(r"^(disks|nics|gpus)\[([^\]]+)\](?:\.(\w+))?$")


def top_field(path: str) -> str:
    """``disks[0].size`` -> ``disks``; ``memory`` -> ``memory``."""
    return re.split(r"[\[.]", path, maxsplit=1)[0]


@dataclass(frozen=True)
class VmRules:
    """``hot_add``: raised in place, lowered powered off. ``power_off`` and ``replace``: top-level fields
    applied that way. A disk's ``disk_replace`` attributes replace the VM; a disk grows in place and is
    never shrunk; a NIC's ``adapter`` needs power off, and so does any change to GPUs or SR-IOV NICs (PCI
    devices). Everything else (power, tags, items added or removed, a NIC's network) is applied in
    place. Items are addressed by slot: ``disks[scsi0:1].size``."""

    hypervisor: str
    power_off: frozenset[str]
    replace: frozenset[str] = frozenset()
    hot_add: frozenset[str] = frozenset()
    disk_replace: frozenset[str] = frozenset({"storage", "thin", "bus"})

    @property
    def replaceable(self) -> frozenset[str]:
        """The top-level fields some change of which replaces the VM."""
        return self.replace | (frozenset({"disks"}) if self.disk_replace else frozenset())

    def __call__(self, change: FieldChange) -> Rule:
        path = change.path
        if path in self.hot_add:
            lowered = change.old is not None and change.new is not None and change.new < change.old
            return Rule.POWER_OFF if lowered else Rule.IN_PLACE
        if path in self.power_off:
            return Rule.POWER_OFF
        if path in self.replace:
            return Rule.REPLACE
        match = _ITEM.match(path)
        if match is not None and match.group(1) == "gpus":
            return Rule.POWER_OFF  # PCI devices are added, changed and removed with the VM off
        if match is not None and match.group(1) == "nics" and "sriov" in (_adapter(change.old), _adapter(change.new)):
            return Rule.POWER_OFF  # an SR-IOV function is a PCI device too
        if match is None or match.group(3) is None:
            return Rule.IN_PLACE
        kind, attribute = match.group(1), match.group(3)
        if kind == "disks":
            if attribute in self.disk_replace:
                return Rule.REPLACE
            if attribute == "size" and change.old is not None and change.new < change.old:
                raise RefusedChange(f"shrinking a disk from {change.old} GiB to {change.new} GiB is not possible "
                                    f"on {self.hypervisor}; grow it or replace the VM")
            return Rule.IN_PLACE
        return Rule.POWER_OFF if attribute == "adapter" else Rule.IN_PLACE


def _adapter(item: object) -> object:
    return item.get("adapter") if isinstance(item, dict) else None
