"""The generic diff: desired spec vs. observed state, both in spec shape, field by field.

``None`` in the desired state means "not managed" and is never a difference (a field the stack leaves
unset is neither compared nor changed). Lists of objects that carry a ``slot`` (disks, NICs) are matched
by slot, never by position: ``disks[scsi0:1].size`` for a changed field, ``disks[scsi0:2]`` with
``old=None`` for an added item and ``new=None`` for a removed one. Other lists of objects (GPUs) compare
position by position (``gpus[0].profile``); lists of plain values (tags) compare as sets. An object field (a
container's ``features``, its ``rootfs``) compares key by key (``features.nesting``), its unset keys not managed.
"""

from __future__ import annotations

from typing import Any

from virtplane.providers.base import FieldChange


def diff(desired: dict[str, Any], observed: dict[str, Any], ignore: frozenset[str] = frozenset()
         ) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for field, want in desired.items():
        if field in ignore:
            continue
        _compare(field, want, observed.get(field), changes)
    return changes


def _compare(path: str, want: Any, have: Any, out: list[FieldChange]) -> None:
    if want is None:
        return
    if isinstance(want, dict):
        live = have if isinstance(have, dict) else {}
        for key, value in want.items():
            _compare(f"{path}.{key}", value, live.get(key), out)
        return
    if isinstance(want, list) and all(not isinstance(item, dict) for item in want) and not _has_items(have):
        if sorted(map(str, want)) != sorted(map(str, have or [])):
            out.append(FieldChange(path, sorted(have or [], key=str), sorted(want, key=str)))
        return
    if isinstance(want, list):
        if all(isinstance(item, dict) and item.get("slot") for item in [*want, *(have or [])]):
            _compare_by_slot(path, want, list(have or []), out)
        else:
            _compare_by_position(path, want, list(have or []), out)
        return
    if want != have:
        out.append(FieldChange(path, have, want))


def _has_items(have: Any) -> bool:
    return isinstance(have, list) and any(isinstance(item, dict) for item in have)


def _compare_by_slot(path: str, want: list[dict[str, Any]], have: list[dict[str, Any]],
                     out: list[FieldChange]) -> None:
    live = {item["slot"]: item for item in have}
    for item in want:
        slot = item["slot"]
        if slot not in live:
            out.append(FieldChange(f"{path}[{slot}]", None, item))
            continue
        for key, value in item.items():
            if key != "slot":
                _compare(f"{path}[{slot}].{key}", value, live[slot].get(key), out)
    declared = {item["slot"] for item in want}
    for item in have:
        if item["slot"] not in declared:
            out.append(FieldChange(f"{path}[{item['slot']}]", item, None))


def _compare_by_position(path: str, want: list[Any], have: list[Any], out: list[FieldChange]) -> None:
    for index in range(max(len(want), len(have))):
        item_path = f"{path}[{index}]"
        if index >= len(have):
            out.append(FieldChange(item_path, None, want[index]))
        elif index >= len(want):
            out.append(FieldChange(item_path, have[index], None))
        elif isinstance(want[index], dict):
            for key, value in want[index].items():
                _compare(f"{item_path}.{key}", value, (have[index] or {}).get(key), out)
        elif want[index] != have[index]:
            out.append(FieldChange(item_path, have[index], want[index]))
