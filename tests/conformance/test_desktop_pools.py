"""What every provider must do with a desktop pool: clone it from a golden image, grow it, shrink it (never a
desktop in use), recompose it from a new image, and converge a recompose that was interrupted."""

from __future__ import annotations

import pytest

from tests.conformance.stack import Stack
from virtplane import apply
from virtplane.apply import DataLossRefused, refuse_data_loss
from virtplane.plan import Action


def desktops(stack: Stack) -> dict[str, str | None]:
    """Each live desktop of the stack with the template its marker names."""
    return {r.name: r.observed.owner.source for r in stack.plan().resources
            if r.pool is not None and r.observed is not None and r.observed.owner is not None}


@pytest.fixture
def golden(peer, name) -> str:
    peer.add_golden(f"{name}-gold1")
    return f"{name}-gold1"


def test_a_pool_is_cloned_from_its_golden_image_and_then_in_sync(peer, name, golden):
    stack = Stack(peer, f"{name}-stack").pool(f"{name}p", golden, 2, cpus=2, memory="1GiB")
    plan = stack.apply()
    assert [(r.name, r.action) for r in plan.resources] == [(f"{name}p-001", Action.CREATE),
                                                           (f"{name}p-002", Action.CREATE)]
    assert desktops(stack) == {f"{name}p-001": golden, f"{name}p-002": golden}
    assert stack.changes() == {}
    live = {r.name: r.observed.state for r in stack.plan().resources}
    assert {(s["cpus"], s["memory"], s["power"]) for s in live.values()} == {(2, 1024, "on")}


def test_a_pool_grows_by_its_next_numbers_and_shrinks_by_its_highest_when_they_are_not_in_use(peer, name, golden):
    stack = Stack(peer, f"{name}-stack").pool(f"{name}p", golden, 1, memory="1GiB")
    stack.apply()
    stack.pool(f"{name}p", golden, 3, memory="1GiB")
    assert sorted((r.name, r.action) for r in stack.plan().pending) == [(f"{name}p-002", Action.CREATE),
                                                                 (f"{name}p-003", Action.CREATE)]
    stack.apply()
    stack.pool(f"{name}p", golden, 1, memory="1GiB")
    refused = stack.plan()
    # powered on, and no guest tools tell whether someone is logged in: in use
    with pytest.raises(DataLossRefused, match=f"{name}p-003 .*{name}p-002 "):
        refuse_data_loss(refused)
    assert peer.count(f"{name}p-003") == 1
    peer.power_off(f"{name}p-003")
    peer.power_off(f"{name}p-002")
    plan = stack.apply()
    assert sorted((r.name, r.action) for r in plan.pending) == [(f"{name}p-002", Action.DELETE),
                                                         (f"{name}p-003", Action.DELETE)]
    assert peer.count(f"{name}p-002") == peer.count(f"{name}p-003") == 0
    assert list(desktops(stack)) == [f"{name}p-001"]


def test_a_new_golden_image_recomposes_the_desktops_that_are_not_in_use(peer, name, golden):
    stack = Stack(peer, f"{name}-stack").pool(f"{name}p", golden, 3, memory="1GiB", max_unavailable=2)
    stack.apply()
    peer.power_off(f"{name}p-001")
    peer.power_off(f"{name}p-003")
    peer.add_golden(f"{name}-gold2")
    stack.pool(f"{name}p", f"{name}-gold2", 3, memory="1GiB", max_unavailable=2)
    plan = stack.apply()
    assert sorted((r.name, r.action) for r in plan.pending) == [(f"{name}p-001", Action.REPLACE),
                                                         (f"{name}p-003", Action.REPLACE)]
    assert [r.name for r in plan.deferred] == [f"{name}p-002"]
    assert desktops(stack) == {f"{name}p-001": f"{name}-gold2", f"{name}p-002": golden,
                               f"{name}p-003": f"{name}-gold2"}
    assert all(peer.count(f"{name}p-00{n}") == 1 for n in (1, 2, 3))
    peer.power_off(f"{name}p-002")
    stack.apply()
    assert set(desktops(stack).values()) == {f"{name}-gold2"}
    again = stack.plan()
    assert again.pending == [] and again.deferred == []


def test_an_interrupted_recompose_converges_on_the_next_apply(peer, name, golden):
    stack = Stack(peer, f"{name}-stack").pool(f"{name}p", golden, 2, memory="1GiB", power="off")
    stack.apply()
    peer.add_golden(f"{name}-gold2")
    stack.pool(f"{name}p", f"{name}-gold2", 2, memory="1GiB", power="off")
    plan = stack.plan()
    first = next(r for r in plan.pending if r.name == f"{name}p-001")
    first.observed and peer.provider.driver("VirtualMachine").delete(first.observed)  # the re-clone's delete ran
    stack.apply()
    assert desktops(stack) == {f"{name}p-001": f"{name}-gold2", f"{name}p-002": f"{name}-gold2"}
    assert peer.count(f"{name}p-001") == peer.count(f"{name}p-002") == 1
    assert stack.plan().pending == []


def test_destroy_removes_the_desktops_and_leaves_the_golden_image(peer, name, golden):
    stack = Stack(peer, f"{name}-stack").pool(f"{name}p", golden, 2, memory="1GiB")
    stack.apply()
    result = apply.run(stack.plan(destroy=True), {"ep": peer.provider}, allow_data_loss=True)
    assert not result.failed
    assert peer.count(f"{name}p-001") == peer.count(f"{name}p-002") == 0
    stack.apply()  # the golden image is still there to clone
    assert desktops(stack) == {f"{name}p-001": golden, f"{name}p-002": golden}
