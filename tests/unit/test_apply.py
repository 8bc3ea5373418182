from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.test_planning import net, stack, vm
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.plan import Action


def test_apply_creates_networks_before_the_vms_that_use_them():
    provider = MemoryProvider()
    plan = build_plan(stack(vm("a"), vm("b"), net()), {"ep": provider})
    result = apply.run(plan, {"ep": provider}, parallel=4)
    assert not result.failed
    creates_net = provider.drivers["Network"].calls
    assert creates_net == [("create", "net")]
    assert sorted(provider.drivers["VirtualMachine"].calls) == [("create", "a"), ("create", "b")]
    assert build_plan(stack(vm("a"), vm("b"), net()), {"ep": provider}).pending == []


def test_parallelism_is_bounded():
    provider = MemoryProvider()
    resources = [vm(f"vm-{i}") for i in range(12)]
    for resource in resources:
        resource.depends_on = set()
    result = apply.run(build_plan(stack(*resources), {"ep": provider}), {"ep": provider}, parallel=3)
    assert not result.failed
    assert provider.drivers["VirtualMachine"].max_running <= 3


def test_a_failure_skips_its_dependents_and_lets_the_rest_finish():
    provider = MemoryProvider(fail_on={"net"})
    other = vm("independent")
    other.depends_on = set()
    plan = build_plan(stack(net(), vm("a"), other), {"ep": provider})
    result = apply.run(plan, {"ep": provider})
    failed = {o.resource.key: o for o in result.failed}
    assert set(failed) == {"Network/net", "VirtualMachine/a"}
    assert failed["VirtualMachine/a"].skipped
    assert "the hypervisor said no" in failed["Network/net"].error
    assert ("create", "independent") in provider.drivers["VirtualMachine"].calls


def test_networks_are_deleted_only_after_the_vms_on_that_endpoint():
    provider = MemoryProvider()
    apply.run(build_plan(stack(net(), vm("a")), {"ep": provider}), {"ep": provider})
    plan = build_plan(stack(), {"ep": provider}, destroy=True)
    assert {r.action for r in plan.pending} == {Action.DELETE}
    graph = apply.dependency_graph(plan)
    assert graph.order() == ["VirtualMachine/a", "Network/net"]
