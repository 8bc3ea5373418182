"""Out-of-band changes with raw pyvmomi, as an administrator would make them behind our back."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyVim.connect import Connect, Disconnect
from pyVmomi import vim

from virtplane.providers.vsphere.provider import API_VERSION
from virtplane_lab.vcsim import VcsimInstance


@contextmanager
def admin(instance: VcsimInstance) -> Iterator[vim.ServiceInstance]:
    host, port = instance.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=instance.ca_file)
    si = Connect(host=host, port=int(port), user=instance.user, pwd=instance.password, sslContext=context,
                 version=API_VERSION)
    try:
        yield si
    finally:
        Disconnect(si)


def all_vms(si: vim.ServiceInstance) -> list[vim.VirtualMachine]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def find_vm(si: vim.ServiceInstance, name: str) -> vim.VirtualMachine:
    matches = [vm for vm in all_vms(si) if vm.name == name]
    assert len(matches) == 1, f"expected one VM named {name}, found {len(matches)}"
    return matches[0]


def wait(task: vim.Task, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "task did not finish"
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error


def reconfigure(vm: vim.VirtualMachine, spec: vim.vm.ConfigSpec) -> None:
    wait(vm.ReconfigVM_Task(spec=spec))


def remove_first_nic(vm: vim.VirtualMachine) -> None:
    nic = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    change = vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)
    reconfigure(vm, vim.vm.ConfigSpec(deviceChange=[change]))


def create_plain_vm(si: vim.ServiceInstance, name: str, extra_config: dict[str, str] | None = None,
                    annotation: str | None = None, disk_gib: int = 0) -> None:
    """A VM made by hand: no virtplane custom attribute (optionally some extraConfig, notes and a thin disk on an
    LSI Logic controller)."""
    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    cluster = datacenter.hostFolder.childEntity[0]
    datastore = datacenter.datastore[0]
    devices = []
    if disk_gib:
        controller = vim.vm.device.VirtualLsiLogicController(key=1000, busNumber=0, sharedBus="noSharing")
        disk = vim.vm.device.VirtualDisk(
            key=2000, controllerKey=1000, unitNumber=0, capacityInKB=disk_gib * 1024 * 1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True,
                                                                 fileName=f"[{datastore.name}]"))
        devices = [vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
                   vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)]
    spec = vim.vm.ConfigSpec(name=name, numCPUs=1, memoryMB=128, guestId="otherGuest64", annotation=annotation,
                             files=vim.vm.FileInfo(vmPathName=f"[{datastore.name}]"), deviceChange=devices,
                             extraConfig=[vim.option.OptionValue(key=k, value=v)
                                          for k, v in (extra_config or {}).items()])
    wait(datacenter.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool))


def create_golden(si: vim.ServiceInstance, name: str) -> None:
    """A golden image as an administrator prepares one: a VM with a disk, a snapshot (linked clones hang their
    child disks on it), marked as a template."""
    create_plain_vm(si, name)
    vm = find_vm(si, name)
    controller = vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(key=2000, controllerKey=1000, unitNumber=0, capacityInKB=8 * 1024 * 1024,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent",
                                                                                          thinProvisioned=True))
    reconfigure(vm, vim.vm.ConfigSpec(deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
        vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)]))
    wait(vm.CreateSnapshot_Task(name="golden", memory=False, quiesce=False))
    vm.MarkAsTemplate()
