"""Behaviours of a real Hyper-V host the simulator models, through unmodified pypsrp: a batch of statements takes
effect statement by statement; error records carry the FQIDs, categories and targets real hosts write; storage is
laid out as New-VM lays it out; names are at most 100 characters; Remove-Item -Path expands wildcards;
checkpoints make differencing disks; Discrete Device Assignment wants the device disabled first and MMIO for its
BARs; host description files describe hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pypsrp.powershell import PSInvocationState
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import unique
from tests.integration.hyperv.test_simulator_vms import by_id
from tests.support.hyperv import prop
from virtplane_lab import hyperv
from virtplane_lab.hypervsim import hostfile

GiB = 1024**3


def new_vm(run: Any, name: str, generation: int = 2) -> Any:
    ps = run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("Generation", generation)
             .add_parameter("NoVHD", True))
    assert not ps.streams.error, [str(e) for e in ps.streams.error]
    return ps.output[0]


def on_vm(run: Any, vm: Any, *commands: tuple[str, dict[str, Any]]) -> Any:
    return by_id(run, prop(vm, "VMId"), *commands)


def vhd(run: Any, path: str) -> None:
    ps = run(lambda ps: ps.add_cmdlet("New-VHD").add_parameter("Path", path)
             .add_parameter("SizeBytes", TaggedValue("U64", GiB)).add_parameter("Dynamic", True))
    assert not ps.streams.error, [str(e) for e in ps.streams.error]


def records(ps: Any) -> list[tuple[str, int, str]]:
    return [(e.fq_error, e.category, str(e.target_object if e.target_object is not None else "")) for e in
            ps.streams.error]


INVALID_ARGUMENT, OBJECT_NOT_FOUND = 5, 13  # System.Management.Automation.ErrorCategory


def test_a_batch_goes_on_after_a_failing_statement_as_powershell_runs_batches(gpu_run):
    """PowerShell.cs (BatchInvocationWorkItem): a terminating error of one statement is recorded and the next
    statement runs; the batch completes. An unknown cmdlet fails its own statement only, when reached."""
    first, second = unique("batch"), unique("batch")
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", first).add_parameter("NoVHD", True)
                 .add_statement().add_cmdlet("Set-Nothing").add_statement()
                 .add_cmdlet("New-VM").add_parameter("Name", second).add_parameter("NoVHD", True))
    assert ps.state == PSInvocationState.COMPLETED
    assert [prop(vm, "Name") for vm in ps.output] == [first, second]
    assert records(ps) == [("CommandNotFoundException", OBJECT_NOT_FOUND, "Set-Nothing")]


def test_error_action_stop_ends_a_batch_and_a_single_statement_fails_on_its_terminating_error(gpu_run):
    name = unique("stop")
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", "no-such-vm")
                 .add_parameter("ErrorAction", "Stop").add_statement()
                 .add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("NoVHD", True))
    assert ps.state == PSInvocationState.FAILED and ps.output == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name))
    assert ps.output == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Set-Nothing"))
    assert ps.state == PSInvocationState.FAILED


def test_a_vm_that_is_not_there_is_invalid_argument_with_the_fqid_and_target_hosts_write(gpu_run):
    """Published output: "Hyper-V was unable to find a virtual machine with name "LABDC"." with CategoryInfo
    InvalidArgument: (LABDC:String) [Get-VM] and FullyQualifiedErrorId
    InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM."""
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", "LABDC"))
    assert records(ps) == [("InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM", INVALID_ARGUMENT,
                            "LABDC")]


def test_generation_1_has_two_ide_controllers_with_the_dvd_at_1_0_and_no_scsi_until_one_is_added(gpu_run):
    """Generation 1: IDE boot, DVD drive at IDE 1:0; SCSI controllers are added (Add-VMScsiController, at most 4)."""
    vm = new_vm(gpu_run, unique("gen1"), generation=1)
    path = f"C:\\Layout\\{prop(vm, 'VMId')}-0.vhdx"
    vhd(gpu_run, path)
    assert on_vm(gpu_run, vm, ("Get-VMScsiController", {})).output == []
    assert len(prop(vm, "DVDDrives")) == 1 and "IDE controller number 1 at location 0" in prop(vm, "DVDDrives")[0]
    ps = on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"ControllerType": "IDE", "ControllerNumber": 1,
                                                     "ControllerLocation": 0, "Path": path}))
    assert records(ps)[0][0].startswith("InvalidParameter,")  # the DVD drive holds IDE 1:0
    ps = on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "Path": path}))
    assert "add one with Add-VMScsiController" in str(ps.streams.error[0])
    for _ in range(4):
        assert not on_vm(gpu_run, vm, ("Add-VMScsiController", {})).streams.error
    assert "at most 4 SCSI controllers" in str(on_vm(gpu_run, vm, ("Add-VMScsiController", {})).streams.error[0])
    ps = on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "ControllerNumber": 3,
                                                     "Path": path, "Passthru": True}))
    assert not ps.streams.error and prop(ps.output[0], "ControllerNumber") == 3


def test_generation_2_has_one_scsi_controller_and_no_ide(gpu_run):
    vm = new_vm(gpu_run, unique("gen2"))
    assert [prop(c, "ControllerNumber") for c in on_vm(gpu_run, vm, ("Get-VMScsiController", {})).output] == [0]
    path = f"C:\\Layout\\{prop(vm, 'VMId')}-1.vhdx"
    vhd(gpu_run, path)
    ps = on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"ControllerType": "SCSI", "ControllerNumber": 1, "Path": path}))
    assert "has no SCSI controller number 1" in str(ps.streams.error[0])
    ps = on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"ControllerType": "IDE", "Path": path}))
    assert str(ps.streams.error[0]) == "Generation 2 virtual machines do not support IDE."


def test_a_vm_name_longer_than_100_characters_is_refused(gpu_run):
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", "n" * 101).add_parameter("NoVHD", True))
    assert ps.output == [] and records(ps) == [("InvalidParameter,Microsoft.HyperV.PowerShell.Commands.NewVM",
                                                INVALID_ARGUMENT, "n" * 101)]
    assert new_vm(gpu_run, "n" * 100) is not None


def test_remove_item_path_expands_wildcards_and_literal_path_does_not(gpu_run, hyperv_gpu):
    """about_Wildcards and Remove-Item: -Path takes wildcards ([1] matches "1", nothing matches nothing, silently);
    -LiteralPath names the file."""
    folder = f"C:\\Wild{unique('x')}"
    for leaf in ("vm[1].vhdx", "vm1.vhdx", "other.vhdx"):
        vhd(gpu_run, f"{folder}\\{leaf}")

    def left() -> set[str]:
        return {v["path"].rsplit("\\", 1)[1] for v in hyperv_gpu.control("state")["vhds"]
                if v["path"].startswith(folder + "\\")}

    ps = gpu_run(lambda ps: ps.add_cmdlet("Remove-Item").add_parameter("Path", f"{folder}\\vm[1].vhdx"))
    assert not ps.streams.error and left() == {"vm[1].vhdx", "other.vhdx"}  # removed vm1.vhdx, not itself
    ps = gpu_run(lambda ps: ps.add_cmdlet("Remove-Item").add_parameter("LiteralPath", f"{folder}\\vm[1].vhdx"))
    assert not ps.streams.error and left() == {"other.vhdx"}
    ps = gpu_run(lambda ps: ps.add_cmdlet("Remove-Item").add_parameter("Path", f"{folder}\\*"))
    assert left() == set()


def test_a_checkpoint_turns_each_disk_into_a_differencing_disk_that_remove_vm_leaves_behind(gpu_run, hyperv_gpu):
    """Checkpoint-VM: the VM writes to <disk>_<id>.avhdx (VhdType Differencing, ParentPath the disk); Resize-VHD
    cannot resize a chain; Remove-VM deletes no disk file."""
    vm = new_vm(gpu_run, unique("ckpt"))
    path = f"C:\\Checkpoints\\{prop(vm, 'VMId')}.vhdx"
    vhd(gpu_run, path)
    on_vm(gpu_run, vm, ("Add-VMHardDiskDrive", {"Path": path}))
    assert not on_vm(gpu_run, vm, ("Checkpoint-VM", {"SnapshotName": "before"})).streams.error
    [leaf] = on_vm(gpu_run, vm, ("Get-VHD", {})).output
    assert (str(prop(leaf, "VhdType")), prop(leaf, "ParentPath")) == ("Differencing", path)
    assert prop(leaf, "Path").endswith(".avhdx")
    ps = gpu_run(lambda ps: ps.add_cmdlet("Resize-VHD").add_parameter("Path", path)
                 .add_parameter("SizeBytes", TaggedValue("U64", 2 * GiB)))
    assert "checkpoint chain" in str(ps.streams.error[0])
    on_vm(gpu_run, vm, ("Remove-VM", {"Force": True}))
    files = {v["path"] for v in hyperv_gpu.control("state")["vhds"]}
    assert {path, prop(leaf, "Path")} <= files


def test_a_host_whose_vms_take_automatic_checkpoints_takes_one_at_each_start(tmp_path):
    """Windows clients enable automatic checkpoints for new VMs; one is taken when such a VM starts."""
    description = yaml_description(tmp_path, automatic_checkpoints=True)
    instance = hyperv.start(tmp_path, host_name="HV-CLIENT", profile=str(description), name="client")
    try:
        from tests.integration.hyperv.conftest import runner

        session = runner(instance)
        run = next(session)
        vm = new_vm(run, "auto")
        assert prop(vm, "AutomaticCheckpointsEnabled") is True
        on_vm(run, vm, ("Start-VM", {}))
        [checkpoint] = on_vm(run, vm, ("Get-VMSnapshot", {})).output
        assert prop(checkpoint, "IsAutomaticCheckpoint") is True
        next(session, None)
    finally:
        instance.stop()


def yaml_description(tmp_path: Path, **changes: Any) -> Path:
    description = hostfile.load("plain")  # parsed, so a bad file would fail here
    data = json.loads(json.dumps({"os": {"caption": description.os_caption, "version": description.os_version},
                                  "versions": {"supported": description.supported_versions,
                                               "default": description.default_version}}))
    data.update(changes)
    path = tmp_path / "host.json"
    path.write_text(json.dumps(data))
    return path


def test_dda_wants_the_device_disabled_before_it_is_dismounted(gpu_run):
    """DDA page: find the device by its location path, Disable-PnpDevice (-Confirm:$false: it would prompt), then
    Dismount-VMHostAssignableDevice."""
    h100 = "PCIROOT(0)#PCI(0400)#PCI(0000)"
    ps = gpu_run(lambda ps: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath", h100)
                 .add_parameter("Force", True))
    assert ps.output == [] and "Disable-PnpDevice" in str(ps.streams.error[0])
    located = gpu_run(lambda ps: ps.add_cmdlet("Get-PnpDevice").add_parameter("Class", "Display")
                      .add_parameter("PresentOnly", True).add_cmdlet("Get-PnpDeviceProperty")
                      .add_parameter("KeyName", "DEVPKEY_Device_LocationPaths")).output
    [device] = [item for item in located if h100 in prop(item, "Data")]
    ps = gpu_run(lambda ps: ps.add_cmdlet("Disable-PnpDevice").add_parameter("InstanceId", prop(device, "InstanceId")))
    assert ps.state == PSInvocationState.FAILED  # without -Confirm:$false it would prompt


def test_a_standalone_host_has_no_cluster_service(gpu_run):
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-Service").add_parameter("Name", "ClusSvc"))
    assert records(ps) == [("NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                            OBJECT_NOT_FOUND, "ClusSvc")]
