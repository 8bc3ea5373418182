"""Ownership across endpoints, shared backends, plan-time placement and the stack lock."""

import os
import subprocess
import sys
import time

import pytest

from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.test_planning import live, stack, vm
from virtplane import apply, lock
from virtplane.engine import build_plan, refuse_shared_backends
from virtplane.errors import OwnershipError, VirtplaneError
from virtplane.evaluate import pick_stack
from virtplane.plan import Action
from virtplane.providers.base import Owner


def test_an_object_made_by_another_endpoint_of_the_stack_is_never_deleted_by_this_one():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a", "other-ep"), live())
    assert build_plan(stack(), {"ep": provider}).pending == []


def test_a_declared_name_held_by_another_endpoint_of_the_stack_is_refused_naming_it():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a", "other-ep"), live())
    with pytest.raises(OwnershipError, match="belongs to this stack's endpoint 'other-ep'"):
        build_plan(stack(vm("a")), {"ep": provider})


def test_a_marker_written_before_endpoints_were_recorded_is_still_ours():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a"), live())
    assert [r.action for r in build_plan(stack(vm("a")), {"ep": provider}).resources] == [Action.NOOP]


def test_the_marker_round_trips_with_and_without_the_endpoint():
    assert Owner.decode(Owner("p/s", "r", "ep").encode()) == Owner("p/s", "r", "ep")
    assert Owner.decode("stack=p/s;resource=r") == Owner("p/s", "r", None)


def test_two_endpoints_reaching_one_backend_are_refused_naming_both():
    providers = {"vc-a": MemoryProvider(backend="uuid-1"), "vc-b": MemoryProvider(backend="uuid-1")}
    with pytest.raises(VirtplaneError, match="Endpoints 'vc-a' and 'vc-b' reach the same memory backend"):
        refuse_shared_backends(providers)
    refuse_shared_backends({"a": MemoryProvider(backend="1"), "b": MemoryProvider(backend="2")})


def test_placement_is_decided_at_plan_time_and_spreads_one_plans_vms():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].hosts = ["h1", "h2"]
    resources = [vm(f"v{i}", memory=1024) for i in range(4)]
    plan = build_plan(stack(*resources), {"ep": provider})
    assert sorted(r.placement for r in plan.resources if r.kind == "VirtualMachine") == ["h1", "h1", "h2", "h2"]
    apply.run(plan, {"ep": provider})
    stored = provider.drivers["VirtualMachine"].objects
    assert {stored[f"v{i}"][1]["node"] for i in range(4)} == {"h1", "h2"}


def test_a_vm_naming_its_node_is_not_placed():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].hosts = ["h1"]
    plan = build_plan(stack(vm("v", node="h9")), {"ep": provider})
    assert [r.placement for r in plan.resources if r.kind == "VirtualMachine"] == [None]


def test_several_stack_files_and_no_stack_option_is_an_error_listing_them(tmp_path):
    for name in ("dev", "prod"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    with pytest.raises(VirtplaneError, match=r"several stack configurations \(dev, prod\); choose one with --stack"):
        pick_stack(tmp_path, None)
    assert pick_stack(tmp_path, "prod") == "prod"


def test_a_second_run_of_the_stack_is_refused_while_the_first_holds_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTPLANE_LOCK_DIR", str(tmp_path))
    held = r"held by a lock of .*\(process \d+, `virtplane apply`\) since .* s ago"
    with lock.stack_lock("p/dev", ["vsphere:uuid"], "virtplane apply"), pytest.raises(lock.StackLocked, match=held), \
            lock.stack_lock("p/dev", ["vsphere:uuid"], "virtplane apply"):
        pass
    with lock.stack_lock("p/dev", ["vsphere:uuid"], "again"):
        pass  # released


def test_a_stale_lock_is_reported_with_its_holder_and_age_and_broken_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTPLANE_LOCK_DIR", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = lock.lock_path("p/dev", "proxmox:cluster")
    path.write_text(f'{{"user": "ann", "host": "{os.uname().nodename}", "pid": {dead.pid}, '
                    f'"command": "virtplane apply", "started": {time.time() - 90}}}')
    with pytest.raises(lock.StackLocked, match=r"stale lock of ann@.*9\d s ago: that process no longer runs"), \
            lock.stack_lock("p/dev", ["proxmox:cluster"], "virtplane apply"):
        pass
    with lock.stack_lock("p/dev", ["proxmox:cluster"], "virtplane apply", break_lock=True):
        assert f'"pid": {os.getpid()}' in path.read_text()
    assert not path.exists()


def test_a_name_only_some_hypervisors_take_is_validated_by_the_endpoints_provider(tmp_path):
    from tests.support.cli import write_stack
    from virtplane.errors import SpecError
    from virtplane.evaluate import evaluate
    from virtplane.kinds import build_spec

    spec = build_spec("VirtualMachine", "My_VM1", {})  # the core refuses only what no hypervisor takes
    assert spec.cpus is None
    program = ("import pulumi, virtplane\n"
               "pve = virtplane.Endpoint('pve', kind='proxmox')\n"
               "hv = virtplane.Endpoint('hv', kind='hyperv')\n"
               "virtplane.VirtualMachine('My_VM1', opts=pulumi.ResourceOptions(provider=pve))\n"
               "virtplane.VirtualMachine('My_VM2', opts=pulumi.ResourceOptions(provider=hv))\n")
    with pytest.raises(SpecError, match=r"^VirtualMachine 'My_VM1': field 'name': must be a DNS name on Proxmox VE"):
        evaluate(write_stack(tmp_path, program))  # no endpoint is contacted: the rule is the kind's
    with pytest.raises(SpecError, match="field 'name': must be 1 to 100 characters"):
        build_spec("VirtualMachine", "a\nb", {})


@pytest.mark.parametrize("resource", ["db'; Remove-VM * -Force; '", "a=b;c", "100%", "line\nbreak", "web-1"])
def test_a_marker_round_trips_names_holding_its_own_separators(resource):
    owner = Owner("proj/dev", resource, "ep;1")
    assert Owner.decode(owner.encode()) == owner
    assert "\n" not in owner.encode()


def test_a_run_whose_lock_was_broken_and_retaken_does_not_remove_the_new_holders_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTPLANE_LOCK_DIR", str(tmp_path))
    path = lock.lock_path("p/dev", "b")
    with lock.stack_lock("p/dev", ["b"], "first"):
        path.write_text('{"pid": 1, "started": 5, "user": "x", "host": "y", "command": "second"}')
    assert path.exists() and '"second"' in path.read_text()
