"""One driver serves concurrent creates, updates and deletes of different VMs, as apply calls it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.integration.vsphere.test_vm import observe_one, resolved, vm_spec
from virtplane.diff import diff
from virtplane.providers.base import Owner
from virtplane.specs import CREATE_ONLY


def test_sixteen_creates_updates_and_deletes_run_at_once_through_one_driver_without_cross_talk(
        provider, stack, name):
    driver = provider.driver("VirtualMachine")
    for index in range(10):  # 5 to update, 5 to delete
        driver.create(Owner(stack, f"{name}-old{index}"), vm_spec(memory=256, power="off", tags=[f"old{index}"]))
    before = driver.observe(stack, {}).owned

    def create(index: int) -> Any:
        spec = vm_spec(cpus=index + 1, memory=256 + 16 * index, tags=[f"new{index}"],
                       disks=[{"size": 1 + index}])
        return driver.create(Owner(stack, f"{name}-new{index}"), spec)

    def update(index: int) -> None:
        observed = before[f"{name}-old{index}"]
        wanted = resolved(provider, vm_spec(cpus=index + 2, memory=512 + 16 * index, tags=[f"upd{index}"],
                                            disks=[{"size": 8}, {"size": 2 + index}]), observed.state)
        driver.update(observed, wanted, diff(wanted.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"]))

    def delete(index: int) -> None:
        driver.delete(before[f"{name}-old{index}"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        creates = [pool.submit(create, i) for i in range(6)]
        updates = [pool.submit(update, i) for i in range(5)]
        deletes = [pool.submit(delete, i) for i in range(5, 10)]
        created = [future.result() for future in creates]
        for future in updates + deletes:
            future.result()

    after = driver.observe(stack, {}).owned
    assert set(after) == {f"{name}-new{i}" for i in range(6)} | {f"{name}-old{i}" for i in range(5)}
    assert len({c.id for c in created}) == 6
    for index, outcome in enumerate(created):
        state = after[f"{name}-new{index}"].state
        assert after[f"{name}-new{index}"].id == outcome.id
        assert (state["cpus"], state["memory"], state["tags"]) == (index + 1, 256 + 16 * index, [f"new{index}"])
        assert [d["size"] for d in state["disks"]] == [1 + index]
    for index in range(5):
        state = observe_one(provider, stack, f"{name}-old{index}").state
        assert (state["cpus"], state["memory"], state["tags"]) == (index + 2, 512 + 16 * index, [f"upd{index}"])
        assert [(d["slot"], d["size"]) for d in state["disks"]] == [("scsi0:0", 8), ("scsi0:1", 2 + index)]
