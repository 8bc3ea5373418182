"""VMs an administrator made in ways the driver never does, seeded through the control endpoint (``seed``), so
tests see what real hosts hold next to a stack's VMs:

- a pass-through disk (``Add-VMHardDiskDrive -DiskNumber``: the drive has a DiskNumber and no VHD file; Get-VHD
  cannot read it),
- a VHD whose file is gone (deleted or moved behind Hyper-V's back: Get-VHD reports "The system cannot find the
  file specified"),
- a VHD on an SMB share the host cannot open with the caller's identity (without Kerberos delegation or CredSSP
  the second hop is anonymous: Get-VHD is denied access),
- a VM that is a Failover Cluster role (``IsClustered``).

Payload: ``{"name": "<vm>", "generation": 2, "drives": ["passthrough" | "missing" | "smb", ...],
"clustered": false}``; answers ``{"vm_id": "<guid>"}``."""

from __future__ import annotations

import uuid
from typing import Any

from .model import GB, MB, HardDrive, Host, Vhd, Vm


def seed(host: Host, payload: dict[str, Any]) -> dict[str, Any]:
    generation = int(payload.get("generation", 2))
    vm_id = uuid.uuid4()
    vm = Vm(vm_id=vm_id, name=str(payload["name"]), generation=generation, version=host.hardware.default_version,
            path="C:\\ProgramData\\Microsoft\\Windows\\Hyper-V", memory_startup=512 * MB,
            scsi_controllers=1 if generation == 2 else 0, is_clustered=bool(payload.get("clustered")),
            notes=str(payload.get("notes", "")))
    if generation == 1:
        vm.dvd_drives.append(("IDE", 1, 0))
        vm.scsi_controllers = 1
    for location, kind in enumerate(payload.get("drives", [])):
        path = ""
        disk_number = None
        if kind == "passthrough":
            disk_number = 2 + location
            path = f"Disk {disk_number} 40.00 GB Bus 0 Lun {location} Target 0"
        elif kind == "missing":
            path = f"D:\\Hyper-V\\{vm.name}-gone-{location}.vhdx"
        elif kind == "smb":
            path = f"\\\\fs01\\vms\\{vm.name}-{location}.vhdx"
            host.vhds[path.lower()] = Vhd(path, 40 * GB, access_denied=True)
        else:
            raise ValueError(f"unknown drive kind {kind!r} (passthrough, missing, smb)")
        vm.hard_drives.append(HardDrive(vm_id, "SCSI", 0, location, path, disk_number=disk_number,
                                        id=f"Microsoft:{str(vm_id).upper()}\\SCSI\\0\\{location}\\D"))
    host.vms.append(vm)
    return {"vm_id": str(vm_id)}
