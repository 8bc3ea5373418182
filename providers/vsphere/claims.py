"""One live object per ownership marker: two objects claiming the same resource stop the run.

A create whose answer was lost and then retried, or a VM copied together with its custom attributes,
leaves two live objects carrying the same marker. Picking one would silently manage (and maybe delete)
the wrong one, so observe names both and stops.
"""

from __future__ import annotations

from virtplane.errors import OwnershipError
from virtplane.providers.base import Observed, ObserveResult


def claim(result: ObserveResult, resource: str, observed: Observed, noun: str) -> None:
    """Record ``observed`` as the stack's ``resource``; raise when another live object claims it too."""
    earlier = result.owned.get(resource)
    if earlier is not None and earlier.handle.ref._moId != observed.handle.ref._moId:
        raise OwnershipError(
            f"{noun} {resource} is claimed by two live objects carrying the same virtplane ownership marker, "
            f"{_shown(earlier)} and {_shown(observed)}; virtplane will not pick one: remove the marker "
            "(custom attribute virtplane.owner) from the one that is not the stack's, or delete it")
    result.owned[resource] = observed


def _shown(observed: Observed) -> str:
    return f"'{observed.name}' ({observed.handle.ref._moId})"
