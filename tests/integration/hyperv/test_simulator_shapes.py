"""The simulator's objects carry exactly the properties Microsoft's Hyper-V module documents for their types
(tests/fixtures/hyperv_documented_types.yaml, with its source), no convenience field more, none fewer; nested
objects arrive as their text, as remoting at serialization depth 1 delivers them. CIM objects carry only
properties their WMI class documents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.powershell import PowerShell
from pypsrp.serializer import TaggedValue

from tests.integration.hyperv.conftest import runner, unique
from tests.integration.hyperv.test_simulator_vms import by_id
from tests.support.hyperv import prop
from virtplane_lab import hyperv

DOCUMENTED: dict[str, list[str]] = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "hyperv_documented_types.yaml").read_text())
NVME = "PCIROOT(0)#PCI(0500)#PCI(0000)"  # the gpu host's NVMe drive, dismounted for DDA (hosts/gpu.yaml)
# Win32_Processor / Win32_OperatingSystem / Win32_PnPEntity properties from their WMI class pages
# (learn.microsoft.com, "Win32_Processor class" …) and the PnpDevice module's Class, FriendlyName, InstanceId;
# PSComputerName is what Get-CimInstance adds to every instance.
CIM_DOCUMENTED = {
    "Win32_Processor": {"AddressWidth", "Architecture", "Availability", "Caption", "CurrentClockSpeed", "DeviceID",
                        "Manufacturer", "MaxClockSpeed", "Name", "NumberOfCores", "NumberOfLogicalProcessors",
                        "ProcessorId", "SocketDesignation", "Status", "ThreadCount", "VirtualizationFirmwareEnabled",
                        "SecondLevelAddressTranslationExtensions", "VMMonitorModeExtensions", "PSComputerName"},
    "Win32_OperatingSystem": {"BuildNumber", "Caption", "CSName", "FreePhysicalMemory", "OperatingSystemSKU",
                              "OSArchitecture", "ProductType", "TotalVisibleMemorySize", "Version", "PSComputerName"},
    "Win32_PnPEntity": {"Caption", "ConfigManagerErrorCode", "Description", "DeviceID", "HardwareID", "Name",
                        "PNPClass", "PNPDeviceID", "Present", "Status", "Class", "FriendlyName", "InstanceId",
                        "PSComputerName"},
}


@pytest.fixture(scope="module")
def objects(hyperv_gpu: hyperv.HypervInstance) -> Iterator[dict[str, Any]]:
    """One object of each type, made on the gpu host with raw pypsrp as an administrator would."""
    name = unique("shapes")
    session = runner(hyperv_gpu)
    run = next(session)

    def one(build: Callable[[PowerShell], Any]) -> list[Any]:
        ps = run(build)
        assert not ps.streams.error, [str(e) for e in ps.streams.error]
        return ps.output

    [vm] = one(lambda ps: ps.add_cmdlet("New-VM").add_parameter("Name", name).add_parameter("Generation", 2)
               .add_parameter("NoVHD", True).add_parameter("Version", "12.0")
               .add_parameter("MemoryStartupBytes", TaggedValue("I64", 1024**3)))
    vm_id = prop(vm, "VMId")
    path = f"C:\\Shapes\\{vm_id}.vhdx"

    def on_vm(*commands: tuple[str, dict[str, Any]]) -> list[Any]:
        ps = by_id(run, vm_id, *commands)
        assert not ps.streams.error, [str(e) for e in ps.streams.error]
        return ps.output

    one(lambda ps: ps.add_cmdlet("New-VHD").add_parameter("Path", path)
        .add_parameter("SizeBytes", TaggedValue("U64", 1024**3)).add_parameter("Dynamic", True))
    on_vm(("Add-VMHardDiskDrive", {"Path": path}))
    on_vm(("Set-VM", {"StaticMemory": True, "AutomaticStopAction": "TurnOff"}))
    on_vm(("Add-VMAssignableDevice", {"LocationPath": NVME}))
    on_vm(("Add-VMGpuPartitionAdapter", {}))
    on_vm(("Checkpoint-VM", {"SnapshotName": "before"}))
    switch = unique("shapes-switch")  # one of its own: the session's host has none unless another test made one
    one(lambda ps: ps.add_cmdlet("New-VMSwitch").add_parameter("Name", switch).add_parameter("SwitchType", "Internal"))
    found = {
        "VirtualMachine": on_vm(),
        "HardDiskDrive": on_vm(("Get-VMHardDiskDrive", {})),
        "VirtualHardDisk": on_vm(("Get-VHD", {})),
        "VMFirmware": on_vm(("Get-VMFirmware", {})),
        "VMProcessor": on_vm(("Get-VMProcessor", {})),
        "VMMemory": on_vm(("Get-VMMemory", {})),
        "VMNetworkAdapter": on_vm(("Get-VMNetworkAdapter", {})),
        "VMNetworkAdapterVlanSetting": on_vm(("Get-VMNetworkAdapter", {}), ("Get-VMNetworkAdapterVlan", {})),
        "VMGpuPartitionAdapter": on_vm(("Get-VMGpuPartitionAdapter", {})),
        "VMAssignedDevice": on_vm(("Get-VMAssignableDevice", {})),
        "VMScsiController": on_vm(("Get-VMScsiController", {})),
        "VMSnapshot": on_vm(("Get-VMSnapshot", {})),
        "VMHost": one(lambda ps: ps.add_cmdlet("Get-VMHost")),
        "VMSwitch": one(lambda ps: ps.add_cmdlet("Get-VMSwitch").add_parameter("Name", switch)),
        "VMHostNumaNode": one(lambda ps: ps.add_cmdlet("Get-VMHostNumaNode")),
        "VMHostSupportedVersion": one(lambda ps: ps.add_cmdlet("Get-VMHostSupportedVersion")),
        "VMHostPartitionableGpu": one(lambda ps: ps.add_cmdlet("Get-VMHostPartitionableGpu")),
        "Win32_Processor": one(lambda ps: ps.add_cmdlet("Get-CimInstance").add_parameter("ClassName",
                                                                                         "Win32_Processor")),
        "Win32_OperatingSystem": one(lambda ps: ps.add_cmdlet("Get-CimInstance").add_parameter(
            "ClassName", "Win32_OperatingSystem")),
        "Win32_PnPEntity": one(lambda ps: ps.add_cmdlet("Get-PnpDevice")),
    }
    on_vm(("Remove-VMAssignableDevice", {"LocationPath": NVME}))
    found["VMHostAssignableDevice"] = one(lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
    yield found
    on_vm(("Remove-VMGpuPartitionAdapter", {}))
    one(lambda ps: ps.add_cmdlet("Remove-VMSwitch").add_parameter("Name", switch).add_parameter("Force", True))
    next(session, None)  # closes the pool


def names(obj: Any) -> set[str]:
    return set(obj.adapted_properties) | set(obj.extended_properties)


@pytest.mark.parametrize("type_name", sorted(DOCUMENTED))
def test_each_object_type_carries_exactly_the_properties_microsoft_documents(objects, type_name):
    [first, *_] = objects[type_name]
    assert first.types[0].rsplit(".", 1)[-1] == type_name
    documented = set(DOCUMENTED[type_name])
    assert sorted(names(first) - documented) == [], "invented"
    assert sorted(documented - names(first)) == [], "missing"


@pytest.mark.parametrize("class_name", sorted(CIM_DOCUMENTED))
def test_cim_objects_carry_only_properties_their_wmi_class_documents(objects, class_name):
    [first, *_] = objects[class_name]
    assert first.types[0].endswith("/" + class_name)
    assert sorted(names(first) - CIM_DOCUMENTED[class_name]) == []


def test_a_vlan_setting_names_its_adapter_only_as_text_and_has_no_vm_fields(objects):
    """Get-VMNetworkAdapterVlan's ParentAdapter, over remoting, is the adapter's text (published output:
    "VMNetworkAdapter (Name = 'VM001_vnic_002', VMName = 'Base_W19_VM001') [VMId = '649efb9b-…']")."""
    [vlan] = objects["VMNetworkAdapterVlanSetting"]
    [vm] = objects["VirtualMachine"]
    assert "VMId" not in names(vlan) and "VMName" not in names(vlan) and "AdapterName" not in names(vlan)
    assert prop(vlan, "ParentAdapter") == (f"VMNetworkAdapter (Name = 'Network Adapter', VMName = "
                                           f"'{prop(vm, 'Name')}') [VMId = '{prop(vm, 'VMId')}']")


def test_the_host_has_no_processor_vendor_property_and_the_cpu_vendor_comes_from_win32_processor(objects):
    """Get-VMHost documents no processor vendor or free memory: Win32_Processor and Get-VMHostNumaNode do."""
    [vmhost] = objects["VMHost"]
    assert not {"ProcessorVendor", "MemoryAvailable", "SupportedVersions", "DefaultVersion"} & names(vmhost)
    assert {prop(p, "Manufacturer") for p in objects["Win32_Processor"]} == {"GenuineIntel"}
    assert sum(prop(n, "MemoryTotal") for n in objects["VMHostNumaNode"]) == 256 * 1024
