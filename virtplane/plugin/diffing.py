"""Diff: the generic diff of the slot-resolved spec against the old outputs, in Pulumi's terms.

virtplane's own paths name disks and NICs by slot (``disks[scsi0:1].size``); Pulumi's are positions in the
inputs (``disks[1].size``), or in the old outputs for an item that is no longer declared. A field whose
rule is REPLACE goes into ``replaces`` (top-level name) and its detailed kind is ``*_REPLACE``; a removed
disk is a DELETE. A value not known yet (a preview) is an UPDATE — or, for a field some change of which
replaces the object (the driver's ``replaceable``: disks, Hyper-V firmware…), an UPDATE_REPLACE in ``replaces``,
so the preview never hides a replacement that ``up`` would make. What destroys data is said in one sentence per
VM, slot and size (the plan's own words); what would destroy it if an unknown value forces the replacement, too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pulumi.provider.experimental.provider import PropertyDiff, PropertyDiffKind

from virtplane.kinds import KINDS
from virtplane.plan import Action, PlannedChange, ResourcePlan
from virtplane.plugin import guards
from virtplane.providers.base import FieldChange, Observed, Rule

_SLOTTED = sorted({collection for kind in KINDS for collection in kind.spec.slotted})  # disks, mounts, nics
_ITEM = re.compile(rf"^({'|'.join(_SLOTTED)})\[([^\]]+)\](.*)$")


@dataclass
class PulumiDiff:
    planned: list[PlannedChange] = field(default_factory=list)
    detailed: dict[str, PropertyDiff] = field(default_factory=dict)
    replaces: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    data_loss: list[str] = field(default_factory=list)
    possible_loss: list[str] = field(default_factory=list)  # if the unknown values force the replacement
    item: ResourcePlan | None = None


def top_field(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def pulumi_key(path: str, desired: dict[str, Any], old: dict[str, Any]) -> str:
    """``disks[scsi0:1].size`` -> ``disks[<index in the inputs>].size``, or the index in the old outputs
    for an item no longer declared."""
    match = _ITEM.match(path)
    if match is None:
        return path
    collection, slot, rest = match.groups()
    for items in (desired.get(collection) or [], old.get(collection) or []):
        for index, item in enumerate(items):
            if isinstance(item, dict) and item.get("slot") == slot:
                return f"{collection}[{index}]{rest}"
    return path


def _kind(change: FieldChange, replace: bool) -> PropertyDiffKind:
    if change.old is None:
        return PropertyDiffKind.ADD_REPLACE if replace else PropertyDiffKind.ADD
    if change.new is None:
        return PropertyDiffKind.DELETE_REPLACE if replace else PropertyDiffKind.DELETE
    return PropertyDiffKind.UPDATE_REPLACE if replace else PropertyDiffKind.UPDATE


def pulumi_diff(kind: str, name: str, endpoint: str, planned: list[PlannedChange], desired: dict[str, Any],
                old: dict[str, Any], unknown: set[str], replaceable: frozenset[str] = frozenset()) -> PulumiDiff:
    result = PulumiDiff(planned=planned)
    for item in planned:
        replace = item.rule is Rule.REPLACE
        result.detailed[pulumi_key(item.change.path, desired, old)] = PropertyDiff(_kind(item.change, replace), False)
        if replace and top_field(item.change.path) not in result.replaces:
            result.replaces.append(top_field(item.change.path))
    known_replaces = list(result.replaces)
    unknown_replaces = []
    for key in sorted(unknown):  # a value known only at apply time may change anything
        if key in replaceable:
            result.detailed[key] = PropertyDiff(PropertyDiffKind.UPDATE_REPLACE, False)
            unknown_replaces.append(key)
            if key not in result.replaces:
                result.replaces.append(key)
        else:
            result.detailed.setdefault(key, PropertyDiff(PropertyDiffKind.UPDATE, False))
    result.diffs = sorted({top_field(key) for key in result.detailed})
    action = Action.REPLACE if known_replaces else Action.UPDATE
    result.item = ResourcePlan(kind, name, endpoint, action, observed=Observed(name, None, None, old),
                               changes=planned)
    if planned:
        result.data_loss = result.item.data_loss()
    result.possible_loss = guards.possible_loss(result.item, unknown_replaces)
    return result
