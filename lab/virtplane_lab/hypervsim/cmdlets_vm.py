"""Virtual machine cmdlets: New-VM, Get-VM, Set-VM, Remove-VM, Start-VM, Stop-VM, Get/Set-VMProcessor,
Get/Set-VMMemory, Get/Set-VMFirmware.

New-VM lays out storage as Hyper-V does (model.py): Generation 1 gets two IDE controllers with the DVD drive at
IDE 1:0 and a new VHD at IDE 0:0 (it boots from IDE only); Generation 2 one SCSI controller, a new VHD at SCSI 0:0.
Virtual machine names are at most 100 characters. AutomaticCheckpointsEnabled starts as the host description
says (on by default on Windows clients); an automatic checkpoint is taken when such a VM starts ("What's new in
Hyper-V on Windows 10": automatic checkpoints)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from .engine import Invocation, cmdlet
from .errors import CURRENT_STATE, CmdletError, binding_error, invalid_state, not_found
from .model import DEFAULT_VM_ROOT, MAX_NAME, MB, HardDrive, NetworkAdapter, Vhd, Vm
from .params import Param
from .psobjects import FirmwareView, MemoryView, ProcessorView
from .snapshots import take_checkpoint
from .targets import target_vms, vms_by_name

VM_PARAMS = {"VM": Param("Object"), "VMName": Param("String[]", aliases=("Name",))}
STOP_ACTIONS = ("TurnOff", "Save", "ShutDown")
MAX_PROCESSORS = {1: 64, 2: 240}
NO_UI = ("A command that prompts the user failed because the host program or the command type does not support user "
         "interaction. Add -Force, or the -Confirm:$false option, to the command.")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def require_off(vm: Vm, device: str) -> None:
    if vm.state != "Off":
        raise invalid_state(f"Failed to modify device '{device}'. {CURRENT_STATE} (Virtual machine '{vm.name}', "
                            f"ID {str(vm.vm_id).upper()}, state {vm.state}.)", vm.name)


def check_name(name: str) -> None:
    if not 1 <= len(name) <= MAX_NAME:
        raise CmdletError(f"The virtual machine name '{name[:40]}…' is {len(name)} characters long; virtual machine "
                          f"names can be at most {MAX_NAME} characters.", category="InvalidArgument",
                          error_id="InvalidParameter", target=name)


def check_memory(vm_name: str, value: int, what: str = "startup") -> None:
    if value < 32 * MB or value % (2 * MB):
        raise CmdletError(f"Failed to modify device 'Memory'. Invalid {what} memory amount assigned for "
                          f"'{vm_name}'. The minimum amount of memory you can assign to this virtual machine is "
                          "'32' MB, and the amount must be a multiple of 2 MB.", category="InvalidArgument",
                          error_id="InvalidParameter", target=vm_name)


@cmdlet("New-VM", {
    "Name": Param("String", aliases=("VMName",)), "MemoryStartupBytes": Param("Int64"),
    "Generation": Param("Int16", choices=("1", "2")), "NoVHD": Param("Switch"), "NewVHDPath": Param("String"),
    "NewVHDSizeBytes": Param("UInt64"), "VHDPath": Param("String"), "SwitchName": Param("String"),
    "Path": Param("String"), "Version": Param("Version"), "BootDevice": Param("Enum", choices=(
        "Floppy", "CD", "IDE", "LegacyNetworkAdapter", "NetworkAdapter", "VHD")), "Force": Param("Switch")})
def new_vm(inv: Invocation) -> Iterator[Any]:
    host = inv.host
    name = inv.get("Name", "New Virtual Machine")
    disk_options = [p for p in ("NoVHD", "NewVHDPath", "VHDPath") if inv.has(p)]
    if len(disk_options) > 1 or (inv.has("NewVHDSizeBytes") and not inv.has("NewVHDPath")):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters. One or more "
                            "parameters issued cannot be used together or an insufficient number of parameters "
                            "were provided.", "AmbiguousParameterSet")
    if inv.has("NewVHDPath") and not inv.has("NewVHDSizeBytes"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                            "NewVHDSizeBytes.", "MissingMandatoryParameter")
    generation = inv.get("Generation", 1)
    check_name(name)
    version = inv.get("Version", host.hardware.default_version)
    if version not in host.hardware.supported_versions:
        raise CmdletError(f"Failed to create a new virtual machine. Configuration version {version} is not supported "
                          f"on this host. Supported versions: {', '.join(host.hardware.supported_versions)}.",
                          category="InvalidArgument", error_id="InvalidParameter", target=name)
    memory = inv.get("MemoryStartupBytes", 512 * MB)
    check_memory(name, memory)
    switch = None
    if inv.has("SwitchName"):
        switch = host.switch(inv.get("SwitchName"))
        if switch is None:
            raise not_found(f"Hyper-V was unable to find a virtual switch with name \"{inv.get('SwitchName')}\".",
                            inv.get("SwitchName"))
    disk_path = inv.get("NewVHDPath") or inv.get("VHDPath")
    if inv.has("VHDPath"):
        if host.vhd(disk_path) is None:
            raise not_found(f"Failed to create a new virtual machine. The system cannot find the file specified: "
                            f"'{disk_path}'.", disk_path)
        if host.holder_of(disk_path) is not None:
            raise CmdletError(f"The process cannot access the file '{disk_path}' because it is being used by "
                              "another process.", category="ResourceBusy", error_id="InvalidOperation")
    if inv.has("NewVHDPath"):
        if host.vhd(disk_path) is not None:
            raise CmdletError(f"Failed to create the virtual hard disk. The file exists: '{disk_path}'.",
                              category="ResourceExists", error_id="InvalidParameter", target=disk_path)
        host.vhds[disk_path.lower()] = Vhd(disk_path, inv.get("NewVHDSizeBytes"), "Dynamic")
    vm_id = uuid.uuid4()
    path = (inv.get("Path").rstrip("\\") + "\\" + name) if inv.has("Path") else DEFAULT_VM_ROOT
    vm = Vm(vm_id=vm_id, name=name, generation=generation, version=version, path=path, memory_startup=memory,
            memory_minimum=min(memory, 512 * MB), secure_boot="On" if generation == 2 else "Off",
            scsi_controllers=0 if generation == 1 else 1, automatic_checkpoints=host.hardware.automatic_checkpoints)
    if generation == 1:
        vm.dvd_drives.append(("IDE", 1, 0))
    if disk_path:
        controller = "IDE" if generation == 1 else "SCSI"
        vm.hard_drives.append(HardDrive(vm_id, controller, 0, 0, disk_path,
                                        id=f"Microsoft:{str(vm_id).upper()}\\{controller}\\0\\0\\D"))
    vm.adapters.append(NetworkAdapter(vm_id, "Network Adapter", switch.name if switch else "", host.new_mac(),
                                      id=f"Microsoft:{str(vm_id).upper()}\\{str(uuid.uuid4()).upper()}"))
    host.vms.append(vm)
    yield vm


@cmdlet("Get-VM", {"Name": Param("String[]", aliases=("VMName",)), "Id": Param("Guid[]"),
                   "ComputerName": Param("String[]")})
def get_vm(inv: Invocation) -> Iterator[Any]:
    if inv.has("Id"):
        for vm_id in inv.get("Id"):
            vm = inv.host.vm(vm_id)
            if vm is None:
                inv.error(not_found(f"Hyper-V was unable to find a virtual machine with id \"{vm_id}\".", vm_id))
            else:
                yield vm
        return
    if inv.has("Name"):
        yield from vms_by_name(inv, inv.get("Name"))
        return
    yield from inv.host.vms


@cmdlet("Set-VM", {
    **VM_PARAMS, "Notes": Param("String"), "NewVMName": Param("String"), "ProcessorCount": Param("Int64"),
    "MemoryStartupBytes": Param("Int64"), "StaticMemory": Param("Switch"), "DynamicMemory": Param("Switch"),
    "MemoryMinimumBytes": Param("Int64"), "MemoryMaximumBytes": Param("Int64"),
    "AutomaticStopAction": Param("Enum", choices=STOP_ACTIONS, extra={"enum": "StopAction"}),
    "AutomaticStartAction": Param("Enum", choices=("Nothing", "StartIfRunning", "Start")),
    "GuestControlledCacheTypes": Param("Boolean"), "LowMemoryMappedIoSpace": Param("UInt32"),
    "HighMemoryMappedIoSpace": Param("UInt64"), "AutomaticCheckpointsEnabled": Param("Boolean"),
    "CheckpointType": Param("Enum", choices=("Disabled", "Production", "ProductionOnly", "Standard"),
                            extra={"enum": "Microsoft.HyperV.PowerShell.CheckpointType"}),
    "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def set_vm(inv: Invocation) -> Iterator[Any]:
    if inv.has("StaticMemory") and inv.has("DynamicMemory"):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters.",
                            "AmbiguousParameterSet")
    for vm in target_vms(inv, "VMName"):
        hardware = [p for p in ("ProcessorCount", "MemoryStartupBytes", "StaticMemory", "DynamicMemory",
                                "MemoryMinimumBytes", "MemoryMaximumBytes", "AutomaticStopAction",
                                "GuestControlledCacheTypes", "LowMemoryMappedIoSpace", "HighMemoryMappedIoSpace")
                    if inv.has(p)]
        if hardware and vm.state != "Off":
            inv.error(invalid_state(f"Failed to modify the settings of '{vm.name}' ({', '.join(hardware)}). "
                                    f"{CURRENT_STATE}", vm.name))
            continue
        try:
            if inv.has("NewVMName"):
                check_name(inv.get("NewVMName"))
            if inv.has("ProcessorCount"):
                check_processors(inv, vm, inv.get("ProcessorCount"))
            if inv.has("MemoryStartupBytes"):
                check_memory(vm.name, inv.get("MemoryStartupBytes"))
            dynamic = vm.dynamic_memory
            if inv.has("DynamicMemory"):
                dynamic = inv.get("DynamicMemory")
            if inv.has("StaticMemory"):
                dynamic = not inv.get("StaticMemory")
            if dynamic and vm.assigned_devices:
                raise CmdletError(f"Failed to modify device 'Memory'. Dynamic memory cannot be enabled for '{vm.name}' "
                                  "because a device is assigned to it with Discrete Device Assignment.",
                                  error_id="InvalidState", target=vm.name)
            if inv.get("AutomaticStopAction", "TurnOff") != "TurnOff" and vm.assigned_devices:
                raise CmdletError(f"Failed to modify the settings of '{vm.name}'. A virtual machine with an assigned "
                                  "device must have the automatic stop action TurnOff.", error_id="InvalidState",
                                  target=vm.name)
        except CmdletError as error:
            inv.error(error)
            continue
        vm.dynamic_memory = dynamic
        for param, attribute in (("Notes", "notes"), ("NewVMName", "name"), ("ProcessorCount", "processor_count"),
                                 ("MemoryStartupBytes", "memory_startup"), ("MemoryMinimumBytes", "memory_minimum"),
                                 ("MemoryMaximumBytes", "memory_maximum"),
                                 ("AutomaticStopAction", "automatic_stop_action"),
                                 ("AutomaticStartAction", "automatic_start_action"),
                                 ("GuestControlledCacheTypes", "guest_controlled_cache_types"),
                                 ("LowMemoryMappedIoSpace", "low_mmio"), ("HighMemoryMappedIoSpace", "high_mmio"),
                                 ("AutomaticCheckpointsEnabled", "automatic_checkpoints"),
                                 ("CheckpointType", "checkpoint_type")):
            if inv.has(param):
                setattr(vm, attribute, inv.get(param))
        if inv.get("Passthru"):
            yield vm


def check_processors(inv: Invocation, vm: Vm, count: int) -> None:
    limit = min(inv.host.hardware.logical_processor_count, MAX_PROCESSORS[vm.generation])
    if not 1 <= count <= limit:
        raise CmdletError(f"Failed to modify device 'Processor'. '{vm.name}' cannot have {count} virtual processors: "
                          f"the allowed range on this host is 1 to {limit}.", category="InvalidArgument",
                          error_id="InvalidParameter", target=vm.name)


@cmdlet("Remove-VM", {**VM_PARAMS, "Force": Param("Switch"), "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def remove_vm(inv: Invocation) -> Iterator[Any]:
    if not inv.get("Force"):
        raise CmdletError(NO_UI, category="InvalidOperation", error_id="HostException", reason="HostException",
                          terminating=True)
    for vm in target_vms(inv):
        vm.state = "Off"
        for device in vm.assigned_devices:
            pci = inv.host.pci_device(location_path=device.location_path)
            if pci is not None:
                pci.state = "dismounted"
        inv.host.vms.remove(vm)  # its VHD files stay (documented)
        if inv.get("Passthru"):
            yield vm


@cmdlet("Start-VM", {**VM_PARAMS, "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def start_vm(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        if vm.state == "Running":
            continue
        in_use = sum(v.memory_startup for v in inv.host.vms if v.state == "Running")
        if in_use + vm.memory_startup > inv.host.hardware.memory_capacity:
            inv.error(CmdletError(f"'{vm.name}' failed to start. Not enough memory in the system to start the "
                                  f"virtual machine {vm.name}.", category="ResourceUnavailable",
                                  error_id="OutOfMemory", target=vm.name))
            continue
        if vm.assigned_devices and vm.dynamic_memory:
            inv.error(CmdletError(f"'{vm.name}' failed to start. A virtual machine with an assigned device cannot use "
                                  "dynamic memory.", error_id="InvalidState", target=vm.name))
            continue
        needed = sum(d.mmio_bytes for a in vm.assigned_devices
                     if (d := inv.host.pci_device(location_path=a.location_path)) is not None)
        if needed > vm.high_mmio:
            # DDA: the VM's high MMIO gap must hold the devices' BARs ("Deploy graphics devices by using DDA")
            inv.error(CmdletError(f"'{vm.name}' failed to start. The assigned devices need {needed // MB} MB of "
                                  "memory-mapped I/O space above 4 GB and the virtual machine has "
                                  f"{vm.high_mmio // MB} MB (Set-VM -HighMemoryMappedIoSpace).",
                                  category="ResourceUnavailable", error_id="InvalidState", target=vm.name))
            continue
        if vm.automatic_checkpoints and vm.checkpoint_type != "Disabled":
            if vm.assigned_devices or vm.gpu_partitions:
                inv.error(CmdletError(f"'{vm.name}' failed to start: the automatic checkpoint cannot be taken of a "
                                      "virtual machine with an assigned device or GPU partition (Set-VM "
                                      "-CheckpointType Disabled).", error_id="InvalidState", target=vm.name))
                continue
            take_checkpoint(inv.host, vm, f"Automatic Checkpoint - {vm.name}", automatic=True)
        vm.state = "Running"
        if inv.get("Passthru"):
            yield vm


@cmdlet("Stop-VM", {**VM_PARAMS, "Force": Param("Switch"), "TurnOff": Param("Switch"), "Save": Param("Switch"),
                    "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def stop_vm(inv: Invocation) -> Iterator[Any]:
    if inv.has("TurnOff") and inv.has("Save"):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters.",
                            "AmbiguousParameterSet")
    for vm in target_vms(inv):
        if vm.state == "Off":
            continue
        if inv.get("Save"):
            if vm.assigned_devices:
                inv.error(CmdletError(f"'{vm.name}' could not be saved: a virtual machine with a device assigned "
                                      "through Discrete Device Assignment cannot be saved.", error_id="InvalidState",
                                      target=vm.name))
                continue
            vm.state = "Saved"
        else:
            vm.state = "Off"
        if inv.get("Passthru"):
            yield vm


@cmdlet("Get-VMProcessor", VM_PARAMS, pipeline={"Vm": "VM"})
def get_vm_processor(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        yield ProcessorView(vm)


def _nested_minimum(vendor: str) -> str:
    return "9.3" if vendor == "AMD" else "8.0"


@cmdlet("Set-VMProcessor", {**VM_PARAMS, "Count": Param("Int64"), "ExposeVirtualizationExtensions": Param("Boolean"),
                            "Passthru": Param("Switch")}, pipeline={"Vm": "VM", "ProcessorView": "VM.vm"})
def set_vm_processor(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        try:
            require_off(vm, "Processor")
            if inv.has("Count"):
                check_processors(inv, vm, inv.get("Count"))
            if inv.get("ExposeVirtualizationExtensions"):
                vendor = inv.host.hardware.cpu_vendor
                minimum = _nested_minimum(vendor)
                if _version_tuple(vm.version) < _version_tuple(minimum):
                    raise CmdletError(f"Failed to modify device 'Processor'. Nested virtualization on a host with an "
                                      f"{vendor} processor needs virtual machine configuration version {minimum} or "
                                      f"later; '{vm.name}' has version {vm.version}.", error_id="InvalidParameter",
                                      category="InvalidOperation", target=vm.name)
        except CmdletError as error:
            inv.error(error)
            continue
        if inv.has("Count"):
            vm.processor_count = inv.get("Count")
        if inv.has("ExposeVirtualizationExtensions"):
            vm.expose_virtualization_extensions = inv.get("ExposeVirtualizationExtensions")
        if inv.get("Passthru"):
            yield ProcessorView(vm)


@cmdlet("Get-VMMemory", VM_PARAMS, pipeline={"Vm": "VM"})
def get_vm_memory(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        yield MemoryView(vm)


@cmdlet("Set-VMMemory", {**VM_PARAMS, "StartupBytes": Param("Int64"), "DynamicMemoryEnabled": Param("Boolean"),
                         "MinimumBytes": Param("Int64"), "MaximumBytes": Param("Int64"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM", "MemoryView": "VM.vm"})
def set_vm_memory(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        try:
            require_off(vm, "Memory")
            if inv.has("StartupBytes"):
                check_memory(vm.name, inv.get("StartupBytes"))
            if inv.get("DynamicMemoryEnabled") and vm.assigned_devices:
                raise CmdletError(f"Failed to modify device 'Memory'. Dynamic memory cannot be enabled for "
                                  f"'{vm.name}' because a device is assigned to it with Discrete Device Assignment.",
                                  error_id="InvalidState", target=vm.name)
        except CmdletError as error:
            inv.error(error)
            continue
        for param, attribute in (("StartupBytes", "memory_startup"), ("DynamicMemoryEnabled", "dynamic_memory"),
                                 ("MinimumBytes", "memory_minimum"), ("MaximumBytes", "memory_maximum")):
            if inv.has(param):
                setattr(vm, attribute, inv.get(param))
        if inv.get("Passthru"):
            yield MemoryView(vm)


def _generation_two(inv: Invocation, vm: Vm) -> bool:
    if vm.generation == 2:
        return True
    inv.error(CmdletError(f"The virtual machine '{vm.name}' is a generation 1 virtual machine; firmware settings "
                          "apply to generation 2 virtual machines only (use Get-VMBios for generation 1).",
                          category="InvalidArgument", error_id="InvalidParameter", target=vm.name))
    return False


@cmdlet("Get-VMFirmware", VM_PARAMS, pipeline={"Vm": "VM"})
def get_vm_firmware(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        if _generation_two(inv, vm):
            yield FirmwareView(vm)


@cmdlet("Set-VMFirmware", {**VM_PARAMS, "EnableSecureBoot": Param("Enum", choices=("On", "Off"),
                                                                  extra={"enum": "OnOffState"}),
                           "SecureBootTemplate": Param("Enum", choices=(
                               "MicrosoftWindows", "MicrosoftUEFICertificateAuthority", "OpenSourceShieldedVM")),
                           "Passthru": Param("Switch")}, pipeline={"Vm": "VM", "FirmwareView": "VM.vm"})
def set_vm_firmware(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        if not _generation_two(inv, vm):
            continue
        try:
            require_off(vm, "Firmware")
        except CmdletError as error:
            inv.error(error)
            continue
        if inv.has("EnableSecureBoot"):
            vm.secure_boot = inv.get("EnableSecureBoot")
        if inv.has("SecureBootTemplate"):
            vm.secure_boot_template = inv.get("SecureBootTemplate")
        if inv.get("Passthru"):
            yield FirmwareView(vm)
