import pytest

from tests.unit.memory_hypervisor import MemoryProvider
from virtplane.declared import DeclaredResource, DesiredStack
from virtplane.engine import build_plan
from virtplane.errors import OwnershipError, StackInvalid
from virtplane.kinds import build_spec
from virtplane.plan import Action
from virtplane.providers.base import Owner


def stack(*resources: DeclaredResource) -> DesiredStack:
    desired = DesiredStack("proj", "dev")
    for resource in resources:
        desired.resources[resource.key] = resource
    return desired


def vm(name: str, **fields) -> DeclaredResource:
    spec = build_spec("VirtualMachine", name, {"cpus": 2, "memory": 1024, **fields})
    return DeclaredResource("VirtualMachine", name, spec, "ep", {"Network/net"})


def live(**fields) -> dict:
    """A live VM's state as a driver reports it: every field known, disks and NICs with their slots."""
    spec = build_spec("VirtualMachine", "x", {"cpus": 2, "memory": 1024, **fields}).with_creation_defaults()
    state = spec.model_dump()
    for index, disk in enumerate(state["disks"]):
        disk["slot"] = disk["slot"] or f"disk{index}"
    return state


def net(name: str = "net", vlan: int = 10) -> DeclaredResource:
    return DeclaredResource("Network", name, build_spec("Network", name, {"vlan": vlan}), "ep")


def test_everything_missing_is_planned_as_creates():
    plan = build_plan(stack(net(), vm("a")), {"ep": MemoryProvider()})
    assert [(r.key, r.action) for r in plan.resources] == [
        ("Network/net", Action.CREATE), ("VirtualMachine/a", Action.CREATE)]


def test_a_changed_field_is_an_update_with_the_field_and_its_rule():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a"), live(cpus=1))
    plan = build_plan(stack(vm("a")), {"ep": provider})
    [item] = [r for r in plan.resources if r.kind == "VirtualMachine"]
    assert item.action is Action.UPDATE
    assert [(c.change.path, c.change.old, c.change.new, c.rule.value) for c in item.changes] == [
        ("cpus", 1, 2, "in-place")]


def test_a_field_that_needs_a_new_object_makes_a_replace():
    provider = MemoryProvider()
    state = live(disks=[{"size": 5, "thin": False}])
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a"), state)
    plan = build_plan(stack(vm("a", disks=[{"size": 5, "thin": True}])), {"ep": provider})
    assert plan.resources[-1].action is Action.REPLACE


def test_owned_objects_no_longer_declared_are_deleted_and_others_left_alone():
    provider = MemoryProvider()
    vms = provider.drivers["VirtualMachine"].objects
    vms["gone"] = (Owner("proj/dev", "gone"), {})
    vms["other-stack"] = (Owner("proj/prod", "other-stack"), {})
    vms["hand-made"] = (None, {})
    plan = build_plan(stack(), {"ep": provider})
    assert [(r.name, r.action) for r in plan.resources] == [("gone", Action.DELETE)]


def test_a_same_named_object_we_do_not_own_stops_the_plan_naming_it():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (None, {})
    with pytest.raises(OwnershipError, match="VirtualMachine 'a': a virtual machine named 'a' already exists on "
                                             "endpoint 'ep' and is not managed by stack 'proj/dev'"):
        build_plan(stack(vm("a")), {"ep": provider})


def test_a_refused_change_is_planned_with_its_reason_naming_resource_and_field():
    provider = MemoryProvider()
    state = live(disks=[{"size": 50}])
    provider.drivers["VirtualMachine"].objects["a"] = (Owner("proj/dev", "a"), state)
    [item] = build_plan(stack(vm("a", disks=[{"size": 5}])), {"ep": provider}).resources
    assert item.refusal() == ("VirtualMachine 'a': field 'disks[disk0].size': cannot apply: shrinking a disk is "
                              "not possible; none of its changes were made")


def test_same_named_objects_we_do_not_own_are_all_named_in_one_error():
    provider = MemoryProvider()
    provider.drivers["VirtualMachine"].objects["a"] = (None, live())
    provider.drivers["VirtualMachine"].objects["b"] = (Owner("other/dev", "b"), live())
    with pytest.raises(StackInvalid) as raised:
        build_plan(stack(vm("a"), vm("b")), {"ep": provider})
    assert "named 'a' already exists" in str(raised.value) and "named 'b' already exists" in str(raised.value)


def test_destroy_plans_deleting_only_what_this_stack_owns():
    provider = MemoryProvider()
    provider.drivers["Network"].objects["net"] = (Owner("proj/dev", "net"), {"vlan": 10})
    provider.drivers["Network"].objects["theirs"] = (None, {"vlan": 10})
    plan = build_plan(stack(net()), {"ep": provider}, destroy=True)
    assert [(r.name, r.action) for r in plan.resources] == [("net", Action.DELETE)]


def container(name: str, **fields) -> DeclaredResource:
    spec = build_spec("Container", name, {"template": "local:vztmpl/debian.tar.zst", **fields})
    return DeclaredResource("Container", name, spec, "ep")


def test_a_container_on_an_endpoint_without_containers_is_refused_naming_the_resource_and_the_endpoint():
    with pytest.raises(Exception) as refused:
        build_plan(stack(container("ct")), {"ep": MemoryProvider()})
    assert str(refused.value) == ("Container 'ct': field 'opts.provider': endpoint 'ep' is a memory endpoint, which "
                                  "has no containers; declare it on an endpoint that does (see docs/containers.md)")


def test_a_stack_without_containers_plans_on_an_endpoint_without_a_container_driver():
    plan = build_plan(stack(vm("a")), {"ep": MemoryProvider()})
    assert [r.kind for r in plan.resources] == ["VirtualMachine"]


def test_a_containers_mount_points_take_the_drivers_slots_and_their_removal_destroys_data():
    from tests.unit.memory_hypervisor import MemoryDriver

    provider = MemoryProvider()
    provider.drivers["Container"] = MemoryDriver("Container")
    state = container("ct", mounts=[{"path": "/a", "size": 1, "slot": "disk0"}, {"path": "/b", "size": 2,
                                                                                  "slot": "disk1"}],
                      rootfs={"size": 8}).spec.with_creation_defaults().model_dump()
    provider.drivers["Container"].objects["ct"] = (Owner("proj/dev", "ct"), state)
    plan = build_plan(stack(container("ct", mounts=[{"path": "/a", "size": 1}])), {"ep": provider})
    [item] = plan.resources
    assert [(c.change.path, c.rule.value, c.destroys_data) for c in item.changes] == [("mounts[disk1]", "in-place",
                                                                                       True)]
    assert plan.data_loss() == ["container ct on ep: mount point disk1 (2 GiB) is no longer declared; removing it "
                                "destroys its data"]
