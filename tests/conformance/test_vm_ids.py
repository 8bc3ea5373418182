"""What every provider's ``create`` returns: a stable id that ``observe_ids`` reads the VM back by."""

from __future__ import annotations

from tests.conformance.stack import ENDPOINT, Stack, full_vm
from virtplane.apply import creation_spec
from virtplane.plan import Action
from virtplane.providers.base import Owner


def test_create_returns_a_stable_id_that_observe_ids_reads_back(peer, name):
    vm, network = f"{name}-vm0", f"{name}-net"
    stack = Stack(peer, f"{name}-stack").network(network, vlan=110)
    stack.apply()  # the network first, as apply orders it
    stack.vm(vm, **full_vm(peer, network))
    [item] = [r for r in stack.plan().resources if r.name == vm]
    assert item.action is Action.CREATE
    driver = peer.provider.driver("VirtualMachine")
    created = driver.create(Owner(stack.desired.identity, vm, ENDPOINT), creation_spec(item))
    assert isinstance(created.id, str) and created.id
    assert (created.outputs["cpus"], created.outputs["memory"], created.outputs["power"]) == (4, 2048, "on")
    assert created.outputs["node"]
    assert [nic["network"] for nic in created.outputs["nics"]] == [network, network]  # named as declared

    found = driver.observe_ids(stack.desired.identity, [created.id], stack.declared())
    assert list(found) == [created.id]
    assert (found[created.id].id, found[created.id].name, found[created.id].state["cpus"]) == (created.id, vm, 4)
    assert observed_id(stack, vm) == created.id  # observe reports the same id

    stack.vm(vm, **full_vm(peer, network, cpus=2, tags=["renamed"]))
    stack.apply()  # a change in place keeps the id
    peer.power_off(vm)  # and so does power, changed behind our back
    again = driver.observe_ids(stack.desired.identity, [created.id], stack.declared())
    assert (again[created.id].id, again[created.id].state["cpus"], again[created.id].state["power"]) == (
        created.id, 2, "off")
    assert observed_id(stack, vm) == created.id


def observed_id(stack: Stack, vm: str) -> str | None:
    [item] = [r for r in stack.plan().resources if r.name == vm]
    assert item.observed is not None
    return item.observed.id
