"""Concurrent creates, updates and deletes through one Hyper-V driver (apply runs drivers from a thread pool):
every outcome right, no cross-talk between VMs. Cmdlets as in Microsoft's Hyper-V module reference (New-VM,
Set-VMProcessor, Set-VMMemory, Set-VM -Notes, Remove-VM)."""

from __future__ import annotations

import itertools

from tests.integration.hyperv.test_driver import converge, provider, stack, vms_named
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.plan import Action

_numbers = itertools.count()


def test_sixteen_creates_updates_and_deletes_at_once_each_land_on_their_own_vm(hyperv_plain):
    """New-VM, Set-VMProcessor -Count, Set-VMMemory -StartupBytes, Set-VM -Notes and Remove-VM (cmdlet
    references), 16 at once through one driver: each VM ends as its own spec says."""
    hv = provider(hyperv_plain)
    project = f"many{next(_numbers)}"
    run = next(_numbers)
    old = [f"c{run}-old-{i}" for i in range(8)]
    new = [f"c{run}-new-{i}" for i in range(8)]
    converge(stack(project, {name: {"cpus": 1, "memory": 512, "power": "off"} for name in old}), hv)

    def fields(index: int) -> dict:
        return {"cpus": 1 + index % 4, "memory": 512 + 2 * index, "power": "off", "tags": [f"t{index}"]}

    wanted = {name: fields(i) for i, name in enumerate(old[:4])} | {name: fields(8 + i) for i, name in enumerate(new)}
    desired = stack(project, wanted)
    plan = build_plan(desired, {"hv": hv})
    actions = sorted((r.action.value, r.name) for r in plan.pending if r.kind == "VirtualMachine")
    assert [a for a, _ in actions].count("create") == 8 and [a for a, _ in actions].count("update") == 4
    assert [a for a, _ in actions].count("delete") == 4
    result = apply.run(plan, {"hv": hv}, parallel=16, allow_data_loss=True)
    assert not result.failed, [o.error for o in result.failed]
    for name, spec in wanted.items():
        [vm] = vms_named(hv, name)
        assert (vm.number("ProcessorCount"), vm.number("MemoryStartup") // 1024**2) == (spec["cpus"], spec["memory"])
        assert f"virtplane.tags: {spec['tags'][0]}" in (vm.text("Notes") or "")
        assert f"resource={name}" in (vm.text("Notes") or "")
    for name in old[4:]:
        assert vms_named(hv, name) == []
    assert {r.action for r in build_plan(desired, {"hv": hv}).resources if r.kind == "VirtualMachine"} == {
        Action.NOOP}
