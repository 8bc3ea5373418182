"""What deleting a Hyper-V VM removes, named in the plan: the VHDs virtplane made for it (named by its VMId) go
with it; a VHD attached from elsewhere is detached with the VM and kept, and the plan says so."""

from __future__ import annotations

import itertools

from tests.integration.hyperv.test_driver import converge, provider, stack
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.plan import Action
from virtplane.providers.hyperv.client import Cmd, i64, pipe, u64

_numbers = itertools.count()
GiB = 1024**3


def test_a_deleted_vm_names_the_vhds_it_destroys_and_keeps_one_attached_from_elsewhere(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"vol{next(_numbers)}"
    converge(stack(project, {"v-1": {"cpus": 1, "memory": 512, "power": "off", "disks": [{"size": 1}]}}), hv)
    [item] = [r for r in build_plan(stack(project, {"v-1": {}}), {"hv": hv}).resources if r.name == "v-1"]
    vm_id = item.observed.id
    shared = "C:\\Shared\\data.vhdx"
    hv.client.run([pipe(Cmd("New-VHD", {"Path": shared, "SizeBytes": u64(GiB), "Dynamic": True})),
                   pipe(Cmd("Get-VM", {"Id": vm_id}), Cmd("Add-VMHardDiskDrive", {
                       "ControllerType": "SCSI", "ControllerNumber": i64(0), "ControllerLocation": i64(1),
                       "Path": shared}))], "attach a VHD by hand")
    plan = build_plan(stack(project, {}), {"hv": hv})
    [gone] = [r for r in plan.resources if r.name == "v-1"]
    assert gone.action is Action.DELETE
    assert [v for v in gone.volumes.destroyed if vm_id.lower() in v.lower() and "scsi0:0" in v]
    assert gone.volumes.kept == [f"scsi0:1 ({shared}, 1 GiB), not made by virtplane for this VM"]
    assert not apply.run(plan, {"hv": hv}, allow_data_loss=True).failed
    vhds = hv.client.run([pipe(Cmd("Get-VHD", {"Path": shared}))], "read the kept VHD").objects
    assert len(vhds) == 1
