"""The Network driver against the simulator: distributed port groups with a VLAN."""

from __future__ import annotations

import pytest

from tests.integration.vsphere.helpers import create_raw_portgroup, find_portgroup, set_owner_attribute
from virtplane.diff import diff
from virtplane.errors import OwnershipError
from virtplane.providers.base import FieldChange, Owner, description_marker
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


def test_create_returns_the_port_group_key_and_observe_ids_reads_it_back(provider, raw_si, stack, name):
    created = provider.driver("Network").create(Owner(stack, name), NetworkSpec(vlan=42))
    assert created.id == find_portgroup(raw_si, name).key and created.outputs == {"vlan": 42}
    assert observe(provider, stack, name).owned[name].id == created.id
    found = provider.driver("Network").observe_ids("another-stack", [created.id, "no-such-key"], {})
    assert list(found) == [created.id]
    assert (found[created.id].name, found[created.id].state, found[created.id].owner) == (
        name, {"vlan": 42}, Owner(stack, name))


def test_a_vm_can_attach_to_a_network_created_in_the_same_run(provider, stack, name):
    provider.driver("Network").create(Owner(stack, name), NetworkSpec(vlan=7))
    spec = VirtualMachineSpec(cpus=1, memory=256, nics=[{"network": name}], power="off")
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    declared = {"VirtualMachine": dict.fromkeys([name])}
    state = provider.driver("VirtualMachine").observe(stack, declared).owned[name].state
    assert state["nics"] == [{"network": name, "adapter": "paravirtual", "device": None, "slot": "ethernet0"}]


def test_an_existing_port_group_without_our_marker_is_foreign(provider, stack):
    result = provider.driver("Network").observe(stack, {"Network": dict.fromkeys(["DC0_DVPG0"])})
    foreign = result.foreign["DC0_DVPG0"]
    assert foreign.owner is None
    with pytest.raises(OwnershipError):
        provider.driver("Network").delete(foreign)


def test_two_port_groups_carrying_the_same_marker_stop_observe_naming_both(provider, raw_si, stack, name):
    provider.driver("Network").create(Owner(stack, name), NetworkSpec(vlan=5))
    ours = provider.inventory.network(name).ref
    copy = create_raw_portgroup(raw_si, name + "-copy", "a copy")
    set_owner_attribute(raw_si, copy, Owner(stack, name).encode())
    with pytest.raises(OwnershipError) as caught:
        observe(provider, stack, name)
    message = str(caught.value)
    for shown in (f"'{name}' ({ours._moId})", f"'{name}-copy' ({copy._moId})"):
        assert shown in message
    assert {pg.name for pg in copy.config.distributedVirtualSwitch.portgroup} >= {name, name + "-copy"}


def test_a_port_group_made_by_hand_with_our_marker_in_its_description_under_another_name_is_foreign(
        provider, raw_si, stack, name):
    create_raw_portgroup(raw_si, name, f"notes\n{description_marker(Owner(stack, name + '-orig'))}\n")
    result = observe(provider, stack, name)
    assert name not in result.owned and name + "-orig" not in result.owned
    assert result.foreign[name].owner is None
    with pytest.raises(OwnershipError):
        provider.driver("Network").delete(result.foreign[name])
    with pytest.raises(OwnershipError):
        provider.driver("Network").update(result.foreign[name], NetworkSpec(vlan=9), [FieldChange("vlan", 0, 9)])


def test_a_port_group_left_by_a_create_killed_before_its_attribute_is_found_even_undeclared(
        provider, raw_si, stack, name):
    # AddDVPortgroup wrote the description line; the custom attribute was never written.
    create_raw_portgroup(raw_si, name, description_marker(Owner(stack, name)))
    result = provider.driver("Network").observe(stack, {})
    assert result.owned[name].marker_complete is False
    provider.driver("Network").delete(result.owned[name])
    assert name not in {pg.name for pg in raw_si.RetrieveContent().rootFolder.childEntity[0].network}
