"""Networks and devices on the simulated hosts, through unmodified pypsrp: switches (SR-IOV at creation),
adapters and VLANs, Discrete Device Assignment and GPU partitioning; hosts differ in hardware."""

from __future__ import annotations

from pypsrp.powershell import PSInvocationState
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import unique
from tests.integration.hyperv.test_simulator_vms import by_id, new_vm
from tests.support.hyperv import prop

GPU_LOCATION = "PCIROOT(0)#PCI(0300)#PCI(0000)"
MIB = 1024**2


def test_hosts_report_different_hardware(gpu_run, sriov_run, plain_run):
    """Get-VMHost (IovSupport, IovSupportReasons, LogicalProcessorCount, MemoryCapacity)."""
    hosts = {name: run(lambda ps: ps.add_cmdlet("Get-VMHost")).output[0]
             for name, run in (("gpu", gpu_run), ("sriov", sriov_run), ("plain", plain_run))}
    assert prop(hosts["gpu"], "IovSupport") is True and prop(hosts["sriov"], "IovSupport") is True
    assert prop(hosts["plain"], "IovSupport") is False and prop(hosts["plain"], "IovSupportReasons")
    assert prop(hosts["gpu"], "LogicalProcessorCount") != prop(hosts["sriov"], "LogicalProcessorCount")
    assert prop(hosts["gpu"], "MemoryCapacity") == 256 * 1024**3


def test_sr_iov_is_chosen_when_a_switch_is_created_and_never_later(sriov_run):
    """New-VMSwitch -NetAdapterName -EnableIov $true; Set-VMSwitch has no -EnableIov parameter."""
    name = unique("iov")
    ps = sriov_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", name)
                   .add_parameter("NetAdapterName", "SLOT 3").add_parameter("EnableIov", True)
                   .add_parameter("Notes", "owned"))
    assert ps.streams.error == [], [str(e) for e in ps.streams.error]
    switch = ps.output[0]
    assert prop(switch, "IovEnabled") is True and prop(switch, "IovVirtualFunctionCount") == 8
    assert str(prop(switch, "SwitchType")) == "External"
    ps = sriov_run(lambda ps: ps.add_cmdlet("Set-VMSwitch").add_parameter("Name", name)
                   .add_parameter("EnableIov", True))
    assert ps.state == PSInvocationState.FAILED and "'EnableIov'" in str(ps.streams.error[0])
    internal, wrong_nic = unique("iov"), unique("iov")
    ps = sriov_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", internal)
                   .add_parameter("SwitchType", "Internal").add_parameter("EnableIov", True))
    assert ps.output == [] and "external" in str(ps.streams.error[0])
    ps = sriov_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", wrong_nic)
                   .add_parameter("NetAdapterName", "Ethernet").add_parameter("EnableIov", True))
    assert ps.output == [] and "does not support SR-IOV" in str(ps.streams.error[0])
    names = [prop(s, "Name") for s in sriov_run(lambda ps: ps.add_cmdlet("Get-VMSwitch")).output]
    assert name in names and internal not in names and wrong_nic not in names


def test_a_host_without_iommu_cannot_create_an_iov_switch(plain_run):
    """New-VMSwitch -EnableIov: the host's IovSupportReasons are the error."""
    ps = plain_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", unique("iov"))
                   .add_parameter("NetAdapterName", "Ethernet").add_parameter("EnableIov", True))
    assert ps.output == [] and "BIOS" in str(ps.streams.error[0])


def test_adapters_connect_to_a_switch_and_take_an_access_vlan(gpu_run):
    """Connect-VMNetworkAdapter -SwitchName; Set-VMNetworkAdapterVlan -Access -VlanId; Set-VMNetworkAdapter
    -IovWeight; Get-VMNetworkAdapterVlan (OperationMode, AccessVlanId)."""
    switch = unique("sw")
    gpu_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", switch).add_parameter(
        "SwitchType", "Internal"))
    vm_id = prop(new_vm(gpu_run, unique("nic")), "VMId")
    ps = by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {}), ("Connect-VMNetworkAdapter", {"SwitchName": switch}),
               )
    assert ps.streams.error == []
    by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {}), ("Set-VMNetworkAdapterVlan", {"Access": True,
                                                                                     "VlanId": 120}))
    by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {}), ("Set-VMNetworkAdapter", {"IovWeight": 50}))
    ps = by_id(gpu_run, vm_id, ("Get-VMNetworkAdapterVlan", {}))
    assert str(prop(ps.output[0], "OperationMode")) == "Access" and prop(ps.output[0], "AccessVlanId") == 120
    adapter = by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {})).output[0]
    assert prop(adapter, "SwitchName") == switch and prop(adapter, "IovWeight") == 50
    ps = by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {}), ("Set-VMNetworkAdapterVlan", {"Access": True,
                                                                                          "VlanId": 5000}))
    assert ps.state == PSInvocationState.FAILED and "4094" in str(ps.streams.error[0])


GPU_INSTANCE = "PCI\\VEN_10DE&DEV_25B6&SUBSYS_157E10DE&REV_A1\\4&2CD8A6F&0&0018"  # the gpu host's A2


def disable(run):
    """Disable-PnpDevice -InstanceId <the A2> -Confirm:$false (DDA page: disable the device before dismounting it)."""
    ps = run(lambda ps: ps.add_cmdlet("Disable-PnpDevice").add_parameter("InstanceId", GPU_INSTANCE)
             .add_parameter("Confirm", False))
    assert ps.streams.error == [], [str(e) for e in ps.streams.error]


def test_dda_needs_a_dismounted_device_an_off_vm_static_memory_and_turn_off(gpu_run):
    """Add-VMAssignableDevice, Dismount-VMHostAssignableDevice -Force, Set-VM -AutomaticStopAction TurnOff
    -StaticMemory ("Deploy graphics devices using Discrete Device Assignment")."""
    vm_id = prop(new_vm(gpu_run, unique("dda")), "VMId")
    add = ("Add-VMAssignableDevice", {"LocationPath": GPU_LOCATION})
    ps = gpu_run(lambda ps: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath",
                                                                                           GPU_LOCATION))
    assert "disable it first (Disable-PnpDevice)" in str(ps.streams.error[0])
    disable(gpu_run)
    ps = gpu_run(lambda ps: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath",
                                                                                           GPU_LOCATION))
    assert "has not supplied any directives" in str(ps.streams.error[0])
    ps = by_id(gpu_run, vm_id, add)
    assert "not dismounted" in str(ps.streams.error[0])
    ps = gpu_run(lambda ps: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath",
                 GPU_LOCATION).add_parameter("Force"))
    assert ps.streams.error == []
    listed = gpu_run(lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice")).output
    assert GPU_LOCATION in [prop(d, "LocationPath") for d in listed]
    by_id(gpu_run, vm_id, ("Set-VM", {"DynamicMemory": True}))
    assert "dynamic memory" in str(by_id(gpu_run, vm_id, add).streams.error[0])
    by_id(gpu_run, vm_id, ("Set-VM", {"StaticMemory": True}))
    assert "TurnOff" in str(by_id(gpu_run, vm_id, add).streams.error[0])
    by_id(gpu_run, vm_id, ("Set-VM", {"AutomaticStopAction": "TurnOff", "GuestControlledCacheTypes": True,
                                      "LowMemoryMappedIoSpace": TaggedValue("U32", 3 * 1024 * MIB),
                                      "HighMemoryMappedIoSpace": TaggedValue("U64", 33280 * MIB)}))
    by_id(gpu_run, vm_id, ("Start-VM", {}))
    assert "current state" in str(by_id(gpu_run, vm_id, add).streams.error[0])
    by_id(gpu_run, vm_id, ("Stop-VM", {"TurnOff": True}))
    ps = by_id(gpu_run, vm_id, add)
    assert ps.streams.error == []
    assigned = by_id(gpu_run, vm_id, ("Get-VMAssignableDevice", {})).output
    assert [prop(d, "LocationPath") for d in assigned] == [GPU_LOCATION]
    assert GPU_LOCATION not in [prop(d, "LocationPath") for d in
                                gpu_run(lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice")).output]
    ps = gpu_run(lambda ps: ps.add_cmdlet("Mount-VMHostAssignableDevice").add_parameter("LocationPath",
                                                                                        GPU_LOCATION))
    assert "assigned to the virtual machine" in str(ps.streams.error[0])
    by_id(gpu_run, vm_id, ("Remove-VMAssignableDevice", {"LocationPath": GPU_LOCATION}))
    ps = gpu_run(lambda ps: ps.add_cmdlet("Mount-VMHostAssignableDevice").add_parameter("LocationPath",
                                                                                        GPU_LOCATION))
    assert ps.streams.error == []


def test_gpu_partitioning_takes_valid_partition_counts_and_version_12(gpu_run, plain_run):
    """Get-VMHostPartitionableGpu (ValidPartitionCounts), Set-VMHostPartitionableGpu -PartitionCount,
    Add-VMGpuPartitionAdapter ("GPU partitioning": configuration version 12.0 or later, one per VM)."""
    gpu = gpu_run(lambda ps: ps.add_cmdlet("Get-VMHostPartitionableGpu")).output[0]
    assert list(prop(gpu, "ValidPartitionCounts")) == [1, 2, 4, 8]
    name = prop(gpu, "Name")
    ps = gpu_run(lambda ps: ps.add_cmdlet("Set-VMHostPartitionableGpu").add_parameter("Name", name)
                 .add_parameter("PartitionCount", 3))
    assert "Valid partition counts: 1, 2, 4, 8" in str(ps.streams.error[0])
    ps = gpu_run(lambda ps: ps.add_cmdlet("Set-VMHostPartitionableGpu").add_parameter("Name", name)
                 .add_parameter("PartitionCount", 2).add_parameter("Passthru"))
    assert prop(ps.output[0], "PartitionCount") == 2
    old = prop(new_vm(gpu_run, unique("gpup"), version="11.0"), "VMId")
    assert "12.0" in str(by_id(gpu_run, old, ("Add-VMGpuPartitionAdapter", {})).streams.error[0])
    vm_id = prop(new_vm(gpu_run, unique("gpup")), "VMId")
    ps = by_id(gpu_run, vm_id, ("Add-VMGpuPartitionAdapter", {"MinPartitionVRAM": TaggedValue("U64", 80_000_000),
                                                               "Passthru": True}))
    assert ps.streams.error == [] and prop(ps.output[0], "MinPartitionVRAM") == 80_000_000
    assert "one GPU partition" in str(by_id(gpu_run, vm_id, ("Add-VMGpuPartitionAdapter", {})).streams.error[0])
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VMHostPartitionableGpu"))
    assert prop(ps.output[0], "AvailableVRAM") < prop(ps.output[0], "TotalVRAM")
    by_id(gpu_run, vm_id, ("Remove-VMGpuPartitionAdapter", {}))
    assert by_id(gpu_run, vm_id, ("Get-VMGpuPartitionAdapter", {})).output == []
    assert plain_run(lambda ps: ps.add_cmdlet("Get-VMHostPartitionableGpu")).output == []


def test_adapters_are_added_and_removed_and_switch_removal_disconnects_them(gpu_run):
    """Add-VMNetworkAdapter -SwitchName -Name; Remove-VMNetworkAdapter; Set-VMSwitch -Notes; Remove-VMSwitch
    -Force (adapters on it are left disconnected)."""
    switch = unique("sw")
    gpu_run(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", switch).add_parameter(
        "SwitchType", "Private"))
    vm_id = prop(new_vm(gpu_run, unique("nics")), "VMId")
    ps = by_id(gpu_run, vm_id, ("Add-VMNetworkAdapter", {"SwitchName": switch, "Name": "data", "Passthru": True}))
    assert prop(ps.output[0], "SwitchName") == switch
    by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {"Name": "Network Adapter"}), ("Remove-VMNetworkAdapter", {}))
    ps = gpu_run(lambda ps: ps.add_cmdlet("Set-VMSwitch").add_parameter("Name", switch)
                 .add_parameter("Notes", "owner: lab").add_parameter("Passthru"))
    assert prop(ps.output[0], "Notes") == "owner: lab"
    assert gpu_run(lambda ps: ps.add_cmdlet("Remove-VMSwitch").add_parameter("Name", switch)
                   .add_parameter("Force")).streams.error == []
    adapters = by_id(gpu_run, vm_id, ("Get-VMNetworkAdapter", {})).output
    assert [(prop(a, "Name"), prop(a, "SwitchName")) for a in adapters] == [("data", None)]
    ps = gpu_run(lambda ps: ps.add_cmdlet("Get-VMSwitch").add_parameter("Name", switch))
    assert ps.output == [] and switch in str(ps.streams.error[0])


def test_a_vm_holding_an_assigned_device_cannot_be_saved_or_use_dynamic_memory(hyperv_gpu, gpu_run):
    """Stop-VM -Save and Set-VMMemory -DynamicMemoryEnabled ("Plan for deploying devices using Discrete Device
    Assignment": no save/restore, no dynamic memory)."""
    vm_id = prop(new_vm(gpu_run, unique("dda-save")), "VMId")
    by_id(gpu_run, vm_id, ("Set-VM", {"AutomaticStopAction": "TurnOff", "StaticMemory": True,
                                      "HighMemoryMappedIoSpace": TaggedValue("U64", 33280 * MIB)}))
    disable(gpu_run)
    gpu_run(lambda ps: ps.add_cmdlet("Dismount-VMHostAssignableDevice").add_parameter("LocationPath", GPU_LOCATION)
            .add_parameter("Force"))
    try:
        assert by_id(gpu_run, vm_id, ("Add-VMAssignableDevice", {"LocationPath": GPU_LOCATION})).streams.error == []
        ps = by_id(gpu_run, vm_id, ("Set-VMMemory", {"DynamicMemoryEnabled": True}))
        assert "Dynamic memory cannot be enabled" in str(ps.streams.error[0])
        by_id(gpu_run, vm_id, ("Start-VM", {}))
        ps = by_id(gpu_run, vm_id, ("Stop-VM", {"Save": True}))
        assert "cannot be saved" in str(ps.streams.error[0])
        ps = by_id(gpu_run, vm_id, ("Stop-VM", {"TurnOff": True, "Passthru": True}))
        assert str(prop(ps.output[0], "State")) == "Off"
    finally:
        by_id(gpu_run, vm_id, ("Remove-VMAssignableDevice", {}))
        gpu_run(lambda ps: ps.add_cmdlet("Mount-VMHostAssignableDevice").add_parameter("LocationPath",
                                                                                       GPU_LOCATION))
    assert hyperv_gpu.control("state")["hardware"]["pci_devices"][0]["state"] == "host"
