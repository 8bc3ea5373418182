"""DVD drives and the files they hold: Get-VMDvdDrive, Add-VMDvdDrive, Set-VMDvdDrive (Hyper-V module reference,
learn.microsoft.com/powershell/module/hyper-v/…-vmdvddrive), and Set-Content (Microsoft.PowerShell.Management,
Windows PowerShell 5.1, which WinRM runs), the cmdlet that writes a file's bytes (``-Encoding Byte``), and Get-Content
``-Encoding Byte -ReadCount 0``, which reads them back as one byte array.

- A DVD drive sits on a controller slot the VM has (IDE 0/1 on Generation 1, SCSI on Generation 2), like a hard
  drive; Generation 1 VMs get one at IDE 1:0 from New-VM. Adding one needs the VM off (the simulator refuses it on a
  running VM: the reference documents no hot add, so it is not assumed). Changing its media (``Set-VMDvdDrive
  -Path``) works while the VM runs, as an ISO is inserted into a running machine; the ISO must exist.
- Files other than VHDs are kept as bytes (``Host.files``); Remove-Item removes them (cmdlets_storage.py) unless a DVD
  drive holds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .cmdlets_storage import _free_slot
from .engine import Invocation, cmdlet
from .errors import CURRENT_STATE, CmdletError, binding_error, invalid_state, not_found
from .params import Param
from .psobjects import DvdView
from .targets import target_vms

ENCODINGS = ("Unknown", "String", "Unicode", "Byte", "BigEndianUnicode", "UTF8", "UTF7", "UTF32", "Ascii", "Default",
             "Oem", "BigEndianUTF32")  # FileSystemCmdletProviderEncoding


def _iso(inv: Invocation, path: str | None) -> str | None:
    """The ISO ``path`` names (it must exist), or None for an empty drive."""
    if path in (None, ""):
        return None
    if str(path).lower() not in inv.host.files:
        raise not_found(f"The system cannot find the file specified: '{path}'.", str(path))
    return str(path)


@cmdlet("Get-VMDvdDrive", {"VM": Param("Object"), "VMName": Param("String[]"), "ControllerNumber": Param("Int32"),
                           "ControllerLocation": Param("Int32")}, pipeline={"Vm": "VM"})
def get_vm_dvd_drive(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        for controller in vm.dvd_drives:
            _, number, location = controller
            if inv.has("ControllerNumber") and number != inv.get("ControllerNumber"):
                continue
            if inv.has("ControllerLocation") and location != inv.get("ControllerLocation"):
                continue
            yield DvdView(vm, controller)


@cmdlet("Add-VMDvdDrive", {"VM": Param("Object"), "VMName": Param("String[]"), "ControllerNumber": Param("Int32"),
                           "ControllerLocation": Param("Int32"), "Path": Param("String"), "Passthru": Param("Switch")},
        pipeline={"Vm": "VM"})
def add_vm_dvd_drive(inv: Invocation) -> Iterator[Any]:
    for vm in target_vms(inv):
        try:
            if vm.state != "Off":
                raise invalid_state(f"Failed to add device 'Virtual CD/DVD Disk' to '{vm.name}': the virtual machine "
                                    f"must be off. {CURRENT_STATE}", vm.name)
            media = _iso(inv, inv.get("Path"))
            controller_type = "IDE" if vm.generation == 1 else "SCSI"
            number, location = _free_slot(vm, controller_type, inv.get("ControllerNumber"),
                                          inv.get("ControllerLocation"))
        except CmdletError as error:
            inv.error(error)
            continue
        controller = (controller_type, number, location)
        vm.dvd_drives.append(controller)
        if media:
            vm.dvd_media[controller] = media
        if inv.get("Passthru"):
            yield DvdView(vm, controller)


@cmdlet("Set-VMDvdDrive", {"VMDvdDrive": Param("Object"), "VMName": Param("String"), "ControllerNumber": Param("Int32"),
                           "ControllerLocation": Param("Int32"), "Path": Param("String"), "Passthru": Param("Switch")},
        pipeline={"DvdView": "VMDvdDrive"})
def set_vm_dvd_drive(inv: Invocation) -> Iterator[Any]:
    if inv.has("VMDvdDrive"):
        drives = [inv.get("VMDvdDrive")]
    else:
        drives = [DvdView(vm, controller) for vm in target_vms(inv) for controller in vm.dvd_drives
                  if controller[1] == inv.get("ControllerNumber", controller[1])
                  and controller[2] == inv.get("ControllerLocation", controller[2])]
    for drive in drives:
        if not isinstance(drive, DvdView):
            raise binding_error("Cannot bind parameter 'VMDvdDrive': only DvdDrive objects from the pipeline are "
                                "accepted.", "CannotConvertArgument")
        try:
            media = _iso(inv, inv.get("Path"))
        except CmdletError as error:
            inv.error(error)
            continue
        if media:
            drive.vm.dvd_media[drive.controller] = media
        else:
            drive.vm.dvd_media.pop(drive.controller, None)
        if inv.get("Passthru"):
            yield drive


_ENCODING = Param("Enum", choices=ENCODINGS,
                  extra={"enum": "Microsoft.PowerShell.Commands.FileSystemCmdletProviderEncoding"})


@cmdlet("Set-Content", {"Path": Param("String[]"), "Value": Param("Object"), "Encoding": _ENCODING,
                        "Force": Param("Switch")}, command_class="Microsoft.PowerShell.Commands.SetContentCommand")
def set_content(inv: Invocation) -> Iterator[Any]:
    value = inv.get("Value")
    if isinstance(value, bytes | bytearray):
        if inv.get("Encoding") != "Byte":  # without it each byte would be written as a line of text
            raise CmdletError("Set-Content writes a byte array's bytes only with -Encoding Byte.",
                              category="InvalidArgument", error_id="InvalidParameter", terminating=True)
        data = bytes(value)
    else:
        items = value if isinstance(value, list) else [value]
        data = "\r\n".join(str(item) for item in items).encode() + b"\r\n"
    for path in inv.get("Path", []):
        if inv.host.vhd(path) is not None or any(media.lower() == path.lower() for vm in inv.host.vms
                                                 for media in vm.dvd_media.values()):
            inv.error(CmdletError(f"The process cannot access the file '{path}' because it is being used by another "
                                  "process.", category="WriteError", error_id="GetContentWriterIOError", target=path))
            continue
        inv.host.files[path.lower()] = data
    return
    yield


@cmdlet("Get-Content", {"Path": Param("String[]"), "LiteralPath": Param("String[]"), "Encoding": _ENCODING,
                        "ReadCount": Param("Int64")}, command_class="Microsoft.PowerShell.Commands.GetContentCommand")
def get_content(inv: Invocation) -> Iterator[Any]:
    if inv.get("Encoding") != "Byte" or inv.get("ReadCount") != 0:
        raise CmdletError("This host reads files only as bytes, whole: -Encoding Byte -ReadCount 0.",
                          category="InvalidArgument", error_id="InvalidParameter", terminating=True)
    for path in [*inv.get("Path", []), *inv.get("LiteralPath", [])]:
        data = inv.host.files.get(path.lower())
        if data is None:
            inv.error(CmdletError(f"Cannot find path '{path}' because it does not exist.", category="ObjectNotFound",
                                  error_id="PathNotFound", reason="ItemNotFoundException", target=path))
            continue
        yield data
