"""Cloud-init on vSphere: ``guestinfo`` keys of the VM's extraConfig, which cloud-init's VMware datasource reads
through VMware Tools (https://cloudinit.readthedocs.io/en/latest/reference/datasources/vmware.html):
``guestinfo.userdata`` and ``guestinfo.metadata``, each with ``<key>.encoding = base64``. Network configuration
travels inside the metadata, as its ``network`` key (with ``network.encoding``), which is where the datasource
looks for it. Pure mapping, both ways: the digest read back is the digest of the documents written.
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections.abc import Iterable
from typing import Any

import yaml
from pyVmomi import vim

from virtplane import cloudinit
from virtplane.specs import CloudInitSpec

USERDATA, METADATA = "guestinfo.userdata", "guestinfo.metadata"
KEYS = (USERDATA, f"{USERDATA}.encoding", METADATA, f"{METADATA}.encoding")
UNREADABLE = "unreadable"  # what the state holds for guestinfo cloud-init cannot decode either


def options(spec: CloudInitSpec) -> list[vim.option.OptionValue]:
    """The extraConfig entries that deliver ``spec``."""
    docs = spec.documents
    meta = dict(docs.meta_data)
    if (network := docs.network_text()) is not None:
        meta.update({"network": _b64(network), "network.encoding": "base64"})
    values = {USERDATA: _b64(docs.user_data), f"{USERDATA}.encoding": "base64",
              METADATA: _b64(cloudinit.dump(meta)), f"{METADATA}.encoding": "base64"}
    return [vim.option.OptionValue(key=key, value=value) for key, value in values.items()]


def digest(extra_config: Iterable[Any] | None) -> str | None:
    """The digest of the cloud-init documents in a VM's extraConfig; None when it carries no user-data,
    ``unreadable`` when what it carries does not decode."""
    values = {str(getattr(option, "key", "")): getattr(option, "value", None) for option in extra_config or []}
    if values.get(USERDATA) in (None, ""):
        return None
    try:
        user = _decoded(values[USERDATA], values.get(f"{USERDATA}.encoding"))
        meta_text = _decoded(values.get(METADATA) or "", values.get(f"{METADATA}.encoding"))
        meta = yaml.safe_load(meta_text) or {}
        if not isinstance(meta, dict):
            return UNREADABLE
        network_text = meta.pop("network", None)
        network_encoding = meta.pop("network.encoding", None)
        network = None
        if network_text is not None:
            network = yaml.safe_load(_decoded(str(network_text), network_encoding))
    except (ValueError, yaml.YAMLError, OSError):
        return UNREADABLE
    return cloudinit.digest(user, meta, network)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decoded(value: Any, encoding: Any) -> str:
    """A value in one of the encodings the VMware datasource takes (base64/b64, gzip+base64/gz+b64, none)."""
    text = str(value)
    kind = str(encoding or "").strip().lower()
    if kind in ("", "none"):
        return text
    try:
        raw = base64.b64decode(text, validate=False)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if kind in ("gzip+base64", "gz+b64"):
        raw = gzip.decompress(raw)
    elif kind not in ("base64", "b64"):
        raise ValueError(f"unknown encoding {kind}")
    return raw.decode()
