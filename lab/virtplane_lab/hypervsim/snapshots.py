"""Checkpoints: Checkpoint-VM, Get-VMSnapshot (alias Get-VMCheckpoint), Remove-VMSnapshot (alias
Remove-VMCheckpoint).

A checkpoint freezes each of the VM's virtual hard disks: the VM goes on writing to a new differencing disk
(``<disk>_<guid>.avhdx``) whose parent is the disk it had; Get-VHD on it reports VhdType Differencing and its
ParentPath ("Using checkpoints", Hyper-V on Windows docs; Get-VHD reference: ParentPath). Removing a checkpoint
merges its differencing disks into their parents. Remove-VM leaves every disk file, .avhdx included (Remove-VM
reference: it "does not delete any virtual hard drives")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from .engine import REGISTRY, Invocation, cmdlet
from .errors import CmdletError
from .model import Checkpoint, Host, Vhd, Vm
from .params import Param
from .targets import target_vms, wildcard

VM_PARAMS = {"VM": Param("Object"), "VMName": Param("String[]")}


def take_checkpoint(host: Host, vm: Vm, name: str, *, automatic: bool = False) -> Checkpoint:
    checkpoint = Checkpoint(uuid.uuid4(), vm.vm_id, name, vm.checkpoints[-1].id if vm.checkpoints else None,
                            automatic)
    for drive in vm.hard_drives:
        parent = host.vhd(drive.path)
        if parent is None:
            continue
        folder, _, leaf = drive.path.rpartition("\\")
        stem = leaf.rsplit(".", 1)[0]
        child = f"{folder}\\{stem}_{str(checkpoint.id).upper()}.avhdx"
        host.vhds[child.lower()] = Vhd(child, parent.size, "Differencing", parent_path=drive.path)
        checkpoint.drives[child] = drive.path
        drive.path = child
    vm.checkpoints.append(checkpoint)
    return checkpoint


@cmdlet("Checkpoint-VM", {**VM_PARAMS, "SnapshotName": Param("String"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM"})
def checkpoint_vm(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        if vm.checkpoint_type == "Disabled":
            inv.error(CmdletError(f"Checkpoint operation failed for '{vm.name}': checkpoints are disabled for this "
                                  "virtual machine.", error_id="InvalidOperation", target=vm.name))
            continue
        checkpoint = take_checkpoint(inv.host, vm, inv.get("SnapshotName", f"{vm.name} - checkpoint"))
        if inv.get("Passthru"):
            yield checkpoint


@cmdlet("Get-VMSnapshot", {**VM_PARAMS, "Name": Param("String[]")}, pipeline={"Vm": "VM"},
        command_class="Microsoft.HyperV.PowerShell.Commands.GetVMSnapshot")
def get_vm_snapshot(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        for checkpoint in vm.checkpoints:
            if not inv.has("Name") or any(wildcard(n).match(checkpoint.name) for n in inv.get("Name")):
                yield checkpoint


@cmdlet("Remove-VMSnapshot", {**VM_PARAMS, "VMSnapshot": Param("Object"), "Name": Param("String[]"),
                              "IncludeAllChildSnapshots": Param("Switch"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM", "Checkpoint": "VMSnapshot"},
        command_class="Microsoft.HyperV.PowerShell.Commands.RemoveVMSnapshot")
def remove_vm_snapshot(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMSnapshot"):
        checkpoint = inv.get("VMSnapshot")
        vm = inv.host.vm(checkpoint.vm_id)
        pairs = [(vm, checkpoint)] if vm is not None else []
    else:
        pairs = [(vm, c) for vm in target_vms(inv) for c in list(vm.checkpoints)
                 if not inv.has("Name") or any(wildcard(n).match(c.name) for n in inv.get("Name"))]
    for vm, checkpoint in pairs:
        if checkpoint in vm.checkpoints:
            merge(inv.host, vm, checkpoint)
            if inv.get("Passthru"):
                yield checkpoint


# the module's aliases: Get-VMCheckpoint and Remove-VMCheckpoint run the same cmdlets
REGISTRY["get-vmcheckpoint"] = REGISTRY["get-vmsnapshot"]
REGISTRY["remove-vmcheckpoint"] = REGISTRY["remove-vmsnapshot"]


def merge(host: Host, vm: Vm, checkpoint: Checkpoint) -> None:
    """Merge the checkpoint's differencing disks into their parents and forget it."""
    for child, parent in checkpoint.drives.items():
        for drive in vm.hard_drives:
            if drive.path.lower() == child.lower():
                drive.path = parent
        for other in vm.checkpoints:
            for key, value in list(other.drives.items()):
                if value.lower() == child.lower():
                    other.drives[key] = parent
        host.vhds.pop(child.lower(), None)
    for other in vm.checkpoints:
        if other.parent_id == checkpoint.id:
            other.parent_id = checkpoint.parent_id
    vm.checkpoints.remove(checkpoint)
