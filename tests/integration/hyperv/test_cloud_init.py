"""Cloud-init on Hyper-V: a NoCloud ISO (label cidata) written beside the VM's disks and held by a DVD drive, read back
from the simulated host through unmodified pypsrp: the ISO's files, the drive (Get-VMDvdDrive), drift by digest, a
changed template swapped in while the VM runs, and the ISO deleted with the VM.

Cmdlets as Microsoft's references document them: Get-/Add-/Set-VMDvdDrive (Hyper-V module), Set-Content -Encoding
Byte (Windows PowerShell 5.1)."""

from __future__ import annotations

import itertools
from typing import Any

from tests.integration.hyperv.test_driver import converge, provider, stack
from virtplane import apply
from virtplane.engine import build_plan
from virtplane.plan import Action
from virtplane.providers import nocloud
from virtplane.providers.hyperv.client import Cmd, pipe, vm_by_id
from virtplane.specs import CloudInitSpec

_numbers = itertools.count()
USER = "#cloud-config\nhostname: web\npackages: [nginx]\n"
NETWORK = "version: 2\nethernets:\n  eth0: {dhcp4: true}\n"


def cloud_init(user: str = USER) -> dict[str, Any]:
    return {"user_data": user, "meta_data": "instance-id: web-1\nlocal-hostname: web\n", "network_config": NETWORK}


def dvds(hv: Any, vm_id: str) -> list[Any]:
    return hv.client.run([pipe(vm_by_id(vm_id), Cmd("Get-VMDvdDrive"))], "read the DVD drives").objects


def read_file(hv: Any, path: str) -> bytes | None:
    """A file on the host, read as an administrator would (Get-Content -Encoding Byte -ReadCount 0); None if missing."""
    result = hv.client.run([pipe(Cmd("Get-Content", {"LiteralPath": path, "Encoding": "Byte", "ReadCount": 0}))],
                           "read a file", tolerate=lambda error: "does not exist" in error.message)
    return bytes(result.objects[0].raw) if result.objects else None


def iso_files(hv: Any, path: str) -> dict[str, bytes]:
    """The files of the ISO at ``path`` on the simulated host, as a guest mounting it reads them (label cidata)."""
    data = read_file(hv, path)
    assert data is not None, path
    return nocloud.files(data)


def test_a_new_vm_gets_a_nocloud_iso_in_a_dvd_drive_and_plans_clean(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"ci{next(_numbers)}"
    desired = stack(project, {"ci-1": {"cpus": 1, "memory": 512, "firmware": "uefi", "cloud_init": cloud_init()}})
    converge(desired, hv)
    [item] = [r for r in build_plan(desired, {"hv": hv}).resources if r.name == "ci-1"]
    assert item.action is Action.NOOP
    digest = CloudInitSpec.model_validate(cloud_init()).digest
    assert item.observed.state["cloud_init"] == digest
    [drive] = dvds(hv, item.observed.id)
    assert drive.text("ControllerType") == "SCSI" and drive.text("DvdMediaType") == "ISO"
    path = drive.text("Path")
    assert path.endswith(f"{item.observed.id}-cidata-{digest.removeprefix('sha256:')}.iso")
    files = iso_files(hv, path)
    assert files["user-data"].decode() == USER
    assert b"instance-id: web-1" in files["meta-data"] and files["network-config"].decode().startswith("ethernets")


def test_a_changed_template_swaps_the_iso_while_the_vm_runs_and_the_old_one_is_deleted(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"ci{next(_numbers)}"
    fields = {"cpus": 1, "memory": 512, "firmware": "bios", "power": "on"}
    converge(stack(project, {"ci-2": {**fields, "cloud_init": cloud_init()}}), hv)
    changed = stack(project, {"ci-2": {**fields, "cloud_init": cloud_init(USER + "runcmd: [reboot]\n")}})
    plan = build_plan(changed, {"hv": hv})
    [item] = [r for r in plan.resources if r.name == "ci-2"]
    [planned] = item.changes
    assert planned.change.path == "cloud_init" and planned.reinitializes_guest and not item.needs_power_off
    old_path = next(d.text("Path") for d in dvds(hv, item.observed.id) if d.text("Path"))
    assert not apply.run(plan, {"hv": hv}).failed
    [drive] = [d for d in dvds(hv, item.observed.id) if d.text("Path")]
    assert (drive.text("ControllerType"), drive.number("ControllerNumber"), drive.number("ControllerLocation")) == \
        ("IDE", 1, 0)  # the drive New-VM gave the Generation 1 VM
    assert iso_files(hv, drive.text("Path"))["user-data"].decode().endswith("runcmd: [reboot]\n")
    assert read_file(hv, old_path) is None
    [again] = [r for r in build_plan(changed, {"hv": hv}).resources if r.name == "ci-2"]
    assert again.action is Action.NOOP and again.observed.state["power"] == "on"


def test_destroy_deletes_the_iso_with_the_vm(hyperv_gpu):
    hv = provider(hyperv_gpu)
    project = f"ci{next(_numbers)}"
    converge(stack(project, {"ci-3": {"cpus": 1, "memory": 512, "cloud_init": cloud_init()}}), hv)
    [item] = build_plan(stack(project, {"ci-3": {"cpus": 1, "memory": 512}}), {"hv": hv}).resources[1:]
    [path] = [d.text("Path") for d in dvds(hv, item.observed.id) if d.text("Path")]
    assert read_file(hv, path) is not None
    plan = build_plan(stack(project, {}), {"hv": hv}, destroy=True)
    assert not apply.run(plan, {"hv": hv}).failed
    assert read_file(hv, path) is None
