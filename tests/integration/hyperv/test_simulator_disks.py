"""Disk cmdlets on the simulated host, through unmodified pypsrp: New-VHD, Get-VHD, Resize-VHD,
Add/Remove-VMHardDiskDrive, Remove-Item."""

from __future__ import annotations

from pypsrp.powershell import PSInvocationState
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import unique
from tests.integration.hyperv.test_simulator_vms import by_id, new_vm
from tests.support.hyperv import prop

GIB = 1024**3


def new_vhd(run, size=10 * GIB, fixed=False):
    path = f"D:\\Hyper-V\\{unique('disk')}.vhdx"
    ps = run(lambda ps: ps.add_cmdlet("New-VHD").add_parameter("Path", path).add_parameter(
        "SizeBytes", TaggedValue("U64", size)).add_parameter("Fixed" if fixed else "Dynamic"))
    assert ps.streams.error == [], [str(e) for e in ps.streams.error]
    return path, ps.output[0]


def test_new_vhd_returns_a_virtual_hard_disk_with_its_size_and_type(gpu_run):
    """New-VHD -Path -SizeBytes <UInt64> -Fixed: output Microsoft.Vhd.PowerShell.VirtualHardDisk."""
    _, vhd = new_vhd(gpu_run, 5 * GIB, fixed=True)
    assert vhd.types[0] == "Microsoft.Vhd.PowerShell.VirtualHardDisk"
    assert prop(vhd, "Size") == 5 * GIB and str(prop(vhd, "VhdType")) == "Fixed"


def test_resize_vhd_grows_and_refuses_to_shrink(gpu_run):
    """Resize-VHD -SizeBytes: growing works; a smaller size is refused (this host never shrinks)."""
    path, _ = new_vhd(gpu_run, 10 * GIB)
    ps = gpu_run(lambda ps: ps.add_cmdlet("Resize-VHD").add_parameter("Path", path)
                 .add_parameter("SizeBytes", TaggedValue("U64", 20 * GIB)).add_parameter("Passthru"))
    assert prop(ps.output[0], "Size") == 20 * GIB
    ps = gpu_run(lambda ps: ps.add_cmdlet("Resize-VHD").add_parameter("Path", path)
                 .add_parameter("SizeBytes", TaggedValue("U64", 15 * GIB)))
    assert "smaller than the current size" in str(ps.streams.error[0])
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VHD").add_parameter("Path", path))
    assert prop(ps.output[0], "Size") == 20 * GIB


def test_disks_attach_to_free_slots_and_a_disk_in_use_cannot_be_removed(gpu_run):
    """Add-VMHardDiskDrive -ControllerType -ControllerNumber -ControllerLocation -Path; Remove-Item -Path;
    Remove-VMHardDiskDrive; Get-VM | Get-VHD (binds VMId by property name)."""
    vm_id = prop(new_vm(gpu_run, unique("disks")), "VMId")
    first, _ = new_vhd(gpu_run)
    second, _ = new_vhd(gpu_run)
    by_id(gpu_run, vm_id, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "ControllerNumber": 0,
                                                    "ControllerLocation": 0, "Path": first}))
    ps = by_id(gpu_run, vm_id, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "ControllerNumber": 0,
                                                         "ControllerLocation": 0, "Path": second}))
    assert "already in use" in str(ps.streams.error[0])
    by_id(gpu_run, vm_id, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "Path": second}))
    drives = by_id(gpu_run, vm_id, ("Get-VMHardDiskDrive", {})).output
    assert [(prop(d, "ControllerLocation"), prop(d, "Path")) for d in drives] == [(0, first), (1, second)]
    assert {prop(v, "Path") for v in by_id(gpu_run, vm_id, ("Get-VHD", {})).output} == {first, second}
    ps = gpu_run(lambda ps: ps.add_cmdlet("Remove-Item").add_parameter("Path", second))
    assert "being used by another process" in str(ps.streams.error[0])
    ps = by_id(gpu_run, vm_id, ("Get-VMHardDiskDrive", {"ControllerLocation": 1}), ("Remove-VMHardDiskDrive", {}))
    assert ps.streams.error == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Remove-Item").add_parameter("Path", second))
    assert ps.streams.error == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VHD").add_parameter("Path", second))
    assert ps.output == [] and "cannot find the file" in str(ps.streams.error[0])


def test_a_generation_2_vm_has_no_ide_controller(gpu_run):
    """Add-VMHardDiskDrive -ControllerType IDE: generation 2 VMs boot from SCSI only."""
    vm_id = prop(new_vm(gpu_run, unique("ide")), "VMId")
    path, _ = new_vhd(gpu_run)
    ps = by_id(gpu_run, vm_id, ("Add-VMHardDiskDrive", {"ControllerType": "IDE", "Path": path}))
    assert ps.state == PSInvocationState.COMPLETED
    assert str(ps.streams.error[0]) == "Generation 2 virtual machines do not support IDE."
