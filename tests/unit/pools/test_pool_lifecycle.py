"""A desktop pool through the engine: declared, grown, shrunk (never a desktop in use), recomposed in batches."""

from __future__ import annotations

import pytest

from tests.unit.pools.helpers import PoolProvider, PoolStack, memory_kind  # noqa: F401 - the fixture
from virtplane.apply import DataLossRefused, refuse_data_loss
from virtplane.plan import Action

pytestmark = pytest.mark.usefixtures("memory_kind")


def pool(size: int, template: str = "golden-v1", **extra: str) -> str:
    args = "".join(f", {key}={value}" for key, value in extra.items())
    return f"virtplane.DesktopPool('vdi', template={template!r}, size={size}, cpus=2, memory='2GiB'{args}, " \
           "opts=on_ep)\n"


@pytest.fixture
def desks(tmp_path) -> PoolStack:
    return PoolStack(tmp_path, PoolProvider())


def test_a_pool_declares_its_desktops_as_linked_clones_named_by_number(desks):
    desired = desks.declare(pool(3))
    specs = {r.name: r.spec for r in desired.resources.values()}
    assert list(specs) == ["vdi-001", "vdi-002", "vdi-003"]
    assert {(s.clone_from, s.linked_clone, s.cpus, s.memory, s.power) for s in specs.values()} == {
        ("golden-v1", True, 2, 2048, "on")}
    assert desired.pools["vdi"].members == {1: "vdi-001", 2: "vdi-002", 3: "vdi-003"}


def test_linked_clone_false_makes_full_copies_and_naming_is_the_users(desks):
    desired = desks.declare(pool(2, linked_clone="False", naming="'desk{n}-{pool}'"))
    assert {r.name: r.spec.linked_clone for r in desired.resources.values()} == {"desk1-vdi": False,
                                                                                 "desk2-vdi": False}


def test_each_desktop_is_made_with_a_marker_naming_its_template_and_plans_as_a_pool_member(desks):
    desks.declare(pool(2))
    plan = desks.apply()
    assert [(r.name, r.pool, r.action) for r in plan.resources] == [
        ("vdi-001", "vdi", Action.CREATE), ("vdi-002", "vdi", Action.CREATE)]
    assert desks.source("vdi-001") == "golden-v1"
    assert desks.plan().pending == []


def test_growing_adds_the_next_numbers_only(desks):
    desks.declare(pool(2))
    desks.apply()
    desks.declare(pool(4))
    plan = desks.plan()
    assert sorted((r.name, r.action) for r in plan.pending) == [("vdi-003", Action.CREATE), ("vdi-004", Action.CREATE)]


def test_shrinking_deletes_the_highest_numbers_that_are_not_in_use_without_data_loss(desks):
    desks.declare(pool(4, power="'off'"))
    desks.apply()
    desks.declare(pool(2, power="'off'"))
    plan = desks.plan()
    assert sorted((r.name, r.action) for r in plan.pending) == [("vdi-003", Action.DELETE), ("vdi-004", Action.DELETE)]
    assert plan.data_loss() == []
    desks.apply()
    assert sorted(desks.live()) == ["vdi-001", "vdi-002"]


def test_a_shrink_that_would_delete_desktops_in_use_is_refused_naming_them_in_one_sentence(desks):
    desks.declare(pool(4))
    desks.apply()
    desks.provider.vms.users = {"vdi-004": ("ana",)}
    desks.declare(pool(1))
    plan = desks.plan()
    [sentence] = plan.data_loss()
    assert sentence == ("pool vdi: shrinking deletes desktops in use: vdi-004 (powered on; test tools: ana logged "
                        "in), vdi-003 (powered on; test tools, so it counts as in use), vdi-002 (powered on; test "
                        "tools, so it counts as in use); log their users off and shut them down first")
    with pytest.raises(DataLossRefused, match="Nothing was changed"):
        refuse_data_loss(plan)
    assert sorted(desks.live()) == ["vdi-001", "vdi-002", "vdi-003", "vdi-004"]


def test_a_running_desktop_whose_tools_report_nobody_logged_in_is_not_in_use(desks):
    desks.declare(pool(2))
    desks.apply()
    desks.provider.vms.users = {"vdi-002": ()}
    desks.declare(pool(1))
    assert desks.plan().data_loss() == []


def test_allow_data_loss_shrinks_a_pool_in_use(desks):
    desks.declare(pool(2))
    desks.apply()
    desks.declare(pool(1))
    desks.apply(allow_data_loss=True)
    assert sorted(desks.live()) == ["vdi-001"]


def test_guest_state_is_read_once_and_only_for_the_desktops_a_change_would_remove(desks):
    desks.declare(pool(3, power="'off'"))
    desks.apply()
    desks.declare(pool(1, power="'off'"))
    desks.plan()
    assert desks.provider.vms.guest_reads == [["vdi-002", "vdi-003"]]


def test_a_new_template_recomposes_desktops_in_batches_of_max_unavailable(desks):
    desks.declare(pool(5, power="'off'", max_unavailable="2"))
    desks.apply()
    desks.declare(pool(5, template="golden-v2", power="'off'", max_unavailable="2"))
    plan = desks.plan()
    replaced = {r.name: r for r in plan.pending}
    assert all(r.action is Action.REPLACE for r in replaced.values()) and len(replaced) == 5
    assert [(c.change.path, c.change.old, c.change.new) for c in replaced["vdi-001"].changes] == [
        ("clone_from", "golden-v1", "golden-v2")]
    assert replaced["vdi-002"].depends_on == set()
    assert replaced["vdi-003"].depends_on == {"VirtualMachine/vdi-001", "VirtualMachine/vdi-002"}
    assert replaced["vdi-005"].depends_on == {"VirtualMachine/vdi-003", "VirtualMachine/vdi-004"}
    assert plan.data_loss() == []
    desks.provider.vms.max_running = 0
    desks.apply(parallel=8)
    assert {desks.source(name) for name in desks.live()} == {"golden-v2"}
    assert desks.provider.vms.max_running <= 2
    assert desks.plan().pending == []


def test_desktops_in_use_are_left_out_of_a_recompose_and_listed(desks):
    desks.declare(pool(3))
    desks.apply()
    desks.provider.vms.users = {"vdi-001": (), "vdi-003": ()}  # vdi-002: powered on, nothing tells: in use
    desks.declare(pool(3, template="golden-v2"))
    plan = desks.plan()
    assert sorted((r.name, r.action) for r in plan.pending) == [("vdi-001", Action.REPLACE),
                                                                ("vdi-003", Action.REPLACE)]
    [waiting] = plan.deferred
    assert waiting.name == "vdi-002" and waiting.action is Action.NOOP
    assert "left for a later run: in use" in waiting.deferred
    desks.apply()
    assert desks.source("vdi-002") == "golden-v1"
    assert [r.name for r in desks.plan().deferred] == ["vdi-002"]


def test_an_interrupted_recompose_converges_on_the_next_apply_without_losing_or_doubling_a_desktop(desks):
    desks.declare(pool(4, power="'off'"))
    desks.apply()
    desks.declare(pool(4, template="golden-v2", power="'off'"))
    plan = desks.plan()
    desks.provider.vms.fail_on = {"vdi-003"}  # the run breaks off at the third desktop
    from virtplane import apply

    result = apply.run(plan, {"ep": desks.provider})
    assert {o.resource.name for o in result.failed} == {"vdi-003", "vdi-004"}
    assert desks.source("vdi-001") == desks.source("vdi-002") == "golden-v2"
    desks.provider.vms.fail_on = set()
    again = desks.plan()
    assert sorted((r.name, r.action) for r in again.pending) == [("vdi-003", Action.REPLACE),
                                                                 ("vdi-004", Action.REPLACE)]
    desks.apply()
    assert sorted(desks.live()) == ["vdi-001", "vdi-002", "vdi-003", "vdi-004"]
    assert {desks.source(name) for name in desks.live()} == {"golden-v2"}


def test_a_recompose_interrupted_between_delete_and_create_recreates_the_desktop_from_the_new_image(desks):
    desks.declare(pool(2, power="'off'"))
    desks.apply()
    del desks.provider.vms.objects["vdi-002"]  # deleted for the re-clone; the process died before the clone
    desks.declare(pool(2, template="golden-v2", power="'off'"))
    assert sorted((r.name, r.action) for r in desks.plan().pending) == [
        ("vdi-001", Action.REPLACE), ("vdi-002", Action.CREATE)]
    desks.apply()
    assert {desks.source(name) for name in desks.live()} == {"golden-v2"}
