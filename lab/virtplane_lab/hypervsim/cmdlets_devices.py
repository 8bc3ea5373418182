"""Device cmdlets: Discrete Device Assignment (Get/Dismount/Mount-VMHostAssignableDevice,
Get/Add/Remove-VMAssignableDevice), the PnP view of the host's devices (Get-PnpDevice, Get-PnpDeviceProperty,
Disable-/Enable-PnpDevice) and GPU partitioning (Get/Set-VMHostPartitionableGpu,
Get/Add/Remove-VMGpuPartitionAdapter).

DDA follows Microsoft's steps ("Deploy graphics devices by using Discrete Device Assignment"): find the device's
location path (Get-PnpDeviceProperty DEVPKEY_Device_LocationPaths), disable it (Disable-PnpDevice), dismount it
(Dismount-VMHostAssignableDevice; this host refuses to dismount a device still enabled), assign it
(Add-VMAssignableDevice). The VM's high MMIO space must hold the device's BARs (Start-VM checks, cmdlets_vm.py). A
dismounted device has left the host's PnP tree: Get-PnpDevice still lists it, not present, Status Unknown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from psrpcore.types import PSUInt

from .cmdlets_vm import _version_tuple, require_off
from .engine import Invocation, cmdlet
from .errors import CmdletError, binding_error, not_found
from .model import AssignedDevice, GpuPartition, PartitionableGpu, PciDevice, Vm
from .params import Param
from .psobjects import AssignedDeviceView, CimView, HostDeviceView, HostGpuView
from .targets import target_vms, wildcard

VM_PARAMS = {"VM": Param("Object"), "VMName": Param("String[]")}
GPU_P_MINIMUM_VERSION = "12.0"
NO_MITIGATION = ("The operation failed. The manufacturer of this device has not supplied any directives for securing "
                 "this device while exposing it to a virtual machine. The device should only be exposed to trusted "
                 "virtual machines. This device is not supported when passed through to a virtual machine. Use "
                 "-Force to dismount it anyway.")
SIZES = tuple(f"{kind}Partition{resource}" for resource in ("VRAM", "Encode", "Decode", "Compute")
              for kind in ("Min", "Max", "Optimal"))


def _device(inv: Invocation) -> PciDevice:
    location, instance = inv.get("LocationPath"), inv.get("InstancePath")
    if location is None and instance is None:
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                            "LocationPath.", "MissingMandatoryParameter")
    device = inv.host.pci_device(location_path=location, instance_id=instance)
    if device is None:
        raise not_found(f"The specified device was not found: '{location or instance}'.", location or instance)
    return device


def _holder(inv: Invocation, device: PciDevice) -> Vm | None:
    return next((vm for vm in inv.host.vms for d in vm.assigned_devices
                 if d.location_path.lower() == device.location_path.lower()), None)


def _partitioned(inv: Invocation, location_path: str) -> bool:
    gpus = [g for g in inv.host.hardware.partitionable_gpus if g.location_path.lower() == location_path.lower()]
    return any(p.gpu_name == g.name for g in gpus for vm in inv.host.vms for p in vm.gpu_partitions)


@cmdlet("Get-VMHostAssignableDevice", {"InstancePath": Param("String"), "LocationPath": Param("String")})
def get_vm_host_assignable_device(inv: Invocation) -> Iterator[Any]:
    for device in inv.host.hardware.pci_devices:
        if device.state == "dismounted" and _holder(inv, device) is None:
            if inv.has("LocationPath") and device.location_path.lower() != inv.get("LocationPath").lower():
                continue
            yield HostDeviceView(device)


@cmdlet("Dismount-VMHostAssignableDevice", {"LocationPath": Param("String"), "InstancePath": Param("String"),
                                            "Force": Param("Switch"), "Passthru": Param("Switch")})
def dismount_vm_host_assignable_device(inv: Invocation) -> Iterator[Any]:
    if not inv.host.hardware.iov_support:
        raise CmdletError("The operation failed. The current configuration does not support Discrete Device "
                          f"Assignment: {' '.join(inv.host.hardware.iov_support_reasons)}", error_id="InvalidOperation",
                          category="InvalidOperation")
    device = _device(inv)
    if device.state == "dismounted":
        raise CmdletError(f"The device '{device.location_path}' is already dismounted from the host.",
                          error_id="InvalidOperation", target=device.location_path)
    if device.enabled:
        raise CmdletError(f"The operation failed. The device '{device.location_path}' is still enabled on the host; "
                          "disable it first (Disable-PnpDevice).", error_id="InvalidOperation",
                          target=device.location_path)
    if not device.mitigation_driver and not inv.get("Force"):
        raise CmdletError(NO_MITIGATION, error_id="InvalidOperation", target=device.location_path)
    if _partitioned(inv, device.location_path):
        raise CmdletError(f"The device '{device.location_path}' is partitioned for GPU partitioning and in use; it "
                          "cannot also be assigned.", error_id="InvalidOperation", target=device.location_path)
    device.state = "dismounted"
    if inv.get("Passthru"):
        yield HostDeviceView(device)


@cmdlet("Mount-VMHostAssignableDevice", {"LocationPath": Param("String"), "InstancePath": Param("String"),
                                         "Passthru": Param("Switch")})
def mount_vm_host_assignable_device(inv: Invocation) -> Iterator[Any]:
    device = _device(inv)
    holder = _holder(inv, device)
    if holder is not None:
        raise CmdletError(f"The device '{device.location_path}' is assigned to the virtual machine '{holder.name}'; "
                          "remove it with Remove-VMAssignableDevice first.", error_id="InvalidOperation",
                          target=device.location_path)
    if device.state != "dismounted":
        raise CmdletError(f"The device '{device.location_path}' is not dismounted from the host.",
                          error_id="InvalidOperation", target=device.location_path)
    device.state = "host"
    if inv.get("Passthru"):
        yield HostDeviceView(device)


@cmdlet("Get-VMAssignableDevice", VM_PARAMS, pipeline={"Vm": "VM"})
def get_vm_assignable_device(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        for device in vm.assigned_devices:
            yield AssignedDeviceView(vm, device.instance_id, device.location_path)


@cmdlet("Add-VMAssignableDevice", {**VM_PARAMS, "LocationPath": Param("String"), "InstancePath": Param("String"),
                                   "VirtualFunction": Param("UInt16"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM"})
def add_vm_assignable_device(inv: Invocation) -> Iterator[Any]:
    device = _device(inv)
    for vm in target_vms(inv):
        try:
            if device.state != "dismounted":
                raise CmdletError(f"Failed to add device 'PCI Express Device' to '{vm.name}': the device "
                                  f"'{device.location_path}' is not dismounted from the host "
                                  "(Dismount-VMHostAssignableDevice).", error_id="InvalidOperation", target=vm.name)
            require_off(vm, "PCI Express Device")
            if vm.dynamic_memory:
                raise CmdletError(f"Failed to add device 'PCI Express Device' to '{vm.name}': a virtual machine with "
                                  "an assigned device cannot use dynamic memory. Set static memory first "
                                  "(Set-VM -StaticMemory).", error_id="InvalidState", target=vm.name)
            if vm.automatic_stop_action != "TurnOff":
                raise CmdletError(f"Failed to add device 'PCI Express Device' to '{vm.name}': the automatic stop "
                                  f"action is {vm.automatic_stop_action}; a virtual machine with an assigned device "
                                  "must use TurnOff (Set-VM -AutomaticStopAction TurnOff).", error_id="InvalidState",
                                  target=vm.name)
            holder = _holder(inv, device)
            if holder is not None:
                raise CmdletError(f"Failed to add device 'PCI Express Device' to '{vm.name}': the device "
                                  f"'{device.location_path}' is already assigned to '{holder.name}'.",
                                  category="ResourceBusy", error_id="InvalidOperation", target=vm.name)
        except CmdletError as error:
            inv.error(error)
            continue
        vm.assigned_devices.append(AssignedDevice(vm.vm_id, device.instance_id, device.location_path))
        if inv.get("Passthru"):
            yield AssignedDeviceView(vm, device.instance_id, device.location_path)


@cmdlet("Remove-VMAssignableDevice", {**VM_PARAMS, "LocationPath": Param("String"), "InstancePath": Param("String"),
                                      "VMAssignedDevice": Param("Object"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM", "AssignedDeviceView": "VMAssignedDevice"})
def remove_vm_assignable_device(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMAssignedDevice"):
        view = inv.get("VMAssignedDevice")
        pairs = [(view.vm, d) for d in view.vm.assigned_devices if d.location_path == view.location_path]
    else:
        location, instance = inv.get("LocationPath"), inv.get("InstancePath")
        pairs = [(vm, d) for vm in target_vms(inv) for d in vm.assigned_devices
                 if (location is None and instance is None)
                 or (location and d.location_path.lower() == location.lower())
                 or (instance and d.instance_id.lower() == instance.lower())]
    for vm, device in pairs:
        try:
            require_off(vm, "PCI Express Device")
        except CmdletError as error:
            inv.error(error)
            continue
        vm.assigned_devices.remove(device)
        if inv.get("Passthru"):
            yield AssignedDeviceView(vm, device.instance_id, device.location_path)


def _gpu(inv: Invocation, name: str | None) -> PartitionableGpu:
    gpus = inv.host.hardware.partitionable_gpus
    if not gpus:
        raise CmdletError("No partitionable GPU was found on this host.", category="ObjectNotFound",
                          error_id="InvalidParameter")
    if name is None:
        return gpus[0]
    gpu = next((g for g in gpus if g.name.lower() == name.lower()), None)
    if gpu is None:
        raise not_found(f"The partitionable GPU '{name}' was not found on this host.", name)
    return gpu


@cmdlet("Get-VMHostPartitionableGpu", {"Name": Param("String")})
def get_vm_host_partitionable_gpu(inv: Invocation) -> Iterator[Any]:
    for gpu in inv.host.hardware.partitionable_gpus:
        if not inv.has("Name") or gpu.name.lower() == inv.get("Name").lower():
            yield HostGpuView(gpu, inv.host)


@cmdlet("Set-VMHostPartitionableGpu", {"Name": Param("String"), "PartitionCount": Param("UInt16"),
                                       "Passthru": Param("Switch")})
def set_vm_host_partitionable_gpu(inv: Invocation) -> Iterator[Any]:
    gpu = _gpu(inv, inv.get("Name"))
    if inv.has("PartitionCount"):
        count = inv.get("PartitionCount")
        if count not in gpu.valid_partition_counts:
            raise CmdletError(f"The partition count {count} is not valid for the GPU '{gpu.name}'. Valid partition "
                              f"counts: {', '.join(map(str, gpu.valid_partition_counts))}.",
                              category="InvalidArgument", error_id="InvalidParameter", target=gpu.name)
        if any(p.gpu_name == gpu.name for vm in inv.host.vms for p in vm.gpu_partitions):
            raise CmdletError(f"The partition count of the GPU '{gpu.name}' cannot change while partitions are "
                              "assigned to virtual machines.", error_id="InvalidOperation", target=gpu.name)
        gpu.partition_count = count
    if inv.get("Passthru"):
        yield HostGpuView(gpu, inv.host)


@cmdlet("Get-VMGpuPartitionAdapter", VM_PARAMS, pipeline={"Vm": "VM"})
def get_vm_gpu_partition_adapter(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        yield from vm.gpu_partitions


@cmdlet("Add-VMGpuPartitionAdapter", {**VM_PARAMS, "InstancePath": Param("String"), "Passthru": Param("Switch"),
                                      **{size: Param("UInt64") for size in SIZES}}, pipeline={"Vm": "VM"})
def add_vm_gpu_partition_adapter(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        try:
            require_off(vm, "GPU Partition")
            gpu = _gpu(inv, inv.get("InstancePath"))
            if _version_tuple(vm.version) < _version_tuple(GPU_P_MINIMUM_VERSION):
                raise CmdletError(f"Failed to add device 'GPU Partition' to '{vm.name}': GPU partitioning needs "
                                  f"virtual machine configuration version {GPU_P_MINIMUM_VERSION} or later; the "
                                  f"virtual machine has version {vm.version} (Update-VMVersion).",
                                  error_id="InvalidOperation", target=vm.name)
            if vm.gpu_partitions:
                raise CmdletError(f"Failed to add device 'GPU Partition' to '{vm.name}': a virtual machine can have "
                                  "one GPU partition.", category="ResourceExists", error_id="InvalidOperation",
                                  target=vm.name)
            dda = inv.host.pci_device(location_path=gpu.location_path) if gpu.location_path else None
            if dda is not None and dda.state == "dismounted":
                raise CmdletError(f"Failed to add device 'GPU Partition' to '{vm.name}': the GPU is dismounted for "
                                  "Discrete Device Assignment.", error_id="InvalidOperation", target=vm.name)
            used = sum(1 for v in inv.host.vms for p in v.gpu_partitions if p.gpu_name == gpu.name)
            if used >= gpu.partition_count:
                raise CmdletError(f"Failed to add device 'GPU Partition' to '{vm.name}': all {gpu.partition_count} "
                                  f"partitions of the GPU '{gpu.name}' are assigned.", category="ResourceUnavailable",
                                  error_id="InvalidOperation", target=vm.name)
        except CmdletError as error:
            inv.error(error)
            continue
        partition = GpuPartition(vm.vm_id, gpu.name, f"Microsoft:{str(vm.vm_id).upper()}\\{uuid.uuid4()}",
                                 {size: inv.get(size) for size in SIZES})
        vm.gpu_partitions.append(partition)
        if inv.get("Passthru"):
            yield partition


@cmdlet("Remove-VMGpuPartitionAdapter", {**VM_PARAMS, "VMGpuPartitionAdapter": Param("Object"),
                                         "Passthru": Param("Switch")},
        pipeline={"Vm": "VM", "GpuPartition": "VMGpuPartitionAdapter"})
def remove_vm_gpu_partition_adapter(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMGpuPartitionAdapter"):
        partition = inv.get("VMGpuPartitionAdapter")
        vm = inv.host.vm(partition.vm_id)
        pairs = [(vm, partition)] if vm is not None else []
    else:
        pairs = [(vm, p) for vm in target_vms(inv) for p in vm.gpu_partitions]
    for vm, partition in pairs:
        try:
            require_off(vm, "GPU Partition")
        except CmdletError as error:
            inv.error(error)
            continue
        vm.gpu_partitions.remove(partition)
        if inv.get("Passthru"):
            yield partition


PNP_ENTITY = ["ROOT/cimv2/Win32_PnPEntity", "ROOT/cimv2/CIM_LogicalDevice", "ROOT/cimv2/CIM_LogicalElement",
              "ROOT/cimv2/CIM_ManagedSystemElement"]
LOCATION_PATHS = "DEVPKEY_Device_LocationPaths"


def _pnp(device: PciDevice) -> CimView:
    """A device as Get-PnpDevice shows it (Win32_PnPEntity with the module's Class, FriendlyName and InstanceId):
    disabled is Status Error with problem code 22 (CM_PROB_DISABLED); dismounted is not present, Status Unknown."""
    present = device.state != "dismounted"
    status = "Unknown" if not present else "OK" if device.enabled else "Error"
    return CimView(PNP_ENTITY, {
        "Class": device.pnp_class, "FriendlyName": device.name, "InstanceId": device.instance_id,
        "Status": status, "Present": present, "ConfigManagerErrorCode": PSUInt(0 if device.enabled else 22),
        "Caption": device.name, "Description": device.name, "Name": device.name, "DeviceID": device.instance_id,
        "PNPDeviceID": device.instance_id, "PNPClass": device.pnp_class,
        "HardwareID": [device.instance_id.rsplit("\\", 1)[0]]})


@cmdlet("Get-PnpDevice", {"InstanceId": Param("String[]"), "Class": Param("String[]"), "PresentOnly": Param("Switch")},
        command_class="Get-PnpDevice")
def get_pnp_device(inv: Invocation) -> Iterator[Any]:
    for device in inv.host.hardware.pci_devices:
        if inv.get("PresentOnly") and device.state == "dismounted":
            continue
        if inv.has("Class") and device.pnp_class.lower() not in {c.lower() for c in inv.get("Class")}:
            continue
        if inv.has("InstanceId") and not any(wildcard(i).match(device.instance_id) for i in inv.get("InstanceId")):
            continue
        yield _pnp(device)


@cmdlet("Get-PnpDeviceProperty", {"InstanceId": Param("String[]"), "KeyName": Param("String[]")},
        pipeline={"CimView": "InstanceId.properties"}, command_class="Get-PnpDeviceProperty")
def get_pnp_device_property(inv: Invocation) -> Iterator[Any]:
    ids = inv.get("InstanceId")
    if isinstance(ids, dict):  # bound by property name from a Get-PnpDevice object
        ids = [ids["InstanceId"]]
    for instance in ids or []:
        device = inv.host.pci_device(instance_id=instance)
        if device is None:
            inv.error(CmdletError(f"No matching Win32_PnPEntity objects found by CIM query for instances of the "
                                  "ROOT\\cimv2\\Win32_PnPEntity class on the  CIM server: SELECT * FROM "
                                  f"Win32_PnPEntity WHERE ((DeviceId LIKE '{instance}')).", category="ObjectNotFound",
                                  error_id="CmdletizationQuery_NotFound_InstanceId", target=instance))
            continue
        for key in inv.get("KeyName", [LOCATION_PATHS]):
            if key != LOCATION_PATHS:
                continue
            yield CimView(["ROOT/cimv2/Win32_PnPDevicePropertyStringArray", "ROOT/cimv2/Win32_PnPDeviceProperty"], {
                "InstanceId": device.instance_id, "DeviceID": device.instance_id, "KeyName": LOCATION_PATHS,
                "key": "{a45c254e-df1c-4efd-8020-67d146a850e0} 37", "Type": PSUInt(8210),
                "Data": [device.location_path, "ACPI(_SB_)#ACPI(PCI0)"]})


def _switch_device(inv: Invocation, enabled: bool) -> None:
    if inv.get("Confirm", True) is not False:
        from .cmdlets_vm import NO_UI

        raise CmdletError(NO_UI, error_id="HostException", reason="HostException", terminating=True)
    for instance in inv.get("InstanceId", []):
        device = inv.host.pci_device(instance_id=instance)
        if device is None or device.state == "dismounted":
            inv.error(CmdletError(f"No matching Win32_PnPEntity objects found for '{instance}'.",
                                  category="ObjectNotFound", error_id="CmdletizationQuery_NotFound_InstanceId",
                                  target=instance))
            continue
        device.enabled = enabled


@cmdlet("Disable-PnpDevice", {"InstanceId": Param("String[]"), "Confirm": Param("Switch")},
        command_class="Disable-PnpDevice")
def disable_pnp_device(inv: Invocation) -> Iterator[Any]:
    """ConfirmImpact High: without ``-Confirm:$false`` it would prompt, which a remote session cannot."""
    _switch_device(inv, False)
    return
    yield


@cmdlet("Enable-PnpDevice", {"InstanceId": Param("String[]"), "Confirm": Param("Switch")},
        command_class="Enable-PnpDevice")
def enable_pnp_device(inv: Invocation) -> Iterator[Any]:
    _switch_device(inv, True)
    return
    yield
