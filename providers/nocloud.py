"""A NoCloud image of cloud-init documents, for hypervisors that hand the guest a disk or CD-ROM (Hyper-V's DVD drive,
XenServer's config-drive VDI): a filesystem labelled ``cidata`` holding ``user-data``, ``meta-data`` and
``network-config``, which cloud-init's NoCloud datasource reads
(https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html). Built with pycdlib: ISO 9660 with
Rock Ridge and Joliet names, so Linux and Windows guests see ``user-data`` as written."""

from __future__ import annotations

import io

import pycdlib

from virtplane.cloudinit import Documents

LABEL = "cidata"


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


def files(data: bytes) -> dict[str, bytes]:
    """The files of a NoCloud ISO by their Rock Ridge names (what a guest mounting it reads); its label must be
    ``cidata``."""
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(data))
    try:
        if image.pvd.volume_identifier.decode().strip() != LABEL:
            raise ValueError("not a cidata volume")
        found = {}
        for child in image.list_children(rr_path="/"):
            name = child.rock_ridge.name().decode() if child.rock_ridge else ""
            if name and not child.is_dir():
                out = io.BytesIO()
                image.get_file_from_iso_fp(out, rr_path=f"/{name}")
                found[name] = out.getvalue()
        return found
    finally:
        image.close()
