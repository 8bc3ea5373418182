"""Give every declared disk and NIC its slot (its place on the hypervisor's bus), so items are identified
by slot and never by list position alone.

A slot the stack names (``Disk(…, slot="scsi0:1")``) is taken as is. The remaining declared items take the
live items' slots that no declared item names, in the live order (the driver lists them sorted by slot),
and past those the driver's next free slot for the item's bus. So ``disks=[Disk(40), Disk(100)]`` against a
live VM with ``scsi0:0`` and ``scsi0:1`` matches them in order, and a shorter list leaves the last live
disk undeclared: a removal the plan marks as destroying data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from virtplane.specs import DiskSpec, NicSpec, VirtualMachineSpec

NewSlot = Callable[[str, dict[str, Any], set[str]], str]
"""(collection "disks"|"nics", the item as a dict, slots taken) -> a free slot for it."""


def resolve(collection: str, declared: list[dict[str, Any]], live: list[dict[str, Any]],
            new_slot: NewSlot) -> list[dict[str, Any]]:
    named = {item["slot"] for item in declared if item.get("slot")}
    taken = named | {item["slot"] for item in live if item.get("slot")}
    free_live = iter([item["slot"] for item in live if item.get("slot") and item["slot"] not in named])
    resolved = []
    for item in declared:
        if item.get("slot"):
            resolved.append(item)
            continue
        slot = next(free_live, None)
        if slot is None:
            slot = new_slot(collection, item, taken)
            taken.add(slot)
        resolved.append({**item, "slot": slot})
    return resolved


def resolve_vm(spec: VirtualMachineSpec, live_state: dict[str, Any] | None, new_slot: NewSlot
               ) -> VirtualMachineSpec:
    """``spec`` with a slot on every disk and NIC (unset lists stay unset: not managed)."""
    live_state = live_state or {}
    update: dict[str, Any] = {}
    if spec.disks is not None:
        disks = resolve("disks", [d.model_dump() for d in spec.disks], live_state.get("disks") or [], new_slot)
        update["disks"] = [DiskSpec.model_validate(d) for d in disks]
    if spec.nics is not None:
        nics = resolve("nics", [n.model_dump() for n in spec.nics], live_state.get("nics") or [], new_slot)
        update["nics"] = [NicSpec.model_validate(n) for n in nics]
    return spec.model_copy(update=update) if update else spec


def next_numbered(prefix: str, taken: set[str], start: int = 0) -> str:
    """``prefix`` + the smallest number >= start not taken (``net0``, ``net1`` …)."""
    number = start
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"
