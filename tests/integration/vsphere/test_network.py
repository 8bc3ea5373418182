"""The Network driver against the simulator: distributed port groups with a VLAN."""

from __future__ import annotations

import pytest

from virtplane.diff import diff
from virtplane.errors import OwnershipError
from virtplane.providers.base import Owner
from virtplane.providers.vsphere.provider import VsphereProvider
from virtplane.specs import NetworkSpec, VirtualMachineSpec


def observe(provider: VsphereProvider, stack: str, name: str):
    return provider.driver("Network").observe(stack, {"Network": dict.fromkeys([name])})


def test_a_network_is_created_read_back_with_its_vlan_updated_and_deleted(provider, stack, name):
    driver = provider.driver("Network")
    driver.create(Owner(stack, name), NetworkSpec(vlan=100))
    observed = observe(provider, stack, name).owned[name]
    assert observed.state == NetworkSpec(vlan=100).model_dump()
    assert observed.owner == Owner(stack, name) and observed.marker_complete

    wanted = NetworkSpec(vlan=200)
    driver.update(observed, wanted, diff(wanted.model_dump(), observed.state))
    observed = observe(provider, stack, name).owned[name]
    assert observed.state == {"vlan": 200}
    assert observed.owner == Owner(stack, name)

    driver.delete(observed)
    assert name not in observe(provider, stack, name).owned
    driver.delete(observed)  # gone already: tolerated


def test_a_vm_can_attach_to_a_network_created_in_the_same_run(provider, stack, name):
    provider.driver("Network").create(Owner(stack, name), NetworkSpec(vlan=7))
    spec = VirtualMachineSpec(cpus=1, memory=256, nics=[{"network": name}], power="off")
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    declared = {"VirtualMachine": dict.fromkeys([name])}
    state = provider.driver("VirtualMachine").observe(stack, declared).owned[name].state
    assert state["nics"] == [{"network": name, "adapter": "paravirtual"}]


def test_an_existing_port_group_without_our_marker_is_foreign(provider, stack):
    result = provider.driver("Network").observe(stack, {"Network": dict.fromkeys(["DC0_DVPG0"])})
    foreign = result.foreign["DC0_DVPG0"]
    assert foreign.owner is None
    with pytest.raises(OwnershipError):
        provider.driver("Network").delete(foreign)
