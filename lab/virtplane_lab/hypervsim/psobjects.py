"""What each kind of object looks like on the wire: its .NET type names and properties.

Pipeline objects stay Python objects (the model's dataclasses and the small views below) while
commands pass them along; :func:`describe` gives their type names and properties, and
:func:`to_psobject` the psrpcore ``PSObject`` written to the client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psrpcore.types import (
    PSEnumBase,
    PSInt,
    PSInt64,
    PSNoteProperty,
    PSObject,
    PSType,
    PSUInt16,
    PSUInt64,
)

from .model import GpuPartition, HardDrive, Host, NetworkAdapter, PartitionableGpu, PciDevice, Switch, Vhd, Vm

HV = "Microsoft.HyperV.PowerShell."


def _enum(type_name: str, members: dict[str, int]) -> type[PSEnumBase]:
    cls = PSEnumBase(type_name.rsplit(".", 1)[1], members)  # type: ignore[call-arg]
    return PSType([type_name])(cls)


VMState = _enum(HV + "VMState", {"Other": 1, "Running": 2, "Off": 3, "Stopping": 4, "Saved": 6, "Paused": 9,
                                 "Starting": 10})
StopAction = _enum(HV + "StopAction", {"TurnOff": 2, "Save": 3, "ShutDown": 4})
StartAction = _enum(HV + "StartAction", {"Nothing": 2, "StartIfRunning": 3, "Start": 4})
OnOffState = _enum(HV + "OnOffState", {"On": 0, "Off": 1})
SwitchType = _enum(HV + "VMSwitchType", {"Private": 0, "Internal": 1, "External": 2})
ControllerType = _enum(HV + "ControllerType", {"IDE": 0, "SCSI": 1})
VlanMode = _enum(HV + "VMNetworkAdapterVlanMode", {"Untagged": 0, "Access": 1, "Trunk": 2, "Private": 3})
VhdType = _enum("Microsoft.Vhd.PowerShell.VhdType", {"Unknown": 0, "Fixed": 2, "Dynamic": 3, "Differencing": 4})
VhdFormat = _enum("Microsoft.Vhd.PowerShell.VhdFormat", {"Unknown": 0, "VHD": 2, "VHDX": 3})


@dataclass
class ProcessorView:
    vm: Vm


@dataclass
class MemoryView:
    vm: Vm


@dataclass
class FirmwareView:
    vm: Vm


@dataclass
class VlanView:
    adapter: NetworkAdapter
    vm: Vm


@dataclass
class HostView:
    host: Host


@dataclass
class VersionView:
    version: str
    is_default: bool


@dataclass
class HostDeviceView:
    device: PciDevice


@dataclass
class HostGpuView:
    gpu: PartitionableGpu
    host: Host


@dataclass
class AssignedDeviceView:
    vm: Vm
    instance_id: str
    location_path: str


@dataclass
class Selected:
    """Select-Object's output: a PSCustomObject with the chosen properties."""

    type_names: list[str]
    properties: dict[str, Any]


def _vm_ref(vm: Vm) -> dict[str, Any]:
    return {"VMId": vm.vm_id, "VMName": vm.name, "ComputerName": ""}


def describe(obj: Any, host: Host) -> tuple[list[str], dict[str, Any]]:
    """The .NET type names (most specific first) and the properties of ``obj``."""
    if isinstance(obj, Vm):
        return [HV + "VirtualMachine", HV + "VirtualizationObject", "System.Object"], {
            "VMId": obj.vm_id, "Id": obj.vm_id, "Name": obj.name, "VMName": obj.name, "ComputerName": host.name,
            "State": VMState[obj.state], "Generation": PSInt(obj.generation), "Version": obj.version,
            "ProcessorCount": PSInt64(obj.processor_count), "MemoryStartup": PSInt64(obj.memory_startup),
            "MemoryMinimum": PSInt64(obj.memory_minimum), "MemoryMaximum": PSInt64(obj.memory_maximum),
            "DynamicMemoryEnabled": obj.dynamic_memory, "Notes": obj.notes, "Path": obj.path,
            "ConfigurationLocation": obj.path, "AutomaticStopAction": StopAction[obj.automatic_stop_action],
            "AutomaticStartAction": StartAction[obj.automatic_start_action],
            "GuestControlledCacheTypes": obj.guest_controlled_cache_types,
            "LowMemoryMappedIoSpace": PSInt64(obj.low_mmio), "HighMemoryMappedIoSpace": PSUInt64(obj.high_mmio),
            "IsClustered": False, "Uptime": "00:00:00"}
    if isinstance(obj, ProcessorView):
        return [HV + "VMProcessor", "System.Object"], {
            **_vm_ref(obj.vm), "Count": PSInt64(obj.vm.processor_count),
            "ExposeVirtualizationExtensions": obj.vm.expose_virtualization_extensions}
    if isinstance(obj, MemoryView):
        return [HV + "VMMemory", "System.Object"], {
            **_vm_ref(obj.vm), "Startup": PSInt64(obj.vm.memory_startup), "Minimum": PSInt64(obj.vm.memory_minimum),
            "Maximum": PSInt64(obj.vm.memory_maximum), "DynamicMemoryEnabled": obj.vm.dynamic_memory}
    if isinstance(obj, FirmwareView):
        return [HV + "VMFirmware", "System.Object"], {
            **_vm_ref(obj.vm), "SecureBoot": OnOffState[obj.vm.secure_boot],
            "SecureBootTemplate": obj.vm.secure_boot_template}
    if isinstance(obj, HardDrive):
        vm = host.vm(obj.vm_id)
        return [HV + "HardDiskDrive", HV + "Drive", "System.Object"], {
            "VMId": obj.vm_id, "VMName": vm.name if vm else "", "Id": obj.id,
            "ControllerType": ControllerType[obj.controller_type], "ControllerNumber": PSInt(obj.controller_number),
            "ControllerLocation": PSInt(obj.controller_location), "Path": obj.path, "Name": "Hard Drive"}
    if isinstance(obj, Vhd):
        holder = host.holder_of(obj.path)
        return ["Microsoft.Vhd.PowerShell.VirtualHardDisk", "System.Object"], {
            "ComputerName": host.name, "Path": obj.path, "VhdFormat": VhdFormat[obj.vhd_format],
            "VhdType": VhdType[obj.vhd_type], "Size": PSUInt64(obj.size), "ParentPath": obj.parent_path or None,
            "FileSize": PSUInt64(obj.size if obj.vhd_type == "Fixed" else 4 * 1024 * 1024),
            "Attached": holder is not None and holder.state == "Running", "MinimumSize": PSUInt64(3 * 1024 * 1024)}
    if isinstance(obj, NetworkAdapter):
        vm = host.vm(obj.vm_id)
        return [HV + "VMNetworkAdapter", HV + "VMNetworkAdapterBase", "System.Object"], {
            "VMId": obj.vm_id, "VMName": vm.name if vm else "", "Name": obj.name, "Id": obj.id,
            "SwitchName": obj.switch_name or None, "Connected": bool(obj.switch_name),
            "MacAddress": obj.mac_address, "IovWeight": PSInt(obj.iov_weight), "IsManagementOs": False,
            # The guest's addresses, which the Data Exchange (KVP) integration service reports from inside a running
            # guest; the simulated VMs run no guest OS, so none (Get-VMNetworkAdapter, "IPAddresses").
            "IPAddresses": []}
    if isinstance(obj, VlanView):
        return [HV + "VMNetworkAdapterVlanSetting", "System.Object"], {
            **_vm_ref(obj.vm), "ParentAdapter": obj.adapter.name, "AdapterId": obj.adapter.id,
            "OperationMode": VlanMode[obj.adapter.vlan_mode], "AccessVlanId": PSInt(obj.adapter.access_vlan_id)}
    if isinstance(obj, Switch):
        nic = next((n for n in host.hardware.nics if n.name == obj.net_adapter_name), None)
        return [HV + "VMSwitch", "System.Object"], {
            "Name": obj.name, "Id": obj.id, "SwitchType": SwitchType[obj.switch_type], "Notes": obj.notes,
            "IovEnabled": obj.iov_enabled,
            "IovSupport": bool(nic and nic.iov_virtual_function_count and host.hardware.iov_support),
            "IovSupportReasons": _switch_iov_reasons(host, nic.name if nic else None),
            "IovVirtualFunctionCount": PSInt(nic.iov_virtual_function_count if nic and obj.iov_enabled else 0),
            "IovVirtualFunctionsInUse": PSInt(0),
            "NetAdapterInterfaceDescription": nic.interface_description if nic else None,
            "ComputerName": host.name}
    if isinstance(obj, HostView):
        hw = obj.host.hardware
        return [HV + "VMHost", "System.Object"], {
            "ComputerName": obj.host.name, "Name": obj.host.name,
            "LogicalProcessorCount": PSInt(hw.logical_processor_count),
            "MemoryCapacity": PSInt64(hw.memory_capacity), "IovSupport": hw.iov_support,
            "IovSupportReasons": list(hw.iov_support_reasons) or None,
            "SupportedVersions": list(hw.supported_versions), "DefaultVersion": hw.default_version,
            "ProcessorVendor": hw.cpu_vendor, "OperatingSystem": hw.os_name,
            "VirtualMachinePath": "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V",
            "VirtualHardDiskPath": "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"}
    if isinstance(obj, VersionView):
        return [HV + "VMHostSupportedVersion", "System.Object"], {
            "Name": f"Microsoft Windows (configuration version {obj.version})", "Version": obj.version,
            "IsDefault": obj.is_default}
    if isinstance(obj, HostDeviceView):
        return [HV + "VMHostAssignableDevice", HV + "VMAssignableDevice", "System.Object"], {
            "InstanceID": obj.device.instance_id, "LocationPath": obj.device.location_path,
            "Name": obj.device.name, "ComputerName": host.name}
    if isinstance(obj, AssignedDeviceView):
        return [HV + "VMAssignedDevice", HV + "VMAssignableDevice", "System.Object"], {
            **_vm_ref(obj.vm), "InstanceID": obj.instance_id, "LocationPath": obj.location_path}
    if isinstance(obj, HostGpuView):
        gpu = obj.gpu
        used = sum(1 for vm in obj.host.vms for p in vm.gpu_partitions if p.gpu_name == gpu.name)
        props: dict[str, Any] = {
            "Name": gpu.name, "ComputerName": obj.host.name,
            "ValidPartitionCounts": [PSUInt16(c) for c in gpu.valid_partition_counts],
            "PartitionCount": PSUInt16(gpu.partition_count)}
        for resource, total in gpu.total.items():
            per_partition = total // gpu.partition_count
            props[f"Total{resource}"] = PSUInt64(total)
            props[f"Available{resource}"] = PSUInt64(per_partition * (gpu.partition_count - used))
            props[f"MinPartition{resource}"] = PSUInt64(per_partition)
            props[f"MaxPartition{resource}"] = PSUInt64(per_partition)
            props[f"OptimalPartition{resource}"] = PSUInt64(per_partition)
        return [HV + "VMHostPartitionableGpu", "System.Object"], props
    if isinstance(obj, GpuPartition):
        vm = host.vm(obj.vm_id)
        return [HV + "VMGpuPartitionAdapter", "System.Object"], {
            "VMId": obj.vm_id, "VMName": vm.name if vm else "", "Id": obj.id, "Name": "GPU Partition Settings",
            "InstancePath": obj.gpu_name, **{k: PSUInt64(v) if v is not None else None for k, v in obj.sizes.items()}}
    if isinstance(obj, Selected):
        return obj.type_names, obj.properties
    raise AssertionError(f"no description for {type(obj).__name__}")


def _switch_iov_reasons(host: Host, nic_name: str | None) -> list[str] | None:
    if not host.hardware.iov_support:
        return list(host.hardware.iov_support_reasons)
    nic = next((n for n in host.hardware.nics if n.name == nic_name), None)
    if nic is None:
        return ["SR-IOV can be enabled only on an external virtual switch."]
    if not nic.iov_virtual_function_count:
        return [f"The network adapter '{nic.interface_description}' does not support SR-IOV."]
    return None


def to_psobject(obj: Any, host: Host) -> PSObject:
    type_names, properties = describe(obj, host)
    ps = PSObject()
    ps.PSObject.type_names = list(type_names)
    # names are unique here, so append instead of add_note_property's duplicate scan (1,000 VMs: ~2x faster)
    ps.PSObject.extended_properties.extend(PSNoteProperty(name, _wire(value)) for name, value in properties.items())
    return ps


def _wire(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if isinstance(value, bool | str | PSObject) or value is None:
        return value
    if isinstance(value, int):
        return value if type(value) is not int else PSInt64(value)
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value
