"""Disk cmdlets: New-VHD (fixed, dynamic, differencing), Get-VHD, Convert-VHD, Resize-VHD (grow only), Remove-Item
(VHDs, and the ISOs cmdlets_dvd writes), Get/Add/Remove-VMHardDiskDrive and Get/Add-VMScsiController.

Controllers are the VM's own (model.py): IDE 0 and 1 on Generation 1 only (IDE 1:0 holds the DVD drive), and as
many SCSI controllers as the VM has (New-VM gives Generation 2 one; Add-VMScsiController adds up to four, with the
VM off). A drive on a controller the VM lacks is refused.

A differencing disk (``New-VHD -Differencing -ParentPath``) records only the blocks that differ from its parent
and has the parent's size unless ``-SizeBytes`` says more; its parent must exist and be a VHD of the same format
(Microsoft Learn, "New-VHD": -Differencing, -ParentPath). ``Convert-VHD -Path -DestinationPath`` writes a new,
independent copy of a disk, its type from ``-VHDType``; the source must not be attached to a running VM and the
destination must not exist ("Convert-VHD").

Remove-Item follows the FileSystem provider: ``-Path`` is a wildcard pattern (``*``, ``?``, ``[…]``) matched
against the files there, so a name holding brackets matches nothing and nothing is removed, without an error
(about_Wildcards; Remove-Item reference: "-LiteralPath … no characters are interpreted as wildcards");
``-LiteralPath`` names one file exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .engine import Invocation, cmdlet
from .errors import CURRENT_STATE, CmdletError, binding_error, invalid_state, not_found
from .model import IDE_CONTROLLERS, IDE_LOCATIONS, MAX_SCSI_CONTROLLERS, SCSI_LOCATIONS, HardDrive, Vhd, Vm
from .params import Param
from .psobjects import ScsiControllerView
from .targets import has_wildcard, target_vms, wildcard

IN_USE = "The process cannot access the file '{}' because it is being used by another process."


def _missing_file(path: str) -> CmdletError:
    return not_found(f"The system cannot find the file specified: '{path}'.", path)


@cmdlet("New-VHD", {"Path": Param("String[]"), "SizeBytes": Param("UInt64"), "Dynamic": Param("Switch"),
                    "Fixed": Param("Switch"), "BlockSizeBytes": Param("UInt32"), "Differencing": Param("Switch"),
                    "ParentPath": Param("String")},
        command_class="Microsoft.Vhd.PowerShell.Cmdlets.NewVhd")
def new_vhd(inv: Invocation) -> Iterator[Any]:
    if sum(bool(inv.get(kind)) for kind in ("Dynamic", "Fixed", "Differencing")) > 1:
        raise binding_error("Parameter set cannot be resolved using the specified named parameters.",
                            "AmbiguousParameterSet")
    if inv.get("Differencing") or inv.has("ParentPath"):
        yield from _new_differencing(inv)
        return
    if not inv.has("Path") or not inv.has("SizeBytes"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                            "Path SizeBytes.", "MissingMandatoryParameter")
    size = inv.get("SizeBytes")
    for path in inv.get("Path"):
        if not path.lower().endswith((".vhd", ".vhdx")):
            inv.error(CmdletError(f"Failed to create the virtual hard disk '{path}': the file name extension must be "
                                  ".vhd or .vhdx.", category="InvalidArgument", error_id="InvalidParameter",
                                  target=path))
            continue
        if inv.host.vhd(path) is not None:
            inv.error(CmdletError(f"Failed to create the virtual hard disk. The file exists: '{path}'.",
                                  category="ResourceExists", error_id="InvalidParameter", target=path))
            continue
        if size < 3 * 1024 * 1024 or size % 512:
            inv.error(CmdletError(f"Failed to create the virtual hard disk '{path}': the size {size} is invalid; it "
                                  "must be at least 3 MB and a multiple of 512 bytes.", category="InvalidArgument",
                                  error_id="InvalidParameter", target=path))
            continue
        vhd = Vhd(path, size, "Fixed" if inv.get("Fixed") else "Dynamic")
        inv.host.vhds[path.lower()] = vhd
        yield vhd


def _new_differencing(inv: Invocation) -> Iterator[Any]:
    if not inv.get("Differencing") or not inv.has("ParentPath") or not inv.has("Path"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                            + " ".join(p for p in ("Path", "ParentPath", "Differencing")
                                       if not (inv.get(p) if p == "Differencing" else inv.has(p))) + ".",
                            "MissingMandatoryParameter")
    parent_path = inv.get("ParentPath")
    parent = inv.host.vhd(parent_path)
    if parent is None:
        raise _missing_file(parent_path)
    for path in inv.get("Path"):
        if inv.host.vhd(path) is not None:
            inv.error(CmdletError(f"Failed to create the virtual hard disk. The file exists: '{path}'.",
                                  category="ResourceExists", error_id="InvalidParameter", target=path))
            continue
        vhd = Vhd(path, max(parent.size, inv.get("SizeBytes", 0)), "Differencing", parent.path)
        if vhd.vhd_format != parent.vhd_format:
            inv.error(CmdletError(f"Failed to create the virtual hard disk '{path}': a differencing disk must have "
                                  f"the format of its parent ({parent.vhd_format}).", category="InvalidArgument",
                                  error_id="InvalidParameter", target=path))
            continue
        inv.host.vhds[path.lower()] = vhd
        yield vhd


@cmdlet("Convert-VHD", {"Path": Param("String"), "DestinationPath": Param("String"),
                        "VHDType": Param("Enum", choices=("Fixed", "Dynamic", "Differencing")),
                        "ParentPath": Param("String"), "DeleteSource": Param("Switch"), "Passthru": Param("Switch")},
        command_class="Microsoft.Vhd.PowerShell.Cmdlets.ConvertVhd")
def convert_vhd(inv: Invocation) -> Iterator[Any]:
    if not inv.has("Path") or not inv.has("DestinationPath"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: Path "
                            "DestinationPath.", "MissingMandatoryParameter")
    path, destination = inv.get("Path"), inv.get("DestinationPath")
    source = inv.host.vhd(path)
    if source is None:
        raise _missing_file(path)
    holder = inv.host.holder_of(path)
    if holder is not None and holder.state != "Off":
        raise CmdletError(IN_USE.format(path), category="ResourceBusy", error_id="InvalidOperation", target=path)
    if inv.host.vhd(destination) is not None:
        raise CmdletError(f"Failed to convert the virtual hard disk. The file exists: '{destination}'.",
                          category="ResourceExists", error_id="InvalidParameter", target=destination)
    kind = inv.get("VHDType", source.vhd_type if source.vhd_type != "Differencing" else "Dynamic")
    if kind == "Differencing":
        raise CmdletError("Converting to a differencing disk needs -ParentPath; this host does not model it.",
                          category="InvalidArgument", error_id="InvalidParameter", target=destination)
    copy = Vhd(destination, source.size, kind)
    inv.host.vhds[destination.lower()] = copy
    if inv.get("Passthru"):
        yield copy


@cmdlet("Get-VHD", {"Path": Param("String[]"), "VMId": Param("Guid[]")}, pipeline={"Vm": "VMId.vm_id"},
        command_class="Microsoft.Vhd.PowerShell.Cmdlets.GetVhd")
def get_vhd(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMId"):
        ids = inv.get("VMId") if isinstance(inv.get("VMId"), list) else [inv.get("VMId")]
        for vm_id in ids:
            vm = inv.host.vm(vm_id)
            if vm is None:
                inv.error(not_found(f"Hyper-V was unable to find a virtual machine with id \"{vm_id}\".", vm_id))
                continue
            for drive in vm.hard_drives:
                vhd = _readable(inv, drive.path, drive.disk_number)
                if vhd is not None:
                    yield vhd
        return
    if not inv.has("Path"):
        raise binding_error("Cannot process command because of one or more missing mandatory parameters: Path.",
                            "MissingMandatoryParameter")
    for path in inv.get("Path"):
        vhd = _readable(inv, path, None)
        if vhd is not None:
            yield vhd


def _readable(inv: Invocation, path: str, disk_number: int | None) -> Vhd | None:
    """The VHD at ``path``, or a non-terminating error as Get-VHD writes it: a pass-through disk has no VHD, a file
    that is gone is not found, a file on a share the host cannot open with the caller's identity is denied."""
    if disk_number is not None:
        inv.error(CmdletError(f"The path '{path}' is a physical disk (pass-through disk {disk_number}), not a virtual "
                              "hard disk file.", category="InvalidArgument", error_id="InvalidParameter",
                              target=path))
        return None
    vhd = inv.host.vhd(path)
    if vhd is None:
        inv.error(CmdletError(f"Getting the mounted storage instance for the path '{path}' failed. The system cannot "
                              "find the file specified.", category="ObjectNotFound", error_id="ObjectNotFound",
                              target=path))
        return None
    if vhd.access_denied:
        inv.error(CmdletError(f"Getting the mounted storage instance for the path '{path}' failed. General access "
                              "denied error.", category="PermissionDenied", error_id="AccessDenied", target=path))
        return None
    return vhd


@cmdlet("Resize-VHD", {"Path": Param("String[]"), "SizeBytes": Param("UInt64"), "ToMinimumSize": Param("Switch"),
                       "Passthru": Param("Switch")}, command_class="Microsoft.Vhd.PowerShell.Cmdlets.ResizeVhd")
def resize_vhd(inv: Invocation) -> Iterator[Any]:
    if inv.get("ToMinimumSize") or not inv.has("SizeBytes"):
        raise CmdletError("This host grows virtual hard disks only: use -SizeBytes with a size larger than the "
                          "current one.", category="InvalidArgument", error_id="InvalidParameter", terminating=True)
    size = inv.get("SizeBytes")
    for path in inv.get("Path", []):
        vhd = inv.host.vhd(path)
        if vhd is None:
            inv.error(_missing_file(path))
            continue
        holder = inv.host.holder_of(path)
        drive = next((d for d in holder.hard_drives if d.path.lower() == path.lower()), None) if holder else None
        if holder is not None and holder.state != "Off" and (drive is None or drive.controller_type == "IDE"
                                                              or vhd.vhd_format != "VHDX"):
            inv.error(invalid_state(f"Failed to resize the virtual disk '{path}': only a VHDX on a SCSI controller "
                                    f"can be resized while its virtual machine runs. {CURRENT_STATE}", path))
            continue
        if vhd.vhd_type == "Differencing" or any(v.parent_path.lower() == path.lower() for v in inv.host.vhds.values()):
            inv.error(CmdletError(f"Failed to resize the virtual disk '{path}': it is part of a checkpoint chain "
                                  "(a differencing disk or the parent of one); remove the checkpoints first.",
                                  category="InvalidOperation", error_id="InvalidOperation", target=path))
            continue
        if size < vhd.size:
            inv.error(CmdletError(f"Failed to resize the virtual disk '{path}': the new size {size} is smaller than "
                                  f"the current size {vhd.size}. Shrinking is refused on this host.",
                                  category="InvalidArgument", error_id="InvalidParameter", target=path))
            continue
        vhd.size = size
        if inv.get("Passthru"):
            yield vhd


@cmdlet("Remove-Item", {"Path": Param("String[]"), "LiteralPath": Param("String[]", aliases=("PSPath", "LP")),
                        "Force": Param("Switch"), "Confirm": Param("Switch")},
        command_class="Microsoft.PowerShell.Commands.RemoveItemCommand")
def remove_item(inv: Invocation) -> Iterator[Any]:
    if inv.has("Path") == inv.has("LiteralPath"):
        raise binding_error("Parameter set cannot be resolved using the specified named parameters: give either "
                            "-Path or -LiteralPath.", "AmbiguousParameterSet")
    paths: list[str] = []
    for given in inv.get("Path", []):
        if has_wildcard(given):  # the provider expands the pattern; no match removes nothing, silently
            pattern = wildcard(given)
            paths += [vhd.path for vhd in list(inv.host.vhds.values()) if pattern.match(vhd.path)]
            paths += [path for path in list(inv.host.files) if pattern.match(path)]
        else:
            paths.append(given.replace("`", ""))
    paths += inv.get("LiteralPath", [])
    for path in paths:
        vhd = inv.host.vhd(path)
        if vhd is None and path.lower() in inv.host.files:  # an ISO (cmdlets_dvd): in use while a DVD drive holds it
            if any(media.lower() == path.lower() for vm in inv.host.vms for media in vm.dvd_media.values()):
                inv.error(CmdletError(IN_USE.format(path), category="WriteError",
                                      error_id="RemoveFileSystemItemIOError", reason="IOException", target=path))
            else:
                del inv.host.files[path.lower()]
            continue
        if vhd is None:
            inv.error(CmdletError(f"Cannot find path '{path}' because it does not exist.", category="ObjectNotFound",
                                  error_id="PathNotFound", reason="ItemNotFoundException", target=path))
            continue
        if inv.host.holder_of(path) is not None or any(v.parent_path.lower() == path.lower()
                                                       for v in inv.host.vhds.values()):
            inv.error(CmdletError(IN_USE.format(path), category="WriteError", error_id="RemoveFileSystemItemIOError",
                                  reason="IOException", target=path))
            continue
        del inv.host.vhds[path.lower()]
    return
    yield


@cmdlet("Get-VMHardDiskDrive", {"VM": Param("Object"), "VMName": Param("String[]"),
                                "ControllerType": Param("Enum", choices=("IDE", "SCSI")),
                                "ControllerNumber": Param("Int32"), "ControllerLocation": Param("Int32")},
        pipeline={"Vm": "VM"})
def get_vm_hard_disk_drive(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        for drive in vm.hard_drives:
            if inv.has("ControllerType") and drive.controller_type != inv.get("ControllerType"):
                continue
            if inv.has("ControllerNumber") and drive.controller_number != inv.get("ControllerNumber"):
                continue
            if inv.has("ControllerLocation") and drive.controller_location != inv.get("ControllerLocation"):
                continue
            yield drive


def controllers(vm: Vm, controller_type: str) -> tuple[int, int]:
    """How many controllers of that type the VM has, and how many locations each."""
    if controller_type == "IDE":
        return (IDE_CONTROLLERS if vm.generation == 1 else 0), IDE_LOCATIONS
    return vm.scsi_controllers, SCSI_LOCATIONS


def _free_slot(vm: Vm, controller_type: str, number: int | None, location: int | None) -> tuple[int, int]:
    count, locations = controllers(vm, controller_type)
    if count == 0:
        if controller_type == "IDE":
            raise CmdletError("Generation 2 virtual machines do not support IDE.", category="InvalidArgument",
                              error_id="InvalidParameter", target=vm.name)
        raise CmdletError(f"'{vm.name}' has no SCSI controller; add one with Add-VMScsiController.",
                          category="InvalidArgument", error_id="InvalidParameter", target=vm.name)
    used = {(d.controller_number, d.controller_location)
            for d in vm.hard_drives if d.controller_type == controller_type}
    used |= {(n, loc) for kind, n, loc in vm.dvd_drives if kind == controller_type}
    numbers = [number] if number is not None else list(range(count))
    for n in numbers:
        if not 0 <= n < count:
            raise CmdletError(f"'{vm.name}' has no {controller_type} controller number {n} (it has {count}).",
                              category="InvalidArgument", error_id="InvalidParameter", target=vm.name)
        for loc in [location] if location is not None else list(range(locations)):
            if not 0 <= loc < locations:
                raise CmdletError(f"The controller location {loc} does not exist on {controller_type} controller {n} "
                                  f"of '{vm.name}'.", category="InvalidArgument", error_id="InvalidParameter")
            if (n, loc) not in used:
                return n, loc
    raise CmdletError(f"Failed to add device 'Virtual Hard Disk' to '{vm.name}': the {controller_type} controller "
                      "location is already in use.", category="ResourceExists", error_id="InvalidParameter",
                      target=vm.name)


@cmdlet("Get-VMScsiController", {"VM": Param("Object"), "VMName": Param("String[]"),
                                 "ControllerNumber": Param("Int32")}, pipeline={"Vm": "VM"})
def get_vm_scsi_controller(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        for number in range(vm.scsi_controllers):
            if not inv.has("ControllerNumber") or inv.get("ControllerNumber") == number:
                yield ScsiControllerView(vm, number)


@cmdlet("Add-VMScsiController", {"VM": Param("Object"), "VMName": Param("String[]"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM"})
def add_vm_scsi_controller(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        if vm.state != "Off":
            inv.error(invalid_state(f"Failed to add device 'SCSI Controller' to '{vm.name}'. {CURRENT_STATE}",
                                    vm.name))
            continue
        if vm.scsi_controllers >= MAX_SCSI_CONTROLLERS:
            inv.error(CmdletError(f"Failed to add device 'SCSI Controller' to '{vm.name}': a virtual machine has at "
                                  f"most {MAX_SCSI_CONTROLLERS} SCSI controllers.", category="InvalidArgument",
                                  error_id="InvalidParameter", target=vm.name))
            continue
        vm.scsi_controllers += 1
        if inv.get("Passthru"):
            yield ScsiControllerView(vm, vm.scsi_controllers - 1)


@cmdlet("Add-VMHardDiskDrive", {"VM": Param("Object"), "VMName": Param("String[]"),
                                "ControllerType": Param("Enum", choices=("IDE", "SCSI")),
                                "ControllerNumber": Param("Int32"), "ControllerLocation": Param("Int32"),
                                "Path": Param("String"), "Passthru": Param("Switch")}, pipeline={"Vm": "VM"})
def add_vm_hard_disk_drive(inv: Invocation) -> Iterator[Any]:
    path = inv.get("Path")
    for vm in target_vms(inv):
        try:
            controller = inv.get("ControllerType", "IDE" if vm.generation == 1 else "SCSI")
            if controller == "IDE" and vm.state != "Off":
                raise invalid_state(f"Failed to add device 'Virtual Hard Disk' to '{vm.name}': IDE disks can be "
                                    f"added only while the virtual machine is off. {CURRENT_STATE}", vm.name)
            if path is None or inv.host.vhd(path) is None:
                raise _missing_file(path or "")
            holder = inv.host.holder_of(path)
            if holder is not None:
                raise CmdletError(IN_USE.format(path), category="ResourceBusy", error_id="InvalidOperation",
                                  target=path)
            number, location = _free_slot(vm, controller, inv.get("ControllerNumber"), inv.get("ControllerLocation"))
        except CmdletError as error:
            inv.error(error)
            continue
        drive = HardDrive(vm.vm_id, controller, number, location, path,
                          id=f"Microsoft:{str(vm.vm_id).upper()}\\{controller}\\{number}\\{location}\\D")
        vm.hard_drives.append(drive)
        if inv.get("Passthru"):
            yield drive


@cmdlet("Remove-VMHardDiskDrive", {"VMHardDiskDrive": Param("Object"), "VMName": Param("String[]"),
                                   "ControllerType": Param("Enum", choices=("IDE", "SCSI")),
                                   "ControllerNumber": Param("Int32"), "ControllerLocation": Param("Int32"),
                                   "Passthru": Param("Switch")}, pipeline={"HardDrive": "VMHardDiskDrive"})
def remove_vm_hard_disk_drive(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMHardDiskDrive"):
        drives = [inv.get("VMHardDiskDrive")]
    else:
        for name in ("VMName", "ControllerType", "ControllerNumber", "ControllerLocation"):
            if not inv.has(name):
                raise binding_error("Cannot process command because of one or more missing mandatory parameters: "
                                    f"{name}.", "MissingMandatoryParameter")
        drives = [d for vm in target_vms(inv) for d in vm.hard_drives
                  if d.controller_type == inv.get("ControllerType")
                  and d.controller_number == inv.get("ControllerNumber")
                  and d.controller_location == inv.get("ControllerLocation")]
    for drive in drives:
        vm = inv.host.vm(drive.vm_id)
        if vm is None or drive not in vm.hard_drives:
            continue
        if drive.controller_type == "IDE" and vm.state != "Off":
            inv.error(invalid_state(f"Failed to remove device 'Virtual Hard Disk' from '{vm.name}'. {CURRENT_STATE}",
                                    vm.name))
            continue
        vm.hard_drives.remove(drive)
        if inv.get("Passthru"):
            yield drive
