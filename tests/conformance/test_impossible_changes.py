"""Drift never hides drift, on every provider: a change the hypervisor cannot make (a disk shrunk) is reported
beside every other difference, and apply refuses only the VM holding it, naming the field with its slot."""

from __future__ import annotations

from tests.conformance.stack import full_vm, lab, observed_vm
from virtplane import apply
from virtplane.plan import Action


def test_a_shrunk_disk_is_reported_beside_other_drift_and_refused_alone_while_the_rest_is_applied(peer, name):
    stack = lab(peer, name, vms=2)
    stack.apply()
    first_disk = observed_vm(stack, f"{name}-vm0")["disks"][0]["slot"]
    # vm0: its first disk declared smaller than it is (as when it was grown out of band) and more memory;
    # vm1: more memory only.
    stack.vm(f"{name}-vm0", **full_vm(peer, f"{name}-net", memory="3GiB",
                                      disks=[{"size": "5GiB"}, {"size": 4, "bus": peer.second_disk_bus}]))
    stack.vm(f"{name}-vm1", **full_vm(peer, f"{name}-net", memory="3GiB"))
    plan = stack.plan()
    by_name = {r.name: r for r in plan.resources}
    vm0, vm1 = by_name[f"{name}-vm0"], by_name[f"{name}-vm1"]
    assert vm0.action is Action.UPDATE and vm1.action is Action.UPDATE
    refused = {c.change.path: c.refused for c in vm0.changes}
    assert refused["memory"] is None
    assert "shrinking a disk from 10 GiB to 5 GiB is not possible" in refused[f"disks[{first_disk}].size"]

    result = apply.run(plan, {"ep": peer.provider})
    [failed] = result.failed
    assert failed.resource.name == f"{name}-vm0"
    assert f"field 'disks[{first_disk}].size': cannot apply: shrinking" in failed.error
    assert observed_vm(stack, f"{name}-vm1")["memory"] == 3072
    assert observed_vm(stack, f"{name}-vm0")["memory"] == 2048  # none of the refused VM's changes were made
