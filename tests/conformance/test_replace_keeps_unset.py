"""Unset means not managed, through a replace too: the new VM takes the old VM's live values for every field the
stack leaves unset, and the plan says so."""

from __future__ import annotations

from tests.conformance.stack import lab, observed_vm
from virtplane.plan import Action


def test_a_replaced_vm_keeps_the_live_values_of_the_fields_the_stack_leaves_unset(replacing_peer, name):
    peer = replacing_peer
    stack = lab(peer, name, vms=0)
    vm = f"{name}-vm0"
    stack.vm(vm, cpus=4, memory="2GiB", disks=[{"size": 4}], nics=[{"network": f"{name}-net"}], tags=["keep"],
             power="on", firmware="bios")
    stack.apply()
    before = observed_vm(stack, vm)
    stack.vm(vm, **peer.replacing())  # nothing else declared
    [item] = [r for r in stack.plan().resources if r.name == vm]
    assert item.action is Action.REPLACE
    assert {"cpus": 4, "memory": 2048, "tags": ["keep"], "power": "on"}.items() <= item.kept.items()
    assert [nic["network"] for nic in item.kept["nics"]] == [f"{name}-net"]
    stack.apply(allow_data_loss=True)
    after = observed_vm(stack, vm)
    for field in ("cpus", "memory", "tags", "power", "nested_virtualization"):
        assert after[field] == before[field], field
    assert [(n["network"], n["adapter"]) for n in after["nics"]] == [(n["network"], n["adapter"])
                                                                      for n in before["nics"]]
    assert stack.changes() == {}
