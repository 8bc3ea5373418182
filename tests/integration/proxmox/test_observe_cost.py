"""Observe reads in batches: one VM listing, then one configuration read per candidate, concurrently."""

from __future__ import annotations

from tests.integration.proxmox.helpers import observe, vm_spec
from tests.integration.proxmox.transports import CountInFlight, wrap

OURS = 24


def seed(pve, stack: str) -> None:
    for index in range(OURS):
        pve.add_vm(200 + index, f"vm{index}", node=("pve1", "pve2", "pve3")[index % 3], config={
            "memory": 512, "tags": "virtplane", "description": f"virtplane.owner: stack={stack};resource=vm{index}"})
    for index in range(10):
        pve.add_vm(400 + index, f"unrelated{index}", config={"memory": 512})
    pve.add_vm(900, "golden", template=True, config={"memory": 512, "tags": "virtplane"})
    pve.add_vm(901, "declared-by-hand", config={"memory": 512})


def test_observe_lists_once_and_reads_only_the_candidates_configurations(provider, stack, pve):
    seed(pve, stack)
    watch = wrap(provider, CountInFlight)
    result = observe(provider, stack, {"declared-by-hand": vm_spec(), "vm0": vm_spec()})
    assert len(result.owned) == OURS and set(result.foreign) == {"declared-by-hand"}
    listings = [path for method, path in watch.seen if path.endswith("/cluster/resources")]
    reads = sorted(path for method, path in watch.seen if path.endswith("/pending"))
    assert len(listings) == 1
    assert reads == sorted([f"/api2/json/nodes/{('pve1', 'pve2', 'pve3')[i % 3]}/qemu/{200 + i}/pending"
                            for i in range(OURS)] + ["/api2/json/nodes/pve1/qemu/901/pending"])
    assert len(watch.seen) == 1 + OURS + 1  # nothing else: no per-VM status reads, no node or storage reads


def test_the_configuration_reads_run_concurrently_over_the_pooled_session(provider, stack, pve):
    seed(pve, stack)
    pve.time_scale = 1.0
    pve.slow_network(0.05)  # every answer takes 50 ms: sequential reads could never overlap
    watch = wrap(provider, CountInFlight)
    observe(provider, stack, {})
    assert watch.peak > 4
