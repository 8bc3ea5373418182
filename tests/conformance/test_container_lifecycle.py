"""What every provider with system containers must do with them, run against each live test peer that has them."""

from __future__ import annotations

import pytest

from tests.conformance.stack import container_lab, full_container, observed_vm
from virtplane.errors import OwnershipError
from virtplane.plan import Action
from virtplane.providers.base import Owner


def test_every_field_is_created_and_read_back_as_declared(container_peer, name):
    stack = container_lab(container_peer, name)
    plan = stack.apply()
    assert {r.name: r.action for r in plan.resources}[f"{name}-ct0"] is Action.CREATE
    live = observed_vm(stack, f"{name}-ct0")
    declared = stack.desired.resources[f"Container/{name}-ct0"].spec.model_dump()
    for field, value in declared.items():
        if field in ("template", "clone_from", "linked_clone", "password", "ssh_keys", "docker") or value is None:
            continue
        if field in ("mounts", "nics"):  # each item's declared attributes, in slot order
            assert [{k: item[k] for k in want if want[k] is not None} for item, want in zip(live[field], value,
                                                                                          strict=True)] == [
                {k: v for k, v in want.items() if v is not None} for want in value], field
        elif isinstance(value, dict):
            assert {k: live[field][k] for k, v in value.items() if v is not None} == {
                k: v for k, v in value.items() if v is not None}, field
        else:
            assert live[field] == value, field
    assert live["hostname"] == f"{name}-ct0"  # unset: the resource name


def test_a_second_apply_has_nothing_to_do(container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    assert stack.changes() == {}
    assert all(r.action is Action.NOOP for r in stack.apply().resources)


def test_changed_declarations_are_applied_and_then_in_sync(container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    mounts = [{"path": "/srv/data", "size": 6}, {"path": "/var/log/app", "size": 2}, {"path": "/srv/cache", "size": 1}]
    stack.container(f"{name}-ct0", **full_container(container_peer.template, f"{name}-net", cpus=3, memory="2GiB",
                                                    swap=0, rootfs={"size": 10}, mounts=mounts,
                                                    features={"nesting": True, "keyctl": False}, tags=["app"]))
    action, changes = stack.changes()[f"{name}-ct0"]
    assert action is Action.UPDATE
    assert {path for path, *_ in changes} == {"cpus", "memory", "swap", "rootfs.size", "mounts[mp0].size",
                                              "mounts[mp2]", "features.keyctl", "tags"}
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-ct0"]
    assert item.needs_power_off  # a feature flag takes effect at the next start
    stack.apply()
    assert stack.changes() == {}
    live = observed_vm(stack, f"{name}-ct0")
    assert (live["rootfs"]["size"], [m["size"] for m in live["mounts"]], live["power"]) == (10, [6, 2, 1], "on")


def test_out_of_band_changes_are_detected_field_by_field_and_repaired(container_peer, name):
    stack = container_lab(container_peer, name, containers=2)
    stack.apply()
    container_peer.set_container_memory(f"{name}-ct0", 2048)
    container_peer.stop_container(f"{name}-ct1")
    drift = stack.changes()
    assert drift == {f"{name}-ct0": (Action.UPDATE, [("memory", 2048, 1024)]),
                     f"{name}-ct1": (Action.UPDATE, [("power", "off", "on")])}
    stack.apply()
    assert stack.changes() == {}


def test_removing_a_mount_point_destroys_data_and_needs_the_flag(container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    before = container_peer.container_volumes()
    stack.container(f"{name}-ct0", **full_container(container_peer.template, f"{name}-net",
                                                    mounts=[{"path": "/srv/data", "size": 4}]))
    plan = stack.plan()
    assert plan.data_loss() == [f"container {name}-ct0 on ep: mount point mp1 (2 GiB) is no longer declared; removing "
                                "it destroys its data"]
    with pytest.raises(Exception, match="--allow-data-loss"):
        stack.apply()
    assert container_peer.container_volumes() == before
    stack.apply(allow_data_loss=True)
    assert stack.changes() == {}
    assert len(container_peer.container_volumes()) == len(before) - 1  # its volume is gone, not left unused


def test_turning_an_unprivileged_container_privileged_is_a_replace_that_destroys_data(container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    stack.container(f"{name}-ct0", **full_container(container_peer.template, f"{name}-net", unprivileged=False,
                                                    features={"nesting": True}))
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-ct0"]
    assert item.action is Action.REPLACE
    [sentence] = item.data_loss()
    assert sentence.startswith(f"container {name}-ct0 on ep would be replaced (deleted and created again) to change "
                               "unprivileged, destroying its root filesystem and mount points (rootfs (8 GiB), mp0 "
                               "(4 GiB), mp1 (2 GiB))")
    stack.apply(allow_data_loss=True)
    assert stack.changes() == {}
    assert observed_vm(stack, f"{name}-ct0")["unprivileged"] is False
    assert container_peer.count_containers(f"{name}-ct0") == 1


def test_shrinking_the_root_filesystem_is_planned_as_cannot_apply_and_apply_refuses_it_naming_the_field(
        container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    stack.container(f"{name}-ct0", **full_container(container_peer.template, f"{name}-net", rootfs={"size": 4}))
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-ct0"]
    [shrink] = [c for c in item.changes if c.change.path == "rootfs.size"]
    assert shrink.refused and "shrinking the root filesystem from 8 GiB to 4 GiB is not possible" in shrink.refused
    assert item.refusal().startswith(f"Container '{name}-ct0': field 'rootfs.size': cannot apply: shrinking the root "
                                     "filesystem from 8 GiB to 4 GiB is not possible")


def test_a_same_named_container_without_our_marker_stops_the_plan_and_is_never_touched(container_peer, name):
    container_peer.add_unmanaged_container(f"{name}-ct0")
    stack = container_lab(container_peer, name)
    with pytest.raises(OwnershipError, match=f"{name}-ct0"):
        stack.plan()
    assert stack.plan(destroy=True).resources == []
    assert container_peer.count_containers(f"{name}-ct0") == 1


def test_destroy_removes_only_this_stacks_containers_and_their_volumes(container_peer, name):
    mine, theirs = container_lab(container_peer, f"{name}a"), container_lab(container_peer, f"{name}b")
    theirs.apply()
    kept = container_peer.container_volumes()
    mine.apply()
    container_peer.add_unmanaged_container(f"{name}-byhand")
    with_byhand = container_peer.container_volumes()
    destroyed = mine.apply(destroy=True)
    assert {r.name for r in destroyed.resources if r.kind == "Container"} == {f"{name}a-ct0"}
    assert container_peer.count_containers(f"{name}a-ct0") == 0
    assert container_peer.count_containers(f"{name}b-ct0") == 1 and container_peer.count_containers(f"{name}-byhand")
    assert kept < container_peer.container_volumes() < with_byhand  # its three volumes went, nobody else's
    assert theirs.changes() == {}


def test_a_container_removed_from_the_stack_is_deleted_on_the_next_apply(container_peer, name):
    stack = container_lab(container_peer, name, containers=2)
    stack.apply()
    stack.drop(f"{name}-ct1")
    assert stack.changes()[f"{name}-ct1"][0] is Action.DELETE
    with pytest.raises(Exception, match=f"container {name}-ct1 on ep is no longer declared; deleting it destroys its "
                                        "root filesystem and mount points"):
        stack.apply()
    stack.apply(allow_data_loss=True)
    assert container_peer.count_containers(f"{name}-ct1") == 0 and container_peer.count_containers(f"{name}-ct0") == 1


def test_a_container_left_half_created_is_finished_not_duplicated(container_peer, name):
    stack = container_lab(container_peer, name)
    container_peer.add_half_created_container(Owner(stack.desired.identity, f"{name}-ct0"))
    [item] = [r for r in stack.plan().resources if r.name == f"{name}-ct0"]
    assert item.action in (Action.UPDATE, Action.REPLACE) and item.note == "finishing an interrupted create"
    stack.apply(allow_data_loss=True)
    assert stack.changes() == {}
    assert container_peer.count_containers(f"{name}-ct0") == 1


def test_fields_left_unset_are_neither_compared_nor_changed(container_peer, name):
    stack = container_lab(container_peer, name)
    stack.apply()
    stack.container(f"{name}-ct0", template=container_peer.template, memory="1GiB")  # the rest: no longer managed
    assert stack.changes() == {}
    container_peer.stop_container(f"{name}-ct0")
    assert stack.changes() == {}
    stack.apply()
    live = observed_vm(stack, f"{name}-ct0")
    assert (live["power"], live["cpus"], len(live["mounts"]), live["features"]["keyctl"], live["tags"]) == (
        "off", 2, 2, True, ["app", "ct"])
