"""XAPI's raw disk transfer, the HTTP handlers beside XML-RPC (XAPI documentation, "HTTP handlers": ``PUT
/import_raw_vdi?session_id=<ref>&vdi=<ref>&format=raw`` writes a VDI's bytes, ``GET /export_raw_vdi?...`` reads them).

A VDI's bytes are kept beside its record (``pool.contents``), dropped with it (storage.py). As XAPI: the session
must be valid, the VDI must exist, the format must be ``raw`` here (``vhd`` is XAPI's other one, not modelled:
refused), and an image larger than the VDI's ``virtual_size`` does not fit. Failures answer as XAPI's handlers do,
with an HTTP status and XAPI's error description in the body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import XapiError


def request_values(path: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(path)
    return parts.path, {key: values[0] for key, values in parse_qs(parts.query).items()}


def _vdi(pool: Any, values: dict[str, str]) -> str:
    pool.check_session(values.get("session_id"))
    vdi = values.get("vdi", "")
    if not pool.db.exists("VDI", vdi):
        raise XapiError("HANDLE_INVALID", "VDI", vdi)
    if values.get("format", "raw") != "raw":
        raise XapiError("INVALID_VALUE", "format", values.get("format"))
    return vdi


def import_raw(pool: Any, values: dict[str, str], data: bytes) -> None:
    vdi = _vdi(pool, values)
    size = int(pool.db.get("VDI", vdi)["virtual_size"])
    if len(data) > size:
        raise XapiError("VDI_IO_ERROR", f"the image ({len(data)} bytes) is larger than the VDI ({size} bytes)")
    pool.contents[vdi] = data + b"\0" * (size - len(data))


def export_raw(pool: Any, values: dict[str, str]) -> bytes:
    vdi = _vdi(pool, values)
    return pool.contents.get(vdi, b"\0" * int(pool.db.get("VDI", vdi)["virtual_size"]))


def status_of(error: XapiError) -> int:
    return {"SESSION_INVALID": 403, "HANDLE_INVALID": 404}.get(error.code, 500)
