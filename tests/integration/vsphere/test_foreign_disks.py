"""Deleting or replacing a VM destroys the disks in its own folder only: vSphere's Destroy_Task deletes every disk
attached to a VM, so a disk attached from another VM's folder is detached first and kept, and the plan says which
disks go and which stay. A VM's folder is where its files are (files.vmPathName), whatever its name is now."""

from __future__ import annotations

from pyVmomi import vim

from tests.integration.vsphere.helpers import EngineStack, disk_devices, find_vm
from tests.support.vsphere import create_plain_vm, reconfigure, wait
from virtplane import apply
from virtplane.plan import Action


def attach_disk_of(si, donor: str, vm_name: str) -> str:
    """Attach the donor VM's first disk file to ``vm_name`` as its next SCSI disk, as an administrator would."""
    [donor_disk] = disk_devices(find_vm(si, donor))
    file_name = donor_disk.backing.fileName
    vm = find_vm(si, vm_name)
    controller = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualSCSIController))
    units = {d.unitNumber for d in vm.config.hardware.device if d.controllerKey == controller.key}
    disk = vim.vm.device.VirtualDisk(
        key=-1, controllerKey=controller.key, unitNumber=min(set(range(16)) - units - {7}),
        capacityInKB=donor_disk.capacityInKB,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="persistent"))
    reconfigure(vm, vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)]))
    return file_name


def test_a_deleted_vm_keeps_a_disk_attached_from_another_vms_folder_and_the_plan_says_so(
        provider, raw_si, name, soap_methods):
    create_plain_vm(raw_si, f"{name}-donor", disk_gib=2)
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, power="off", disks=[{"size": 4}])
    stack.apply()
    foreign = attach_disk_of(raw_si, f"{name}-donor", name)
    stack.desired.resources.clear()
    [item] = [r for r in stack.plan().resources if r.name == name]
    assert item.action is Action.DELETE
    assert [v for v in item.volumes.kept if foreign in v] and not [v for v in item.volumes.destroyed if foreign in v]
    assert [v for v in item.volumes.destroyed if f"{name}/" in v]
    assert f"it keeps scsi0:1 ({foreign}" in " ".join(stack.plan().data_loss())
    apply.run(stack.plan(), {"ep": provider}, allow_data_loss=True)
    detach = soap_methods.index("ReconfigVM_Task", soap_methods.index("PowerOffVM_Task")
                                if "PowerOffVM_Task" in soap_methods else 0)
    assert detach < soap_methods.index("Destroy_Task")
    [change] = soap_methods.args["ReconfigVM_Task"][-1].deviceChange
    assert change.operation == "remove" and not change.fileOperation and change.device.backing.fileName == foreign
    assert [d.backing.fileName for d in disk_devices(find_vm(raw_si, f"{name}-donor"))] == [foreign]


def test_a_renamed_vms_own_disks_are_still_its_own(provider, raw_si, name):
    stack = EngineStack(provider, name).vm(name, cpus=1, memory=512, power="off", disks=[{"size": 4}])
    stack.apply()
    vm = find_vm(raw_si, name)
    own = disk_devices(vm)[0].backing.fileName
    wait(vm.Rename_Task(newName=f"{name}-renamed"))
    stack.desired.resources.clear()
    [item] = [r for r in stack.plan().resources if r.name == name]
    assert item.volumes.kept == [] and [v for v in item.volumes.destroyed if own in v]
