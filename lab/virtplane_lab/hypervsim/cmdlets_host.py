"""Host cmdlets: Get-VMHost, Get-VMHostSupportedVersion, Get-VMHostNumaNode, Get-CimInstance (Win32_Processor,
Win32_OperatingSystem), Get-Service (the Cluster service), and Select-Object (trims objects)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from psrpcore.types import PSUInt, PSUInt16, PSUInt64

from .engine import Invocation, cmdlet
from .errors import CmdletError
from .params import Param
from .psobjects import CimView, HostView, NumaNodeView, Selected, ServiceView, VersionView, describe
from .targets import has_wildcard, wildcard


@cmdlet("Get-VMHost", {"ComputerName": Param("String[]")})
def get_vm_host(inv: Invocation) -> Iterator[Any]:
    yield HostView(inv.host)


@cmdlet("Get-VMHostSupportedVersion", {"Default": Param("Switch")})
def get_vm_host_supported_version(inv: Invocation) -> Iterator[Any]:
    hardware = inv.host.hardware
    for version in hardware.supported_versions:
        if not inv.get("Default") or version == hardware.default_version:
            yield VersionView(version, version == hardware.default_version)


@cmdlet("Select-Object", {"Property": Param("String[]")}, pipeline={"*": "InputObject"},
        command_class="Microsoft.PowerShell.Commands.SelectObjectCommand")
def select_object(inv: Invocation) -> Iterator[Any]:
    obj = inv.get("InputObject")
    if obj is None:
        return
    type_names, properties = describe(obj, inv.host)
    chosen: dict[str, Any] = {}
    for given in inv.get("Property", ["*"]):
        pattern = wildcard(given)
        matched = [name for name in properties if pattern.match(name)]
        for name in matched:
            chosen.setdefault(name, properties[name])
        if not matched and not has_wildcard(given):
            chosen.setdefault(given, None)  # Select-Object adds a property the object lacks, as $null
    yield Selected(["Selected." + type_names[0], "System.Management.Automation.PSCustomObject", "System.Object"],
                   chosen)


@cmdlet("Get-VMHostNumaNode", {"Id": Param("Int32")})
def get_vm_host_numa_node(inv: Invocation) -> Iterator[Any]:
    """Get-VMHostNumaNode: one object per NUMA node with MemoryTotal and MemoryAvailable (MB)."""
    for node in range(inv.host.hardware.numa_nodes):
        if not inv.has("Id") or inv.get("Id") == node:
            yield NumaNodeView(inv.host, node)


_CIM_CLASSES = {
    "win32_processor": ["root/cimv2/Win32_Processor", "ROOT/cimv2/CIM_Processor", "ROOT/cimv2/CIM_LogicalDevice",
                        "ROOT/cimv2/CIM_LogicalElement", "ROOT/cimv2/CIM_ManagedSystemElement"],
    "win32_operatingsystem": ["root/cimv2/Win32_OperatingSystem", "ROOT/cimv2/CIM_OperatingSystem",
                              "ROOT/cimv2/CIM_LogicalElement", "ROOT/cimv2/CIM_ManagedSystemElement"],
}


@cmdlet("Get-CimInstance", {"ClassName": Param("String"), "Namespace": Param("String")},
        command_class="Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand")
def get_cim_instance(inv: Invocation) -> Iterator[Any]:
    """Win32_Processor (one instance per socket) and Win32_OperatingSystem, with the properties their WMI class
    documentation lists (learn.microsoft.com, "Win32_Processor class", "Win32_OperatingSystem class"). Once the
    Hyper-V hypervisor runs, the root partition's processor reports VirtualizationFirmwareEnabled,
    SecondLevelAddressTranslationExtensions and VMMonitorModeExtensions as False (microsoft/Windows-Sandbox#15;
    unverified at Microsoft's source)."""
    name = str(inv.get("ClassName", "")).lower()
    hw = inv.host.hardware
    if inv.get("Namespace", "root/cimv2").lower().replace("\\", "/") != "root/cimv2" or name not in _CIM_CLASSES:
        raise CmdletError(f"Invalid class {inv.get('ClassName')!r}", category="MetadataError",
                          error_id="HRESULT 0x80041010", reason="CimException", target=inv.get("ClassName"),
                          terminating=True)
    if name == "win32_processor":
        for socket in range(hw.sockets):
            yield CimView(_CIM_CLASSES[name], {
                "Caption": f"{hw.cpu_vendor}64 Family 6", "DeviceID": f"CPU{socket}",
                "Manufacturer": hw.cpu_manufacturer,
                "Name": hw.cpu_name, "SocketDesignation": f"CPU{socket}", "Architecture": PSUInt16(9),
                "NumberOfCores": PSUInt(hw.cores_per_socket),
                "NumberOfLogicalProcessors": PSUInt(hw.cores_per_socket * hw.threads_per_core),
                "ThreadCount": PSUInt(hw.cores_per_socket * hw.threads_per_core), "MaxClockSpeed": PSUInt(2000),
                "VirtualizationFirmwareEnabled": False, "SecondLevelAddressTranslationExtensions": False,
                "VMMonitorModeExtensions": False, "Status": "OK"})
        return
    total_kb = hw.memory_capacity // 1024
    yield CimView(_CIM_CLASSES[name], {
        "Caption": hw.os_caption, "Version": hw.os_version, "BuildNumber": str(hw.build), "CSName": inv.host.name,
        "OSArchitecture": "64-bit", "ProductType": PSUInt(3), "OperatingSystemSKU": PSUInt(8),
        "TotalVisibleMemorySize": PSUInt64(total_kb),
        "FreePhysicalMemory": PSUInt64(max(0, total_kb - inv.host.memory_in_use() // 1024 - 4 * 1024 * 1024))})


@cmdlet("Get-Service", {"Name": Param("String[]")}, command_class="Microsoft.PowerShell.Commands.GetServiceCommand")
def get_service(inv: Invocation) -> Iterator[Any]:
    """Only the Cluster service matters here: it exists and runs on a Failover Cluster node ("Failover Clustering
    in Windows Server"); elsewhere Get-Service reports it missing."""
    for name in inv.get("Name", []):
        if name.lower() == "clussvc" and inv.host.hardware.cluster_node:
            yield ServiceView("ClusSvc", "Cluster Service", True)
        else:
            inv.error(CmdletError(f"Cannot find any service with service name '{name}'.", category="ObjectNotFound",
                                  error_id="NoServiceFoundForGivenName", reason="ServiceCommandException",
                                  target=name))
