"""Virtual machine cmdlets on the simulated host, through unmodified pypsrp: New-VM, Get-VM, Set-VM,
Set-VMProcessor, Get-VMFirmware, Start-VM, Remove-VM."""

from __future__ import annotations

import uuid

from pypsrp.powershell import PSInvocationState
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import unique
from tests.support.hyperv import prop

GIB = 1024**3


def new_vm(run, name, generation=2, version=None, **extra):
    def build(ps):
        cmd = ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("Generation", generation)
        cmd.add_parameter("NoVHD")
        if version:
            cmd.add_parameter("Version", version)
        for key, value in extra.items():
            cmd.add_parameter(key, value)

    ps = run(build)
    assert ps.state == PSInvocationState.COMPLETED, [str(e) for e in ps.streams.error]
    return ps.output[0]


def by_id(run, vm_id, *commands):
    """``Get-VM -Id <vm_id> | <commands>``: each command is (name, {parameter: value})."""

    def build(ps):
        ps.add_cmdlet("Get-VM").add_parameter("Id", vm_id)
        for name, parameters in commands:
            ps.add_cmdlet(name)
            for key, value in parameters.items():
                ps.add_parameter(key, value)

    return run(build)


def test_new_vm_creates_one_network_adapter_by_itself(gpu_run):
    """New-VM: "Hyper-V automatically creates a virtual machine with one virtual network adapter"."""
    vm = new_vm(gpu_run, unique("one-nic"))
    ps = by_id(gpu_run, prop(vm, "VMId"), ("Get-VMNetworkAdapter", {}))
    assert [prop(a, "Name") for a in ps.output] == ["Network Adapter"]
    assert prop(ps.output[0], "SwitchName") is None
    assert prop(vm, "State") is not None and str(prop(vm, "State")) == "Off"
    assert vm.types[0] == "Microsoft.HyperV.PowerShell.VirtualMachine"


def test_names_and_notes_with_shell_syntax_round_trip_exactly(gpu_run):
    """New-VM -Name, Set-VM -Notes/-NewVMName, Get-VM: values travel as typed PSRP arguments, never as code."""
    tricky = "o'neil; $(Remove-VM) `n \"q\" \n second line — Ünïcödé 名前 🚀"
    vm = new_vm(gpu_run, tricky)
    vm_id = prop(vm, "VMId")
    assert prop(vm, "Name") == tricky
    notes = "owner: stack/'x';$env:USERNAME\r\n`backtick` & | > <"
    ps = by_id(gpu_run, vm_id, ("Set-VM", {"Notes": notes, "NewVMName": tricky + "!", "Passthru": True}))
    assert ps.state == PSInvocationState.COMPLETED
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", vm_id))
    assert prop(ps.output[0], "Name") == tricky + "!"
    assert prop(ps.output[0], "Notes") == notes


def test_two_vms_of_one_name_get_distinct_vmids(gpu_run):
    """New-VM / Get-VM: names are not unique on Hyper-V; VMId is the identity."""
    name = unique("twin")
    first, second = new_vm(gpu_run, name), new_vm(gpu_run, name)
    assert isinstance(prop(first, "VMId"), uuid.UUID)
    assert prop(first, "VMId") != prop(second, "VMId")
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name))
    assert {prop(v, "VMId") for v in ps.output} == {prop(first, "VMId"), prop(second, "VMId")}


def test_get_vm_name_takes_wildcards_so_brackets_in_a_name_do_not_match_themselves(gpu_run):
    """Get-VM (-Name accepts wildcard characters): why the driver never looks a VM up by name."""
    name = unique("web[1]")
    new_vm(gpu_run, name)
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name))
    assert ps.output == []


def test_get_vm_with_an_unknown_id_is_a_non_terminating_error(gpu_run):
    """Get-VM -Id: a VM that does not exist is reported in the error stream; the pipeline completes."""
    missing = uuid.uuid4()
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", missing).add_statement().add_cmdlet(
        "Get-VMHost"))
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    assert str(missing) in str(ps.streams.error[0])
    assert ps.output[0].types[0] == "Microsoft.HyperV.PowerShell.VMHost"


def test_four_gib_of_memory_arrives_as_int64(gpu_run):
    """New-VM -MemoryStartupBytes <Int64> and Set-VM -MemoryStartupBytes: sizes above Int32 as TaggedValue I64."""
    vm = new_vm(gpu_run, unique("mem"), MemoryStartupBytes=TaggedValue("I64", 4 * GIB))
    assert prop(vm, "MemoryStartup") == 4 * GIB
    ps = by_id(gpu_run, prop(vm, "VMId"), ("Set-VM", {"MemoryStartupBytes": TaggedValue("I64", 6 * GIB),
                                                       "StaticMemory": True, "Passthru": True}))
    assert prop(ps.output[0], "MemoryStartup") == 6 * GIB
    assert prop(ps.output[0], "DynamicMemoryEnabled") is False


def test_set_vmprocessor_on_a_running_vm_fails_with_the_current_state_wording(gpu_run):
    """Set-VMProcessor: processor settings change only while the VM is off."""
    vm = new_vm(gpu_run, unique("running"))
    vm_id = prop(vm, "VMId")
    assert by_id(gpu_run, vm_id, ("Start-VM", {})).state == PSInvocationState.COMPLETED
    ps = by_id(gpu_run, vm_id, ("Set-VMProcessor", {"Count": 4}))
    assert ps.state == PSInvocationState.COMPLETED
    assert "cannot be performed while the virtual machine is in its current state" in str(ps.streams.error[0])
    by_id(gpu_run, vm_id, ("Stop-VM", {"TurnOff": True}))
    ps = by_id(gpu_run, vm_id, ("Set-VMProcessor", {"Count": 4, "Passthru": True}))
    assert ps.streams.error == [] and prop(ps.output[0], "Count") == 4


def test_nested_virtualization_needs_version_8_on_intel_and_9_3_on_amd(gpu_run, sriov_run):
    """Set-VMProcessor -ExposeVirtualizationExtensions; "Run Hyper-V in a Virtual Machine with Nested
    Virtualization": Intel needs configuration version 8.0 or later, AMD 9.3 or later."""
    intel = new_vm(gpu_run, unique("nested"), version="8.0")
    ps = by_id(gpu_run, prop(intel, "VMId"), ("Set-VMProcessor", {"ExposeVirtualizationExtensions": True}))
    assert ps.streams.error == []
    amd_old = new_vm(sriov_run, unique("nested"), version="9.0")
    ps = by_id(sriov_run, prop(amd_old, "VMId"), ("Set-VMProcessor", {"ExposeVirtualizationExtensions": True}))
    assert "9.3" in str(ps.streams.error[0])
    amd_new = new_vm(sriov_run, unique("nested"), version="9.3")
    ps = by_id(sriov_run, prop(amd_new, "VMId"), ("Set-VMProcessor", {"ExposeVirtualizationExtensions": True}),
               )
    assert ps.streams.error == []


def test_get_vmfirmware_on_generation_1_is_a_non_terminating_error(gpu_run):
    """Get-VMFirmware: generation 2 only; for a generation 1 VM the pipeline completes with the record in
    streams.error and had_errors False (pypsrp 0.9.1)."""
    gen1, gen2 = new_vm(gpu_run, unique("bios"), generation=1), new_vm(gpu_run, unique("uefi"), generation=2)
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", [prop(gen1, "VMId"), prop(gen2, "VMId")])
                 .add_cmdlet("Get-VMFirmware"))
    assert ps.state == PSInvocationState.COMPLETED
    assert ps.had_errors is False
    assert len(ps.streams.error) == 1 and "generation 1" in str(ps.streams.error[0])
    assert [prop(f, "VMId") for f in ps.output] == [prop(gen2, "VMId")]
    assert str(prop(ps.output[0], "SecureBoot")) == "On"


def test_secure_boot_is_switched_off_with_set_vmfirmware(gpu_run):
    """Set-VMFirmware -EnableSecureBoot Off (OnOffState by name)."""
    vm = new_vm(gpu_run, unique("sb"))
    ps = by_id(gpu_run, prop(vm, "VMId"), ("Set-VMFirmware", {"EnableSecureBoot": "Off", "Passthru": True}))
    assert str(prop(ps.output[0], "SecureBoot")) == "Off"
    ps = by_id(gpu_run, prop(vm, "VMId"), ("Set-VMFirmware", {"EnableSecureBoot": "Maybe"}))
    assert ps.state == PSInvocationState.FAILED and "On, Off" in str(ps.streams.error[0])


def test_new_vm_refuses_a_version_the_host_does_not_support(plain_run):
    """New-VM -Version; Get-VMHostSupportedVersion: Windows Server 2022 tops out at configuration version 10.0."""
    ps = plain_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("v12"))
                   .add_parameter("Version", "12.0").add_parameter("NoVHD"))
    assert ps.output == [] and "12.0" in str(ps.streams.error[0])
    ps = plain_run(lambda ps: ps.add_cmdlet("Get-VMHostSupportedVersion").add_parameter("Default"))
    assert [prop(v, "Version") for v in ps.output] == ["10.0"]


def test_new_vm_generation_is_validated(gpu_run):
    """New-VM -Generation: 1 or 2."""
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("g3")).add_parameter(
        "Generation", 3))
    assert ps.state == PSInvocationState.FAILED and "does not belong to the set" in str(ps.streams.error[0])


def test_remove_vm_leaves_its_virtual_hard_disk(gpu_run):
    """Remove-VM: "does not delete any virtual hard drives"; New-VM -NewVHDPath/-NewVHDSizeBytes."""
    path = f"C:\\VMs\\{unique('keep')}.vhdx"
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("rm")).add_parameter("Generation", 2)
                 .add_parameter("NewVHDPath", path).add_parameter("NewVHDSizeBytes", TaggedValue("U64", 8 * GIB)))
    vm_id = prop(ps.output[0], "VMId")
    drives = by_id(gpu_run, vm_id, ("Get-VMHardDiskDrive", {})).output
    assert [(str(prop(d, "ControllerType")), prop(d, "ControllerLocation")) for d in drives] == [("SCSI", 0)]
    assert by_id(gpu_run, vm_id, ("Remove-VM", {"Force": True})).streams.error == []
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VHD").add_parameter("Path", path))
    assert prop(ps.output[0], "Size") == 8 * GIB
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", vm_id))
    assert ps.output == [] and ps.streams.error


def test_select_object_trims_a_vm_to_the_chosen_properties(gpu_run):
    """Select-Object -Property: a smaller reply for hosts with many VMs."""
    vm = new_vm(gpu_run, unique("sel"))
    ps = by_id(gpu_run, prop(vm, "VMId"), ("Select-Object", {"Property": ["VMId", "Name", "Notes"]}))
    assert set(ps.output[0].extended_properties) == {"VMId", "Name", "Notes"}
    assert ps.output[0].types[0] == "Selected.Microsoft.HyperV.PowerShell.VirtualMachine"


def test_set_vm_by_vmname_changes_every_vm_of_that_name(gpu_run):
    """Set-VM -VMName: with two VMs of one name both change, so the driver addresses VMs by Get-VM -Id only."""
    name = unique("shared")
    first, second = new_vm(gpu_run, name), new_vm(gpu_run, name)
    gpu_run(lambda ps: ps.add_cmdlet("Set-VM").add_parameter("VMName", name).add_parameter("Notes", "both"))
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", [prop(first, "VMId"), prop(second, "VMId")]))
    assert [prop(v, "Notes") for v in ps.output] == ["both", "both"]
    by_id(gpu_run, prop(first, "VMId"), ("Set-VM", {"Notes": "only the first"}))
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", prop(second, "VMId")))
    assert prop(ps.output[0], "Notes") == "both"


def test_remove_vm_without_force_cannot_prompt_over_remoting(gpu_run):
    """Remove-VM -Force: without it the cmdlet asks for confirmation, which a remote pipeline cannot answer."""
    vm_id = prop(new_vm(gpu_run, unique("prompt")), "VMId")
    ps = by_id(gpu_run, vm_id, ("Remove-VM", {}))
    assert ps.state == PSInvocationState.FAILED and "does not support user interaction" in str(ps.streams.error[0])
    assert gpu_run(lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Id", vm_id)).output != []


def test_set_vmmemory_switches_to_dynamic_memory_with_a_range(gpu_run):
    """Set-VMMemory -DynamicMemoryEnabled -MinimumBytes -MaximumBytes -StartupBytes; Get-VMMemory."""
    vm_id = prop(new_vm(gpu_run, unique("dyn")), "VMId")
    ps = by_id(gpu_run, vm_id, ("Set-VMMemory", {"DynamicMemoryEnabled": True,
                                                  "MinimumBytes": TaggedValue("I64", 512 * 1024**2),
                                                  "MaximumBytes": TaggedValue("I64", 8 * GIB),
                                                  "StartupBytes": TaggedValue("I64", 2 * GIB)}))
    assert ps.streams.error == []
    memory = by_id(gpu_run, vm_id, ("Get-VMMemory", {})).output[0]
    assert (prop(memory, "DynamicMemoryEnabled"), prop(memory, "Maximum"), prop(memory, "Startup")) == (
        True, 8 * GIB, 2 * GIB)
    ps = by_id(gpu_run, vm_id, ("Set-VMMemory", {"StartupBytes": TaggedValue("I64", 2 * GIB + 1)}))
    assert "multiple of 2 MB" in str(ps.streams.error[0])


def test_new_vm_attaches_an_existing_vhd_at_the_first_ide_slot_of_a_generation_1_vm(gpu_run):
    """New-VM -VHDPath: generation 1 boots from IDE 0:0; a disk attached elsewhere is in use."""
    path = f"C:\\VMs\\{unique('boot')}.vhdx"
    gpu_run(lambda ps: ps.add_cmdlet("New-VHD").add_parameter("Path", path)
            .add_parameter("SizeBytes", TaggedValue("U64", 4 * GIB)))
    vm = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("g1"))
                 .add_parameter("VHDPath", path)).output[0]
    assert prop(vm, "Generation") == 1
    drive = by_id(gpu_run, prop(vm, "VMId"), ("Get-VMHardDiskDrive", {})).output[0]
    assert (str(prop(drive, "ControllerType")), prop(drive, "ControllerNumber"), prop(drive, "Path")) == (
        "IDE", 0, path)
    ps = gpu_run(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", unique("g1")).add_parameter("VHDPath", path))
    assert ps.output == [] and "being used by another process" in str(ps.streams.error[0])
