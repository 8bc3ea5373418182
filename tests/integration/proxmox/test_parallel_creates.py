"""Many creates at once on one endpoint: each gets its own VMID, so one apply converges; creates, updates and
deletes at once through one driver each land on their own VM."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tests.conformance.stack import ENDPOINT, Stack
from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import declared, requests_to, vm_spec
from virtplane import apply
from virtplane.diff import diff
from virtplane.providers.base import Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider

VMS = 200


@dataclass
class Endpoint:
    """What tests.conformance.stack.Stack needs of a peer."""

    provider: ProxmoxProvider
    kind: str = "proxmox"


def test_creates_on_64_threads_through_the_driver_all_succeed_with_distinct_vmids(environ, pve, stack):
    provider = connect(environ)
    driver = provider.driver("VirtualMachine")
    spec = vm_spec(power="off", disks=[], nics=[])

    def make(index: int) -> str | None:
        try:
            driver.create(Owner(stack, f"vm{index:03d}"), spec)
        except Exception as exc:  # every failure is collected and shown
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=64) as pool:
        failures = [error for error in pool.map(make, range(VMS)) if error]
    provider.close()
    assert failures == []
    names = Counter(vm.name for vm in pve.vms)
    assert len(names) == VMS and set(names.values()) == {1}
    assert len({vm.vmid for vm in pve.vms}) == VMS


def test_an_apply_of_200_vms_at_parallel_32_converges_in_one_run_past_vmids_taken_behind_its_back(environ, pve):
    provider = connect(environ)
    pve.add_vm(105, "handmade", config={"memory": 512})  # listed: skipped without asking
    stack = Stack(Endpoint(provider), "many").network("app", vlan=110)
    for index in range(VMS):
        stack.vm(f"vm{index:03d}", cpus=1, memory=512, nics=[{"network": "app"}], power="off")
    plan = stack.plan()
    for vmid in (110, 150):  # taken by another client after the plan: those creates are refused and ask again
        pve.add_vm(vmid, f"other{vmid}", config={"memory": 512})
    result = apply.run(plan, {ENDPOINT: provider}, parallel=32)
    failed: list[Any] = [outcome.error for outcome in result.failed]
    assert failed == []
    assert stack.changes() == {}
    vmids = [vm.vmid for vm in pve.vms]
    assert len(vmids) == VMS + 3 == len(set(vmids))
    assert len(requests_to(pve, "GET", "/cluster/nextid")) == VMS + 2  # one more for each VMID taken behind our back
    provider.close()


def test_a_create_reads_its_new_vm_alone_and_never_lists_every_vm_of_the_cluster(provider, stack, pve):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, "first"), vm_spec(node="pve1"))  # the cluster's storages are read once, here
    listed = len(requests_to(pve, "GET", "/cluster/resources"))
    driver.create(Owner(stack, "second"), vm_spec(node="pve1"))
    assert len(requests_to(pve, "GET", "/cluster/resources")) == listed
    assert len(requests_to(pve, "GET", "/status/current")) == 2


def test_creates_updates_and_deletes_on_16_threads_through_one_driver_each_land_on_their_own_vm(environ, pve,
                                                                                                 stack):
    """The driver's thread-safety statement: 16 creates, 16 updates and 16 deletes at once, no cross-talk."""
    provider = connect(environ)
    driver = provider.driver("VirtualMachine")
    spec = vm_spec(power="off", disks=[], nics=[], node="pve1")
    for index in range(32):
        driver.create(Owner(stack, f"old{index:02d}"), spec)
    live = driver.observe(stack, declared({})).owned

    def work(job: tuple[str, int]) -> str | None:
        action, index = job
        try:
            if action == "create":
                driver.create(Owner(stack, f"new{index:02d}"), vm_spec(power="off", disks=[], nics=[],
                                                                         memory=512 + 16 * index, node="pve2"))
            elif action == "update":
                wanted = vm_spec(power="off", disks=None, nics=None, memory=1024 + 16 * index, tags=[f"t{index}"])
                observed = live[f"old{index:02d}"]
                driver.update(observed, wanted, diff(wanted.model_dump(), observed.state))
            else:
                driver.delete(live[f"old{16 + index:02d}"])
        except Exception as exc:  # every failure is collected and shown
            return f"{action} {index}: {exc}"
        return None

    jobs = [(action, index) for index in range(16) for action in ("create", "update", "delete")]
    with ThreadPoolExecutor(max_workers=16) as pool:
        failures = [error for error in pool.map(work, jobs) if error]
    assert failures == []
    after = driver.observe(stack, declared({})).owned
    provider.close()
    assert set(after) == {f"old{i:02d}" for i in range(16)} | {f"new{i:02d}" for i in range(16)}
    for index in range(16):
        old, new = after[f"old{index:02d}"].state, after[f"new{index:02d}"].state
        assert (old["memory"], old["tags"], old["node"]) == (1024 + 16 * index, [f"t{index}"], "pve1")
        assert (new["memory"], new["tags"], new["node"]) == (512 + 16 * index, [], "pve2")
    assert len({vm.vmid for vm in pve.vms}) == len(pve.vms) == 32
