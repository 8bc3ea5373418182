"""Cloud-init on Hyper-V, pure: a NoCloud ISO (providers/nocloud.py) written next to the VM's disks and mounted on a
virtual DVD drive.

The ISO's file name carries the VM's id and the documents' digest (``<VMId>-cidata-<sha256 hex>.iso``): reading the
DVD drives back (Get-VMDvdDrive, in observe's pipeline) gives the digest of what the guest holds, and tells virtplane's
ISOs (which it deletes with the VM) from anyone else's.
"""

from __future__ import annotations

import re
from typing import Any

from virtplane import cloudinit

_NAME = re.compile(r"^(?P<vm>[0-9a-fA-F-]{36})-cidata-(?P<hex>[0-9a-f]{64})\.iso$")
# Where a DVD drive for the ISO goes when the VM has none to hold it: Generation 1 VMs have one at IDE 1:0 from New-VM
# (used when empty), else IDE 1:1; Generation 2 VMs get one at the last SCSI location, away from the disks' slots.
NEW_DRIVE = {1: ("IDE", 1, 1), 2: ("SCSI", 0, 63)}
DEFAULT_DVD = ("IDE", 1, 0)


def file_name(vm_id: str, digest: str) -> str:
    return f"{vm_id.lower()}-cidata-{digest.removeprefix(cloudinit.DIGEST_PREFIX)}.iso"


def leaf(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def ours(path: str | None, vm_id: str) -> bool:
    """True for an ISO virtplane wrote for this VM."""
    match = _NAME.match(leaf(path or ""))
    return match is not None and match.group("vm").lower() == vm_id.lower()


def digest_of(path: str | None) -> str:
    match = _NAME.match(leaf(path or ""))
    assert match is not None
    return cloudinit.DIGEST_PREFIX + match.group("hex")


def controller_of(drive: Any) -> tuple[str, int, int]:
    """(ControllerType, ControllerNumber, ControllerLocation) of a DvdDrive object."""
    return (str(drive.text("ControllerType") or ""), int(drive.number("ControllerNumber") or 0),
            int(drive.number("ControllerLocation") or 0))
