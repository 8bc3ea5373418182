"""Sorting what an observe read into ours and foreign (providers/claims.py), as every provider does."""

from __future__ import annotations

import pytest

from virtplane.errors import OwnershipError
from virtplane.providers.base import Observed, Owner
from virtplane.providers.claims import guard, sort_observed

STACK = "proj/dev"


def seen(name: str, owner: Owner | None, id_: str) -> Observed:
    return Observed(name, None, owner, {}, id=id_)


def test_an_object_with_this_stacks_marker_is_ours_under_the_markers_resource_name():
    result = sort_observed(STACK, {"web"}, [seen("web-pending", Owner(STACK, "web"), "1")], "endpoint 'e'")
    assert list(result.owned) == ["web"] and result.owned["web"].id == "1" and result.foreign == {}


def test_a_declared_name_held_by_an_object_without_our_marker_is_foreign():
    result = sort_observed(STACK, {"web"}, [seen("web", None, "1"), seen("db", Owner("other/dev", "db"), "2")],
                           "endpoint 'e'")
    assert (result.owned, list(result.foreign)) == ({}, ["web"])


def test_two_objects_with_one_marker_are_an_error_naming_both():
    owner = Owner(STACK, "web")
    with pytest.raises(OwnershipError, match=r"two VMs on endpoint 'e' carry the ownership marker of VM web "
                                             r".*\(1 and 2\)"):
        sort_observed(STACK, set(), [seen("web", owner, "1"), seen("web-copy", owner, "2")], "endpoint 'e'")


def test_guard_refuses_to_touch_an_object_without_a_marker():
    with pytest.raises(OwnershipError, match="refusing to delete network lan"):
        guard(seen("lan", None, "1"), "delete", noun="network")
