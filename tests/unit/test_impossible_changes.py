"""Drift never hides drift: a change the hypervisor cannot make is reported beside every other difference, and
apply refuses only the resource holding it (naming the field and its slot) while applying the rest."""

from __future__ import annotations

import io

from rich.console import Console

from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.test_planning import live, stack, vm
from virtplane import apply, output
from virtplane.declared import DeclaredResource
from virtplane.engine import build_plan
from virtplane.plan import Action
from virtplane.providers.base import Owner


def shrunk_and_changed() -> tuple[MemoryProvider, object]:
    """VM a: its disk was grown out of band to 30 GiB (the stack says 20) and its memory changed; VM b: memory
    changed."""
    provider = MemoryProvider()
    vms = provider.drivers["VirtualMachine"]
    vms.objects["a"] = (Owner("proj/dev", "a"), live(memory=4096, disks=[{"size": 30}]))
    vms.objects["b"] = (Owner("proj/dev", "b"), live(memory=4096))
    desired = stack(vm("a", disks=[{"size": 20}]), vm("b"))
    return provider, desired


def by_name(plan, name):
    return next(r for r in plan.resources if r.name == name)


def test_an_impossible_change_is_planned_beside_every_other_difference_instead_of_stopping_the_plan():
    provider, desired = shrunk_and_changed()
    plan = build_plan(desired, {"ep": provider})
    a, b = by_name(plan, "a"), by_name(plan, "b")
    assert a.action is Action.UPDATE and b.action is Action.UPDATE
    refused = {c.change.path: c.refused for c in a.changes}
    assert refused == {"memory": None, "disks[disk0].size": "shrinking a disk is not possible"}
    assert [c.change.path for c in b.changes] == ["memory"]


def test_the_plan_shows_the_impossible_change_marked_cannot_apply_and_json_says_why():
    provider, desired = shrunk_and_changed()
    plan = build_plan(desired, {"ep": provider})
    text = io.StringIO()
    output.render_plan(Console(file=text, width=200), plan, title="Drift")
    assert "disks[disk0].size: 30 → 20 [cannot apply: shrinking a disk is not possible]" in text.getvalue()
    [change] = [c for c in by_name(plan, "a").to_json()["changes"] if c["field"] == "disks[disk0].size"]
    assert change["apply"] == "refused" and change["cannot_apply"] == "shrinking a disk is not possible"


def test_apply_refuses_only_the_resource_holding_an_impossible_change_and_applies_the_rest():
    provider, desired = shrunk_and_changed()
    plan = build_plan(desired, {"ep": provider})
    result = apply.run(plan, {"ep": provider})
    assert provider.drivers["VirtualMachine"].calls == [("update", "b")]
    [failed] = result.failed
    assert failed.resource.name == "a"
    assert failed.error == ("VirtualMachine 'a': field 'disks[disk0].size': cannot apply: shrinking a disk is not "
                            "possible; none of its changes were made")


def test_what_depends_on_a_refused_resource_is_skipped_and_every_failure_is_reported():
    provider, desired = shrunk_and_changed()
    provider.drivers["VirtualMachine"].fail_on = {"b"}
    after_a = DeclaredResource("VirtualMachine", "c", vm("c").spec, "ep", {"VirtualMachine/a"})
    desired.resources[after_a.key] = after_a
    result = apply.run(build_plan(desired, {"ep": provider}), {"ep": provider})
    errors = sorted(o.error for o in result.failed)
    assert len(errors) == 3
    assert any("field 'disks[disk0].size': cannot apply" in e for e in errors)
    assert any("the hypervisor said no" in e for e in errors)
    assert any(e.startswith("VirtualMachine/c skipped") for e in errors)


def test_a_change_that_powers_the_vm_off_says_after_how_long_a_clean_shutdown_becomes_a_hard_one():
    provider = MemoryProvider()
    vms = provider.drivers["VirtualMachine"]
    vms.shutdown_seconds = 120
    vms.objects["a"] = (Owner("proj/dev", "a"), live(firmware="bios"))
    plan = build_plan(stack(vm("a", firmware="uefi")), {"ep": provider})
    text = io.StringIO()
    output.render_plan(Console(file=text, width=200), plan, title="Plan")
    assert "(powers off to apply: a clean shutdown, then a hard power-off after 120 s)" in text.getvalue()
    assert by_name(plan, "a").to_json()["shutdown_seconds"] == 120
