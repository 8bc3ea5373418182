"""The generic diff: desired spec vs. observed state, both in spec shape, field by field.

``None`` in the desired state means "whatever the hypervisor chose" and is never a difference.
Lists of objects (disks, NICs) are compared position by position: ``disks[1].size`` for a changed
field, ``disks[2]`` with ``old=None`` for an added item and ``new=None`` for a removed one.
Lists of plain values (tags) compare as sets.
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
    if isinstance(want, list) and all(not isinstance(item, dict) for item in want):
        if sorted(map(str, want)) != sorted(map(str, have or [])):
            out.append(FieldChange(path, sorted(have or []), sorted(want)))
        return
    if isinstance(want, list):
        have = list(have or [])
        for index in range(max(len(want), len(have))):
            item_path = f"{path}[{index}]"
            if index >= len(have):
                out.append(FieldChange(item_path, None, want[index]))
            elif index >= len(want):
                out.append(FieldChange(item_path, have[index], None))
            else:
                for key, value in want[index].items():
                    _compare(f"{item_path}.{key}", value, have[index].get(key), out)
        return
    if want != have:
        out.append(FieldChange(path, have, want))
