"""The planner and executor keep data safe: unset fields are not managed, disks are matched by slot, and
anything that destroys data is marked in the plan and refused by apply without --allow-data-loss."""

import io

import pytest
from rich.console import Console

from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.test_planning import live, stack, vm
from virtplane import apply, output
from virtplane.declared import DeclaredResource
from virtplane.engine import build_plan
from virtplane.kinds import build_spec
from virtplane.plan import Action
from virtplane.providers.base import Owner

OWNER = Owner("proj/dev", "a", "ep")


def build_vm(name: str, **fields) -> DeclaredResource:
    """A VM declaring only ``fields`` (no cpus or memory)."""
    return DeclaredResource("VirtualMachine", name, build_spec("VirtualMachine", name, fields), "ep")


def provider_with(state: dict) -> MemoryProvider:
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (OWNER, state)
    return provider


def vm_plan(provider: MemoryProvider, **fields):
    plan = build_plan(stack(vm("a", **fields)), {"ep": provider})
    return plan, next(r for r in plan.resources if r.kind == "VirtualMachine")


def test_a_clone_of_a_uefi_template_with_firmware_unset_is_left_uefi():
    _, item = vm_plan(provider_with(live(firmware="uefi", secure_boot=True)), clone_from="tpl")
    assert item.action is Action.NOOP


def test_unset_disk_bus_and_thinness_are_not_compared_so_a_thick_lsi_template_is_not_replaced():
    state = live(disks=[{"size": 40, "bus": "lsilogic", "thin": False}])
    _, item = vm_plan(provider_with(state), disks=[{"size": 40}])
    assert item.action is Action.NOOP


def test_dropping_the_first_of_two_disks_grows_nothing_silently_and_marks_the_removal():
    state = live(disks=[{"size": 40}, {"size": 100}])
    plan, item = vm_plan(provider_with(state), disks=[{"size": 100}])
    paths = {(c.change.path, c.destroys_data) for c in item.changes}
    assert ("disks[disk1]", True) in paths
    assert plan.data_loss() == ["VM a on ep: disk disk1 (100 GiB) is no longer declared; removing it destroys "
                                "its data"]


def test_a_disk_named_by_slot_keeps_that_disk_and_the_other_is_the_one_marked():
    state = live(disks=[{"size": 40}, {"size": 100}])
    plan, item = vm_plan(provider_with(state), disks=[{"size": 100, "slot": "disk1"}])
    assert [c.change.path for c in item.changes] == ["disks[disk0]"]
    assert "disk disk0 (40 GiB)" in plan.data_loss()[0]


def test_an_empty_disk_list_against_live_disks_is_a_marked_removal_not_a_type_error():
    plan, item = vm_plan(provider_with(live(disks=[{"size": 40}, {"size": 100}])), disks=[])
    assert sorted(c.change.path for c in item.changes) == ["disks[disk0]", "disks[disk1]"]
    assert len(plan.data_loss()) == 2


def test_an_unset_disk_list_leaves_live_disks_alone():
    _, item = vm_plan(provider_with(live(disks=[{"size": 40}])))
    assert item.action is Action.NOOP


def test_apply_refuses_a_plan_that_destroys_data_before_changing_anything():
    provider = provider_with(live(cpus=1, disks=[{"size": 40}, {"size": 100}]))
    plan, _ = vm_plan(provider, disks=[{"size": 40}])
    with pytest.raises(apply.DataLossRefused, match=r"disk disk1 \(100 GiB\).*--allow-data-loss"):
        apply.run(plan, {"ep": provider})
    assert provider.drivers["VirtualMachine"].calls == []


def test_apply_with_allow_data_loss_removes_the_disk():
    provider = provider_with(live(disks=[{"size": 40}, {"size": 100}]))
    plan, _ = vm_plan(provider, disks=[{"size": 40}])
    assert not apply.run(plan, {"ep": provider}, allow_data_loss=True).failed
    assert provider.drivers["VirtualMachine"].calls == [("update", "a")]


def test_a_replace_destroys_data_and_says_which_field_forces_it():
    plan, item = vm_plan(provider_with(live(disks=[{"size": 5, "thin": False}])), disks=[{"size": 5, "thin": True}])
    assert item.action is Action.REPLACE
    assert plan.data_loss() == ["VM a on ep would be replaced (deleted and created again) to change "
                                "disks[disk0].thin, destroying its disks (disk0 (5 GiB))"]


def test_deleting_an_undeclared_vm_in_apply_destroys_data_but_destroy_is_the_explicit_request():
    provider = provider_with(live(disks=[{"size": 8}]))
    assert "no longer declared; deleting it" in build_plan(stack(), {"ep": provider}).data_loss()[0]
    assert build_plan(stack(), {"ep": provider}, destroy=True).data_loss() == []


def test_a_new_disk_gets_the_next_free_slot_and_the_plan_shows_it():
    _, item = vm_plan(provider_with(live(disks=[{"size": 40}])), disks=[{"size": 40}, {"size": 10}])
    assert [c.change.path for c in item.changes] == ["disks[disk1]"]
    assert item.changes[0].change.new["slot"] == "disk1"


def test_a_replace_keeps_the_live_value_of_every_field_the_stack_leaves_unset_and_says_so():
    state = live(cpus=4, memory=4096, power="off", tags=["db"], disks=[{"size": 5, "thin": False}],
                 nics=[{"network": "app", "adapter": "e1000", "slot": "nic0"}])
    provider = provider_with(state)
    plan = build_plan(stack(build_vm("a", disks=[{"size": 5, "thin": True}])), {"ep": provider})
    [item] = plan.resources
    assert item.action is Action.REPLACE
    assert item.kept["cpus"] == 4 and item.kept["memory"] == 4096 and item.kept["power"] == "off"
    assert item.kept["tags"] == ["db"] and item.kept["nics"][0]["network"] == "app"
    assert "disks" not in item.kept  # declared
    text = io.StringIO()
    output.render_plan(Console(file=text, width=200), plan, title="Plan")
    assert "cpus: 4 (kept)" in text.getvalue() and "memory: 4096 (kept)" in text.getvalue()
    assert plan.to_json()["resources"][0]["kept"]["cpus"] == 4
    assert not apply.run(plan, {"ep": provider}, allow_data_loss=True).failed
    made = provider.drivers["VirtualMachine"].objects["a"][1]
    assert (made["cpus"], made["memory"], made["power"], made["tags"]) == (4, 4096, "off", ["db"])
    assert made["nics"] == [{"network": "app", "adapter": "e1000", "device": None, "slot": "nic0"}]
    assert made["disks"][0]["thin"] is True


def test_a_replace_does_not_keep_what_the_stack_declares():
    provider = provider_with(live(cpus=4, disks=[{"size": 5, "thin": False}]))
    [item] = build_plan(stack(build_vm("a", cpus=2, disks=[{"size": 5, "thin": True}])), {"ep": provider}).resources
    assert "cpus" not in item.kept
    assert item.spec.cpus == 2


def restored(live_power: str, **fields):
    provider = provider_with(live(power=live_power))
    provider.drivers["VirtualMachine"].restore["a"] = "on"
    plan = build_plan(stack(vm("a", **fields)), {"ep": provider})
    return provider, plan, plan.resources[0]


def test_a_vm_virtplane_switched_off_and_never_started_again_is_powered_on_even_with_power_unset():
    provider, plan, item = restored("off")
    assert item.action is Action.UPDATE
    assert [(c.change.path, c.change.old, c.change.new) for c in item.changes] == [("power", "off", "on")]
    assert "virtplane switched it off" in item.note
    assert not apply.run(plan, {"ep": provider}).failed
    assert provider.drivers["VirtualMachine"].objects["a"][1]["power"] == "on"


def test_a_declared_power_wins_over_the_record_which_is_still_cleared():
    provider, plan, item = restored("off", power="off")
    assert item.action is Action.UPDATE and item.changes == [] and "clear" in item.note
    assert not apply.run(plan, {"ep": provider}).failed
    assert provider.drivers["VirtualMachine"].restore == {}
