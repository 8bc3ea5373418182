"""One apply running many creates, updates and deletes at once through one provider: every VM ends as its own
declaration says, with nothing of another VM's (apply calls the drivers from a thread pool)."""

from __future__ import annotations

from typing import Any

from tests.conformance.stack import Stack

VMS = 12
PARALLEL = 8


def small_vm(network: str, index: int, generation: int) -> dict[str, Any]:
    """A VM whose every field tells it apart from the other eleven."""
    return {"cpus": 1 + (index + generation) % 4, "memory": 512 + 128 * index + 256 * generation, "power": "off",
            "disks": [{"size": 1 + index % 3}], "nics": [{"network": network}],
            "tags": [f"vm{index}", f"gen{generation}"]}


def declare(stack: Stack, name: str, generation: int) -> dict[str, dict[str, Any]]:
    wanted = {f"{name}-vm{index}": small_vm(f"{name}-net", index, generation) for index in range(VMS)}
    for vm, fields in wanted.items():
        stack.vm(vm, **fields)
    return wanted


def assert_each_as_declared(stack: Stack, wanted: dict[str, dict[str, Any]]) -> None:
    live = {r.name: r.observed.state for r in stack.plan().resources if r.observed is not None and r.name in wanted}
    assert set(live) == set(wanted)
    for vm, fields in wanted.items():
        state = live[vm]
        assert (state["cpus"], state["memory"], state["power"], state["tags"]) == (
            fields["cpus"], fields["memory"], "off", sorted(fields["tags"])), vm
        assert [disk["size"] for disk in state["disks"]] == [fields["disks"][0]["size"]], vm
    assert stack.changes() == {}


def test_twelve_vms_created_changed_and_destroyed_eight_at_a_time_each_end_as_declared(peer, name):
    stack = Stack(peer, f"{name}-stack").network(f"{name}-net", vlan=120)
    wanted = declare(stack, name, 0)
    stack.apply(parallel=PARALLEL)
    assert_each_as_declared(stack, wanted)

    changed = declare(stack, name, 1)  # every VM: other CPUs, memory and tags, updated at once
    stack.apply(parallel=PARALLEL)
    assert_each_as_declared(stack, changed)

    stack.apply(destroy=True, parallel=PARALLEL)
    assert all(peer.count(vm) == 0 for vm in wanted)
