"""The core contract on vSphere: unset fields are not managed, disks and NICs are matched and made by slot,
data-destroying plans are refused, create returns the instance UUID and VMs are read back by it."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import vim

from tests.integration.vsphere.helpers import EngineStack, disk_devices, find_vm, mark_as_template
from tests.integration.vsphere.test_vm import converge, observe_one, vm_spec
from virtplane import apply
from virtplane.plan import Action
from virtplane.providers.base import Owner, Rule
from virtplane.providers.vsphere.tasks import wait_for_task
from virtplane.specs import VirtualMachineSpec

GiB_IN_KB = 1024 * 1024


def template(provider, raw_si, name: str, **fields: Any) -> str:
    """A template made by another stack (it must not matter whose it is), marked as a vSphere template."""
    spec = VirtualMachineSpec.model_validate({"cpus": 1, "memory": 512, "power": "off"} | fields)
    provider.driver("VirtualMachine").create(Owner("templates", name), spec)
    mark_as_template(raw_si, name)
    return name


# ---- unset means not managed -----------------------------------------------------------------------------

def test_a_clone_of_a_uefi_template_declaring_only_cpus_and_memory_stays_uefi_and_the_next_plan_is_empty(
        provider, raw_si, name):
    source = template(provider, raw_si, f"{name}-tpl", firmware="uefi", secure_boot=True)
    stack = EngineStack(provider, name).vm(name, clone_from=source, cpus=2, memory=1024)
    assert stack.item(name).action is Action.CREATE
    stack.apply()
    assert stack.item(name).action is Action.NOOP
    state = observe_one(provider, stack.desired.identity, name).state
    assert (state["firmware"], state["secure_boot"], state["cpus"], state["memory"]) == ("uefi", True, 2, 1024)


@pytest.mark.parametrize("slot", ["scsi0:0", None])
def test_a_clone_of_a_template_with_lsi_and_thick_disks_is_not_replaced_when_disks_leave_bus_and_thin_unset(
        provider, raw_si, name, slot):
    source = template(provider, raw_si, f"{name}-tpl",
                      disks=[{"size": 10, "bus": "lsilogic", "thin": False, "slot": slot}])
    stack = EngineStack(provider, name).vm(name, clone_from=source, disks=[{"size": 10}])
    stack.apply()
    assert stack.item(name).action is Action.NOOP
    [disk] = observe_one(provider, stack.desired.identity, name).state["disks"]
    assert (disk["bus"], disk["thin"], disk["size"]) == ("lsilogic", False, 10)


def test_a_vm_powered_off_by_hand_stays_off_and_keeps_its_tags_when_the_stack_leaves_power_and_tags_unset(
        provider, raw_si, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, tags=["keep"])
    stack.apply()
    wait_for_task(find_vm(raw_si, name).PowerOffVM_Task())
    stack.vm(name, cpus=2, memory=512)
    item = stack.item(name)
    assert [c.change.path for c in item.changes] == ["cpus"]
    stack.apply()
    state = observe_one(provider, stack.desired.identity, name).state
    assert (state["cpus"], state["power"], state["tags"]) == (2, "off", ["keep"])


def test_an_unset_power_is_restored_after_a_change_that_needs_the_vm_off(provider, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512)
    stack.apply()
    stack.vm(name, cpus=1, memory=512, guest_os="other")
    assert stack.item(name).needs_power_off
    stack.apply()
    state = observe_one(provider, stack.desired.identity, name).state
    assert (state["guest_os"], state["power"]) == ("other", "on")


# ---- slots and data safety -------------------------------------------------------------------------------

def two_disk_vm(provider, name: str) -> EngineStack:
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, power="off",
                                           disks=[{"size": 40}, {"size": 100}])
    stack.apply()
    return stack


def test_dropping_the_first_of_two_disks_plans_a_grow_and_a_marked_removal_and_apply_changes_nothing(
        provider, raw_si, name):
    stack = two_disk_vm(provider, name)
    before = [(d.unitNumber, d.capacityInKB, d.backing.fileName) for d in disk_devices(find_vm(raw_si, name))]
    stack.vm(name, cpus=1, memory=512, power="off", disks=[{"size": 100}])
    plan = stack.plan()
    item = next(r for r in plan.resources if r.name == name)
    assert [(c.change.path, c.rule, c.destroys_data) for c in item.changes] == [
        ("disks[scsi0:0].size", Rule.IN_PLACE, False), ("disks[scsi0:1]", Rule.IN_PLACE, True)]
    assert plan.data_loss() == [f"VM {name} on ep: disk scsi0:1 (100 GiB) is no longer declared; removing it "
                                "destroys its data"]
    with pytest.raises(apply.DataLossRefused, match=r"disk scsi0:1 \(100 GiB\)"):
        apply.run(plan, {"ep": provider})
    after = [(d.unitNumber, d.capacityInKB, d.backing.fileName) for d in disk_devices(find_vm(raw_si, name))]
    assert after == before


def test_naming_the_data_disks_slot_keeps_it_and_removes_the_other_once_allowed(provider, raw_si, name):
    stack = two_disk_vm(provider, name)
    data_disk = next(d.backing.fileName for d in disk_devices(find_vm(raw_si, name)) if d.unitNumber == 1)
    stack.vm(name, cpus=1, memory=512, power="off", disks=[{"size": 100, "slot": "scsi0:1"}])
    plan = stack.plan()
    item = next(r for r in plan.resources if r.name == name)
    assert [c.change.path for c in item.changes] == ["disks[scsi0:0]"]
    assert "disk scsi0:0 (40 GiB)" in plan.data_loss()[0]
    stack.apply(plan, allow_data_loss=True)
    [disk] = disk_devices(find_vm(raw_si, name))
    assert (disk.unitNumber, disk.capacityInKB, disk.backing.fileName) == (1, 100 * GiB_IN_KB, data_disk)
    assert stack.item(name).action is Action.NOOP


def test_slots_named_in_the_stack_are_honoured_at_create(provider, raw_si, stack, name):
    spec = vm_spec(disks=[{"size": 4, "slot": "scsi1:3"}, {"size": 2, "bus": "sata", "slot": "sata0:2"},
                          {"size": 1, "bus": "lsilogic", "slot": "scsi2:0"}],
                   nics=[{"network": "DC0_DVPG0", "slot": "ethernet2"}, {"network": "VM Network"}])
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    vm = find_vm(raw_si, name)
    controllers = {d.key: (type(d).__name__.rsplit(".", 1)[-1], d.busNumber) for d in vm.config.hardware.device
                   if isinstance(d, vim.vm.device.VirtualController)}
    placed = sorted((controllers[d.controllerKey], d.unitNumber) for d in disk_devices(vm))
    assert placed == [(("ParaVirtualSCSIController", 1), 3), (("VirtualAHCIController", 0), 2),
                      (("VirtualLsiLogicController", 2), 0)]
    state = observe_one(provider, stack, name).state
    assert [(d["slot"], d["bus"]) for d in state["disks"]] == [
        ("scsi1:3", "paravirtual"), ("scsi2:0", "lsilogic"), ("sata0:2", "sata")]
    assert [(n["slot"], n["network"]) for n in state["nics"]] == [("ethernet0", "VM Network"),
                                                                  ("ethernet2", "DC0_DVPG0")]


def test_a_disk_added_by_an_update_goes_to_its_slot_on_a_new_controller_of_its_bus(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    wanted = vm_spec(disks=[{"size": 8, "datastore": "LocalDS_0"}, {"size": 1, "bus": "nvme", "slot": "nvme1:4"}])
    state = converge(provider, stack, name, wanted).state
    assert [(d["slot"], d["bus"], d["size"]) for d in state["disks"]] == [
        ("scsi0:0", "paravirtual", 8), ("nvme1:4", "nvme", 1)]
    controller = next(d for d in find_vm(raw_si, name).config.hardware.device
                      if isinstance(d, vim.vm.device.VirtualNVMEController))
    assert controller.busNumber == 1


def test_a_nic_is_rewired_and_another_removed_by_slot_not_by_position(provider, stack, name):
    start = vm_spec(nics=[{"network": "DC0_DVPG0"}, {"network": "DC0_DVPG0"}, {"network": "VM Network"}])
    provider.driver("VirtualMachine").create(Owner(stack, name), start)
    wanted = vm_spec(nics=[{"network": "VM Network", "slot": "ethernet2"},
                           {"network": "VM Network", "slot": "ethernet0"}])
    state = converge(provider, stack, name, wanted).state
    assert [(n["slot"], n["network"]) for n in state["nics"]] == [("ethernet0", "VM Network"),
                                                                  ("ethernet2", "VM Network")]


def test_a_slot_vsphere_does_not_have_is_named_at_plan_time(provider):
    spec = vm_spec(disks=[{"size": 1, "slot": "scsi0:7"}, {"size": 1, "bus": "sata", "slot": "scsi1:0"},
                          {"size": 1, "slot": "virtio0"}], nics=[{"network": "DC0_DVPG0", "slot": "net0"}])
    assert provider.driver("VirtualMachine").check(spec, {}) == [
        ("disks[0].slot", "'scsi0:7' is outside what a scsi controller offers on vSphere"),
        ("disks[1].slot", "'scsi1:0' is a scsi slot, but the disk's bus is sata"),
        ("disks[2].slot", "'virtio0' is not a vSphere disk slot (scsi0:1, sata0:0, nvme0:0, ide0:1)"),
        ("nics[0].slot", "'net0' is not a vSphere NIC slot (ethernet0, ethernet1, …)")]


# ---- ids -------------------------------------------------------------------------------------------------

def test_create_returns_the_instance_uuid_and_the_vm_read_back(provider, raw_si, stack, name):
    created = provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(cpus=2))
    assert created.id == find_vm(raw_si, name).config.instanceUuid
    assert (created.outputs["cpus"], created.outputs["node"]) == (2, find_vm(raw_si, name).runtime.host.name)
    assert created.outputs["disks"][0]["slot"] == "scsi0:0"
    assert observe_one(provider, stack, name).id == created.id


def test_observe_ids_reads_vms_by_instance_uuid_in_two_round_trips_whatever_their_number(provider, stack, name,
                                                                                         soap_methods):
    driver = provider.driver("VirtualMachine")
    ids = [driver.create(Owner(stack, f"{name}-{i}"), vm_spec(power="off", tags=["t"])).id for i in range(3)]
    driver.observe_ids(stack, ids, {})  # the custom attribute keys are read once per driver
    soap_methods.clear()
    driver.observe_ids("another-stack", ids[:1], {})
    assert soap_methods.count("RetrievePropertiesEx") == 2  # every VM's properties, then the found ones' guestinfo
    soap_methods.clear()
    found = driver.observe_ids("another-stack", [*ids[:2], "no-such-uuid"], {})
    assert soap_methods.count("RetrievePropertiesEx") == 2
    assert set(soap_methods) == {"CreateContainerView", "RetrievePropertiesEx", "DestroyView"}
    assert {uuid: observed.name for uuid, observed in found.items()} == {ids[0]: f"{name}-0", ids[1]: f"{name}-1"}
    assert all(observed.id == uuid and observed.owner == Owner(stack, observed.name)
               for uuid, observed in found.items())
