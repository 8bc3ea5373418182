"""Issue 16, item 18, through the CLI: a vSphere disk grown out of band (20 -> 30 GiB) no longer hides every
other difference. drift reports all of it (exit 2) with the impossible shrink marked ``[cannot apply: …]``,
plan shows it the same way, and apply refuses only that VM, naming the field with its slot, and applies the
other VM's change."""

from __future__ import annotations

import json

from pyVmomi import vim

from tests.support import vsphere
from tests.support.cli import lab_env, virtplane, write_stack

STACK = """import pulumi
import virtplane
ep = virtplane.Endpoint('ep', kind='vsphere')
on = pulumi.ResourceOptions(provider=ep)
virtplane.VirtualMachine('grown', cpus=1, memory=512, disks=[virtplane.Disk(20)], opts=on)
virtplane.VirtualMachine('other', cpus=1, memory=512, opts=on)
"""


def grow_first_disk(instance, name: str, gib: int) -> None:
    with vsphere.admin(instance) as si:
        vm = vsphere.find_vm(si, name)
        disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        disk.capacityInKB = gib * 1024 * 1024
        disk.capacityInBytes = gib * 1024**3
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
        vsphere.reconfigure(vm, vim.vm.ConfigSpec(deviceChange=[change], memoryMB=1024))


def set_memory(instance, name: str, mib: int) -> None:
    with vsphere.admin(instance) as si:
        vsphere.reconfigure(vsphere.find_vm(si, name), vim.vm.ConfigSpec(memoryMB=mib))


def test_a_disk_grown_out_of_band_is_marked_cannot_apply_and_hides_no_other_drift(fresh_vcsim, tmp_path):
    env = lab_env(fresh_vcsim)
    stack = write_stack(tmp_path / "s", STACK)
    assert virtplane("apply", str(stack), "--yes", env=env).returncode == 0
    grow_first_disk(fresh_vcsim, "grown", 30)  # and its memory to 1 GiB
    set_memory(fresh_vcsim, "other", 2048)

    drift = virtplane("drift", str(stack), env=env)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "disks[scsi0:0].size: 30 → 20 [cannot apply: shrinking a disk from 30 GiB to 20 GiB is not " \
           "possible on vSphere" in drift.stdout
    assert "memory: 1024 → 512" in drift.stdout and "memory: 2048 → 512" in drift.stdout

    plan = json.loads(virtplane("plan", str(stack), "--json", env=env).stdout)
    grown = next(r for r in plan["resources"] if r["name"] == "grown")
    [size] = [c for c in grown["changes"] if c["field"] == "disks[scsi0:0].size"]
    assert size["apply"] == "refused" and "shrinking" in size["cannot_apply"]

    applied = virtplane("apply", str(stack), "--yes", env=env)
    assert applied.returncode == 1
    assert "VirtualMachine 'grown': field 'disks[scsi0:0].size': cannot apply: shrinking" in applied.stdout
    assert "1 succeeded, 1 failed" in applied.stdout
    with vsphere.admin(fresh_vcsim) as si:
        assert vsphere.find_vm(si, "other").config.hardware.memoryMB == 512
        assert vsphere.find_vm(si, "grown").config.hardware.memoryMB == 1024  # refused as a whole
