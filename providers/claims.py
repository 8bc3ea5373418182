"""Sorting what an observe read into ours and foreign, the same way on every hypervisor.

Every provider reads its candidates (objects carrying our marker, and objects named like a declared resource)
and parses the marker; what follows is common: an object whose marker names this stack is ours, filed under the
marker's resource name (even when the object's own name differs, as a half-made object's may); two objects with
one marker are an error naming both; a declared name held by an object that is not ours is foreign (the plan
refuses to touch it). ``guard`` is the last check before an update or delete.
"""

from __future__ import annotations

from collections.abc import Iterable

from virtplane.errors import OwnershipError
from virtplane.providers.base import Observed, ObserveResult


def sort_observed(stack: str, wanted: Iterable[str], candidates: Iterable[Observed], where: str,
                  noun: str = "VM") -> ObserveResult:
    """File each candidate (``name`` as the hypervisor shows it, ``owner`` parsed, ``id`` set) as owned or
    foreign. ``where`` names the endpoint in messages ("libvirt endpoint 'lab'")."""
    wanted = set(wanted)
    result = ObserveResult()
    for observed in candidates:
        owner = observed.owner
        if owner is not None and owner.stack == stack:
            other = result.owned.get(owner.resource)
            if other is not None:
                raise OwnershipError(
                    f"two {noun}s on {where} carry the ownership marker of {noun} {owner.resource} of stack {stack} "
                    f"({other.id} and {observed.id}); delete the one that should not exist")
            observed.name = owner.resource
            result.owned[owner.resource] = observed
        elif observed.name in wanted:
            result.foreign[observed.name] = observed
    return result


def is_ours(observed: Observed, stack: str) -> bool:
    return observed.owner is not None and observed.owner.stack == stack


def guard(observed: Observed, action: str, noun: str = "VM") -> None:
    """Refuse to ``action`` an object that carries no ownership marker."""
    if observed.owner is None:
        raise OwnershipError(f"refusing to {action} {noun} {observed.name}: it carries no virtplane ownership "
                             "marker, so it was not created by virtplane")
