"""Placement on a datacenter holding a cluster and a standalone host (vcsim's default inventory shape)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyVmomi import vim

from tests.integration.vsphere.helpers import EngineStack, find_vm
from tests.integration.vsphere.test_vm import converge, observe_one, vm_spec
from tests.support.vsphere import admin
from virtplane.errors import VirtplaneError
from virtplane.providers.base import Owner
from virtplane.providers.vsphere.provider import VsphereProvider
from virtplane.providers.vsphere.tasks import wait_for_task
from virtplane_lab.vcsim import VcsimInstance

STANDALONE = "DC0_H0"
LOCAL_NIC = [{"network": "VM Network"}]  # the standalone host is not on the distributed switch


def add_standalone_host(instance: VcsimInstance, name: str) -> None:
    """Add host ``name`` outside any cluster, mounting the datacenter's datastore as vcsim's model does."""
    with admin(instance) as si:
        datacenter = si.RetrieveContent().rootFolder.childEntity[0]
        task = datacenter.hostFolder.AddStandaloneHost_Task(spec=vim.host.ConnectSpec(hostName=name),
                                                             addConnected=True)
        host = wait_for_task(task, what="add a standalone host")
        datastore = datacenter.datastore[0]
        host.configManager.datastoreSystem.CreateLocalDatastore(name=datastore.name, path=datastore.info.url)


@pytest.fixture
def mixed(fresh_vcsim: VcsimInstance) -> Iterator[tuple[VcsimInstance, VsphereProvider]]:
    """A simulator whose datacenter holds cluster DC0_C0 and standalone host DC0_H0; no VSPHERE_CLUSTER."""
    add_standalone_host(fresh_vcsim, STANDALONE)
    provider = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, fresh_vcsim.environ()))
    yield fresh_vcsim, provider
    provider.close()


def test_with_no_cluster_setting_the_only_cluster_is_used_and_standalone_hosts_are_left_aside(mixed, stack, name):
    _instance, provider = mixed
    assert provider.inventory.placement.cluster_name == "DC0_C0"
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    assert observe_one(provider, stack, name).state["node"] in provider.inventory.placement.cluster_hosts


def test_a_vm_whose_node_is_a_standalone_host_is_placed_in_its_own_resource_pool(mixed, stack, name):
    instance, provider = mixed
    spec = vm_spec(node=STANDALONE, nics=LOCAL_NIC)
    assert provider.driver("VirtualMachine").check(spec, {}) == []
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    with admin(instance) as si:
        vm = find_vm(si, name)
        assert vm.runtime.host.name == STANDALONE
        assert vm.resourcePool.owner.name == STANDALONE
    assert observe_one(provider, stack, name).state["node"] == STANDALONE


def test_a_vm_moves_from_the_cluster_to_a_standalone_host(mixed, stack, name):
    instance, provider = mixed
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(node="DC0_C0_H1", nics=LOCAL_NIC))
    assert converge(provider, stack, name, vm_spec(node=STANDALONE, nics=LOCAL_NIC)).state["node"] == STANDALONE
    with admin(instance) as si:
        assert find_vm(si, name).resourcePool.owner.name == STANDALONE


def test_an_unknown_node_lists_the_cluster_and_standalone_hosts(mixed):
    _instance, provider = mixed
    assert provider.driver("VirtualMachine").check(vm_spec(node="esx-99"), {}) == [
        ("node", "host 'esx-99' is neither in cluster DC0_C0 nor a standalone host of datacenter DC0 "
                 "(choices: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2, DC0_H0)")]


def test_a_named_cluster_that_does_not_exist_lists_the_choices(fresh_vcsim):
    add_standalone_host(fresh_vcsim, STANDALONE)
    settings = VsphereProvider.settings_from("lab", {"cluster": "nope"}, fresh_vcsim.environ())
    choices = r"\(choices: DC0_C0, DC0_H0\)"
    with pytest.raises(VirtplaneError, match=rf"has no cluster named 'nope' in datacenter DC0 {choices}"):
        VsphereProvider.connect(settings)


def test_placement_leaves_a_cluster_to_vsphere(mixed):
    _instance, provider = mixed
    assert provider.driver("VirtualMachine").place(vm_spec(), {}) is None


def test_placement_names_the_host_of_a_standalone_compute_resource_and_the_plan_shows_it(fresh_vcsim, name):
    add_standalone_host(fresh_vcsim, STANDALONE)
    settings = VsphereProvider.settings_from("lab", {"cluster": STANDALONE}, fresh_vcsim.environ())
    provider = VsphereProvider.connect(settings)
    try:
        assert provider.driver("VirtualMachine").place(vm_spec(nics=LOCAL_NIC), {}) == STANDALONE
        stack = EngineStack(provider, name).vm(name, memory=256, nics=LOCAL_NIC)
        assert stack.item(name).placement == STANDALONE
        stack.apply()
        with admin(fresh_vcsim) as si:
            assert find_vm(si, name).runtime.host.name == STANDALONE
    finally:
        provider.close()
