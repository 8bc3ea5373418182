"""What the generic plan becomes for a desktop pool, after each VM was compared with its desktop.

- Membership: every planned desktop of a pool is marked with it (``pool web: web-007 cpus 2 -> 4`` in the plan).
- Shrink: an owned VM the pool's ``naming`` made but the pool no longer declares (a number above ``size``) is
  deleted; only these, so a shrink never deletes more than the change requires.
- Recompose: a desktop whose marker names another template than the pool's (``Owner.source``) is re-cloned (a
  replace whose change is ``clone_from``), in batches of ``max_unavailable``: each batch waits for the one
  before it, and a failed batch stops the rest.
- In use: the desktops a shrink would delete or a recompose would re-clone have their guest state read (one
  ``guest_states`` call per endpoint). A desktop in use is deferred when recomposed (left for a later run and
  listed) and blocks a shrink, which then needs ``--allow-data-loss`` (Plan.data_loss).

A desktop that is not in use is disposable: deleting or re-cloning it is not data loss.
"""

from __future__ import annotations

from collections.abc import Mapping

from virtplane.errors import SpecError
from virtplane.plan import Action, Plan, PlannedChange, ResourcePlan
from virtplane.pools.spec import DeclaredPool
from virtplane.providers.base import FieldChange, GuestState, KindDriver, Rule


def refine(items: list[ResourcePlan], pools: Mapping[str, DeclaredPool], driver: KindDriver) -> None:
    """Apply the pool rules to one endpoint's planned VMs (``pools``: the pools of that endpoint)."""
    if not pools:
        return
    by_name = {item.name: item for item in items}
    touched: list[ResourcePlan] = []
    undo: dict[str, tuple[Action, list[PlannedChange], str]] = {}
    for pool in pools.values():
        for number, name in pool.members.items():
            item = by_name.get(name)
            if item is None:
                continue
            item.pool, item.pool_number = pool.name, number
            if (before := _recompose(item, pool.spec.template)) is not None:
                touched.append(item)
                undo[item.name] = before
        for item in items:
            if item.action is Action.DELETE and item.pool is None and (number := pool.number_of(item.name)):
                item.pool, item.pool_number = pool.name, number
                item.note = f"pool {pool.name} shrinks to {pool.spec.size}"
                touched.append(item)
    states = driver.guest_states([item.observed for item in touched if item.observed is not None]) if touched else {}
    for item in touched:
        item.guest = states.get(item.name, GuestState(str((item.observed.state if item.observed else {}).get(
            "power") or "off")))
        if item.action is Action.REPLACE and item.guest.in_use:  # the desktop stays as it is (or is updated)
            item.action, item.changes, item.note = undo[item.name]
            item.deferred = f"recompose from {pools[item.pool or ''].spec.template} left for a later run: in use " \
                            f"({describe(item.guest)})"
    for pool in pools.values():
        _batches([item for item in items if item.pool == pool.name and item.action is Action.REPLACE
                  and not item.deferred], pool.spec.max_unavailable)


def _recompose(item: ResourcePlan, template: str) -> tuple[Action, list[PlannedChange], str] | None:
    """Turn a desktop made from another template into a re-clone; its plan as it was when it is one, else None."""
    if item.action not in (Action.NOOP, Action.UPDATE) or item.observed is None or item.observed.owner is None:
        return None
    source = item.observed.owner.source
    if source is None or source == template:  # a desktop whose source is unknown is never re-cloned on a guess
        return None
    before = (item.action, item.changes, item.note)
    item.changes = [PlannedChange(FieldChange("clone_from", source, template), Rule.REPLACE)]
    item.action = Action.REPLACE
    item.note = f"pool {item.pool} recomposes from {template}"
    return before


def _batches(replaced: list[ResourcePlan], size: int) -> None:
    """Each batch of ``size`` re-clones (by number) waits for every re-clone of the batch before it."""
    replaced.sort(key=lambda item: item.pool_number or 0)
    for start in range(size, len(replaced), size):
        earlier = {item.key for item in replaced[start - size:start]}
        for item in replaced[start:start + size]:
            item.depends_on |= earlier


def describe(state: GuestState) -> str:
    if state.power != "on":
        return "powered off"
    if state.users is None:
        return f"powered on; {state.told_by}, so it counts as in use"
    if state.users:
        return f"powered on; {state.told_by}: {', '.join(state.users)} logged in"
    return f"powered on; {state.told_by}: no user logged in"


def pool_data_loss(plan: Plan) -> list[str]:
    """One sentence per pool whose shrink would delete desktops in use (highest numbers first)."""
    blocked: dict[str, list[ResourcePlan]] = {}
    for item in plan.pending:
        if item.pool is not None and item.action is Action.DELETE and item.guest is not None and item.guest.in_use:
            blocked.setdefault(item.pool, []).append(item)
    sentences = []
    for pool, items in blocked.items():
        items.sort(key=lambda item: -(item.pool_number or 0))
        which = ", ".join(f"{item.name} ({describe(item.guest)})" for item in items if item.guest is not None)
        sentences.append(f"pool {pool}: shrinking deletes desktops in use: {which}; log their users off and shut "
                         "them down first")
    return sentences


def deferred_lines(plan: Plan) -> list[str]:
    """One line per pool with desktops whose recompose is left for a later run."""
    left: dict[str, list[ResourcePlan]] = {}
    for item in plan.deferred:
        left.setdefault(item.pool or "", []).append(item)
    return [f"pool {pool}: recompose left for a later run, in use: " + ", ".join(i.name for i in sorted(
        items, key=lambda i: i.pool_number or 0)) for pool, items in left.items()]


_POOL_FIELDS = {"clone_from": "template"}  # a desktop's field as the pool's author wrote it


def pool_errors(problems: Mapping[str, list[tuple[str, str]]]) -> list[SpecError]:
    """One error per pool from its desktops' problems (the same for each desktop), fields named as the pool has
    them (``clone_from`` is the pool's ``template``)."""
    errors = []
    for pool, found in problems.items():
        unique = list(dict.fromkeys((_POOL_FIELDS.get(field, field), message) for field, message in found))
        errors.append(SpecError("DesktopPool", pool, unique))
    return errors
