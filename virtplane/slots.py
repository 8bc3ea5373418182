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
from typing import Any, TypeVar

from virtplane.specs import Spec, VirtualMachineSpec

NewSlot = Callable[[str, dict[str, Any], set[str]], str]
"""(collection "disks"|"nics"|"mounts", the item as a dict, slots taken) -> a free slot for it."""


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


S = TypeVar("S", bound=Spec)


def resolve_slots(spec: S, live_state: dict[str, Any] | None, new_slot: NewSlot) -> S:
    """``spec`` with a slot on every item of its slotted lists (a VM's disks and NICs, a container's mount points
    and NICs); unset lists stay unset: not managed."""
    live_state = live_state or {}
    update: dict[str, Any] = {}
    for collection in spec.slotted:
        items = getattr(spec, collection)
        if not items:
            continue
        model = type(items[0])
        resolved = resolve(collection, [item.model_dump() for item in items], live_state.get(collection) or [],
                           new_slot)
        update[collection] = [model.model_validate(item) for item in resolved]
    return spec.model_copy(update=update) if update else spec


def resolve_vm(spec: VirtualMachineSpec, live_state: dict[str, Any] | None, new_slot: NewSlot
               ) -> VirtualMachineSpec:
    """``spec`` with a slot on every disk and NIC."""
    return resolve_slots(spec, live_state, new_slot)


def next_numbered(prefix: str, taken: set[str], start: int = 0) -> str:
    """``prefix`` + the smallest number >= start not taken (``net0``, ``net1`` …)."""
    number = start
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"
