"""The XenServer provider against the simulated pool: templates, disks, networks, devices and reads in batches.

XenAPI reference (https://xapi-project.github.io/xen-api/): VM.clone/copy/provision (class VM), other_config:disks
(xapi's template provisioning), VDI/VBD, pool.create_VLAN_from_PIF, VGPU.create and GPU_group capacity."""

from __future__ import annotations

import pytest

from tests.integration.xenserver.conftest import calls_during
from tests.support import xenserver as xen
from virtplane.errors import SpecError
from virtplane.plan import Action
from virtplane.providers.registry import provider_class


def test_a_provider_sent_to_a_pool_member_follows_host_is_slave_to_the_master_once(fresh_xenserver):
    cls = provider_class("xenserver")
    settings = cls.settings_from("ep", {"server": fresh_xenserver.member_url}, fresh_xenserver.environ())
    provider = cls.connect(settings)
    try:
        assert provider.client.url == fresh_xenserver.url  # the member's answer named the master
        assert provider.identity().startswith("pool ")
    finally:
        provider.close()


def test_observe_reads_every_vm_in_the_same_number_of_calls_whatever_their_number(stack, peer, fresh_xenserver):
    stack.network("net", vlan=0)
    for index in range(2):
        stack.vm(f"few-{index}", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}], nics=[{"network": "net"}])
    stack.apply()
    few = calls_during(fresh_xenserver, stack.plan)
    for index in range(2, 10):
        stack.vm(f"few-{index}", cpus=1, memory="512MiB", power="off", disks=[{"size": 1}], nics=[{"network": "net"}])
    stack.apply()
    many = calls_during(fresh_xenserver, stack.plan)
    assert sorted(many) == sorted(few)
    assert many.count("VM.get_all_records_where") == 1 and "VM.get_record" not in many


def test_a_vm_from_a_template_that_describes_its_disks_gets_them_on_the_chosen_sr_grown_as_declared(stack,
                                                                                                  fresh_xenserver):
    stack.vm("deb", clone_from="Debian Bookworm 12", cpus=2, memory="1GiB", power="off", disks=[{"size": 20}])
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "deb")
        [vbd] = api.VM.get_VBDs(vm)
        vdi = api.VBD.get_VDI(vbd)
        assert (api.VBD.get_userdevice(vbd), api.VDI.get_virtual_size(vdi)) == ("0", str(20 * xen.GiB))
        assert api.SR.get_name_label(api.VDI.get_SR(vdi)) == "lab-nfs"
        assert "disks" not in api.VM.get_other_config(vm)  # provision used it up
    assert stack.changes() == {}


def test_a_full_copy_and_a_linked_clone_of_a_custom_template_use_vm_copy_and_vm_clone(stack, fresh_xenserver):
    stack.vm("full", clone_from="debian-12-base", power="off")
    copied = calls_during(fresh_xenserver, stack.apply)
    stack.vm("linked", clone_from="debian-12-base", linked_clone=True, power="off")
    cloned = calls_during(fresh_xenserver, stack.apply)
    assert "Async.VM.copy" in copied and "Async.VM.clone" not in copied
    assert "Async.VM.clone" in cloned and "Async.VM.copy" not in cloned
    with xen.session(fresh_xenserver) as api:
        for name in ("full", "linked"):  # the template's disk and UEFI firmware came along
            vm = xen.vm_named(api, name)
            assert len(api.VM.get_VBDs(vm)) == 1 and api.VM.get_HVM_boot_params(vm)["firmware"] == "uefi"


def test_disks_and_nics_added_to_a_running_vm_are_plugged_live(stack, fresh_xenserver):
    stack.network("net", vlan=0)
    stack.vm("live", cpus=1, memory="512MiB", disks=[{"size": 1}], nics=[{"network": "net"}])
    stack.apply()
    stack.vm("live", cpus=1, memory="512MiB", disks=[{"size": 1}, {"size": 2}],
             nics=[{"network": "net"}, {"network": "Pool-wide network associated with eth1"}])
    [item] = [r for r in stack.plan().resources if r.name == "live"]
    assert item.action is Action.UPDATE and not any(c.rule.value == "power-off" for c in item.changes)
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "live")
        assert api.VM.get_power_state(vm) == "Running"
        assert all(api.VBD.get_currently_attached(v) for v in api.VM.get_VBDs(vm))
        assert len(api.VM.get_VIFs(vm)) == 2
    assert stack.changes() == {}


def test_growing_a_disk_powers_the_vm_off_resizes_the_vdi_and_starts_it_again(stack, fresh_xenserver):
    stack.vm("grow", cpus=1, memory="512MiB", disks=[{"size": 1}])
    stack.apply()
    stack.vm("grow", cpus=1, memory="512MiB", disks=[{"size": 3}])
    [change] = next(r for r in stack.plan().resources if r.name == "grow").changes
    assert (change.change.path, change.rule.value) == ("disks[0].size", "power-off")
    stack.apply()
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "grow")
        assert api.VM.get_power_state(vm) == "Running"
        assert api.VDI.get_virtual_size(api.VBD.get_VDI(api.VM.get_VBDs(vm)[0])) == str(3 * xen.GiB)


def test_a_vgpu_and_a_passthrough_gpu_are_placed_on_the_gpu_host_and_read_back(stack, fresh_xenserver):
    stack.vm("ws", cpus=2, memory="2GiB", gpus=[{"mode": "vgpu", "profile": "GRID A100-20C"}])
    stack.vm("render", cpus=2, memory="2GiB", gpus=[{"mode": "passthrough"}])
    plan = stack.apply()
    assert {r.name: r.placement for r in plan.resources} == {"ws": "xs-gpu", "render": "xs-gpu"}
    live = {r.name: r.observed.state["gpus"] for r in stack.plan().resources if r.observed is not None}
    assert live == {"ws": [{"mode": "vgpu", "profile": "GRID A100-20C", "device": "0000:3b:00.0", "vendor": "nvidia"}],
                    "render": [{"mode": "passthrough", "profile": None, "device": "0000:af:00.0",
                                "vendor": "nvidia"}]}
    stack.vm("ws", cpus=2, memory="2GiB", gpus=[{"mode": "vgpu", "profile": "GRID A100-10C"}])
    stack.apply()  # another size: the VM is powered off, its vGPU replaced, and it starts again
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "ws")
        [vgpu] = api.VM.get_VGPUs(vm)
        assert api.VGPU_type.get_model_name(api.VGPU.get_type(vgpu)) == "GRID A100-10C"
        assert api.VM.get_power_state(vm) == "Running"


def test_a_vlan_network_is_made_once_for_the_pool_and_shared_by_stacks_that_declare_its_vlan(peer, fresh_xenserver):
    from tests.conformance.stack import Stack

    first = Stack(peer, "first").network("app", vlan=130).vm("a", cpus=1, memory="512MiB", power="off",
                                                              nics=[{"network": "app"}])
    second = Stack(peer, "second").network("app2", vlan=130).vm("b", cpus=1, memory="512MiB", power="off",
                                                                 nics=[{"network": "app2"}])
    assert {r.name: r.action for r in first.apply().resources}["app"] is Action.CREATE
    assert {r.name: r.action for r in second.apply().resources}["app2"] is Action.NOOP  # the pool has it
    with xen.session(fresh_xenserver) as api:
        [network] = api.network.get_by_name_label("app")
        assert sorted(api.PIF.get_VLAN(p) for p in api.network.get_PIFs(network)) == ["130"] * 3
    first.apply(destroy=True)  # b still uses it: it stays, handed over
    with xen.session(fresh_xenserver) as api:
        assert "virtplane.owner" not in api.network.get_other_config(network)
    assert second.changes() == {}
    second.apply(destroy=True)
    with xen.session(fresh_xenserver) as api:
        assert api.network.get_by_name_label("app") == [network]  # not ours any more: never deleted by virtplane


def test_destroying_a_stack_removes_its_vms_their_disks_and_the_vlan_network_it_made(stack, fresh_xenserver):
    stack.network("app", vlan=140).vm("gone", cpus=1, memory="512MiB", disks=[{"size": 1}, {"size": 2}],
                                      nics=[{"network": "app"}])
    stack.apply()
    stack.apply(destroy=True)
    assert xen.vm_names(fresh_xenserver) == []
    assert xen.vdi_names(fresh_xenserver) == ["debian-12-base 0"]
    with xen.session(fresh_xenserver) as api:
        assert api.network.get_by_name_label("app") == []
        assert not [p for p in api.PIF.get_all_records().values() if p["VLAN"] == "140"]


def test_a_copy_whose_declared_disk_is_smaller_than_its_sources_is_refused_at_plan_and_nothing_is_made(
        stack, fresh_xenserver):
    stack.vm("small", clone_from="debian-12-base", power="off", disks=[{"size": 4}])
    with pytest.raises(SpecError, match=r"field 'disks\[0\]\.size': disk 0 of 'debian-12-base' is 10 GiB; a "
                                        "clone's disk can grow, never shrink"):
        stack.plan()
    assert "small" not in xen.vm_names(fresh_xenserver)
