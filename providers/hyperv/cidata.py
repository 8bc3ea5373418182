"""Cloud-init on Hyper-V, pure: a NoCloud ISO (cloud-init's NoCloud datasource reads a filesystem labelled
``cidata`` holding ``user-data``, ``meta-data`` and ``network-config``:
https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html), built with pycdlib (ISO 9660 with
Rock Ridge and Joliet names, so Linux and Windows guests see ``user-data``), written next to the VM's disks and
mounted on a virtual DVD drive.

The ISO's file name carries the VM's id and the documents' digest (``<VMId>-cidata-<sha256 hex>.iso``): reading the
DVD drives back (Get-VMDvdDrive, in observe's pipeline) gives the digest of what the guest holds, and tells virtplane's
ISOs (which it deletes with the VM) from anyone else's.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pycdlib

from virtplane import cloudinit
from virtplane.cloudinit import Documents

LABEL = "cidata"
_NAME = re.compile(r"^(?P<vm>[0-9a-fA-F-]{36})-cidata-(?P<hex>[0-9a-f]{64})\.iso$")
# Where a DVD drive for the ISO goes when the VM has none to hold it: Generation 1 VMs have one at IDE 1:0 from New-VM
# (used when empty), else IDE 1:1; Generation 2 VMs get one at the last SCSI location, away from the disks' slots.
NEW_DRIVE = {1: ("IDE", 1, 1), 2: ("SCSI", 0, 63)}
DEFAULT_DVD = ("IDE", 1, 0)


def iso(docs: Documents) -> bytes:
    """The NoCloud ISO of ``docs``."""
    files = {"user-data": docs.user_data, "meta-data": docs.meta_text(), "network-config": docs.network_text()}
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=LABEL)
    try:
        for name, text in files.items():
            if text is None:
                continue
            data = text.encode()
            image.add_fp(io.BytesIO(data), len(data), f"/{name.upper().replace('-', '_')}.;1", rr_name=name,
                         joliet_path=f"/{name}")
        out = io.BytesIO()
        image.write_fp(out)
    finally:
        image.close()
    return out.getvalue()


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
