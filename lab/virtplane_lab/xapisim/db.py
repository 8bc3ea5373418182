"""The pool's objects: records by class and OpaqueRef, with the read-side views XAPI offers.

Refs are ``OpaqueRef:<uuid4>``, fresh per object, as XAPI's are; uuids of seeded objects are stable (uuid5 of
their names), those of created ones random. Values are kept in their wire form (an int is a string of decimal
digits, a set a list, a map a struct), so a record read back is exactly what XAPI sends.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from xmlrpc.client import DateTime

from .errors import XapiError
from .schema import BACKREFS, CLASSES, NULL, Field

_SEED_NAMESPACE = uuid.UUID("7d6a0f0e-3a1c-4c55-9d0e-5f1b3c0a9e21")


def stable_uuid(name: str) -> str:
    return str(uuid.uuid5(_SEED_NAMESPACE, name))


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


def default_of(spec: Field) -> Any:
    if spec.default is not None:
        value = spec.default
        return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value
    kind = spec.type
    if kind in ("s",):
        return ""
    if kind == "i":
        return "0"
    if kind == "b":
        return False
    if kind == "f":
        return 0.0
    if kind == "d":
        return DateTime("19700101T00:00:00Z")
    if kind.startswith("r:"):
        return NULL
    if kind in ("S", "IS") or kind.startswith("R:"):
        return []
    if kind in ("M",) or kind.startswith("I:"):
        return {}
    if kind.startswith("e:"):
        return kind[2:].split("|")[0]
    raise AssertionError(kind)


class Db:
    """Every object of the pool. One lock guards all of it: calls are short, and XAPI serialises a VM's
    operations too."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in CLASSES}
        self.on_change: list[Callable[[str, str, str], None]] = []  # (class, ref, "add"|"mod"|"del")
        # Virtual functions, which XAPI keeps as PCI objects of the PF; here a count per SR-IOV network object
        # and the VIFs holding one (not fields of any class).
        self.vfs_total: dict[str, int] = {}
        self.vfs_used: dict[str, str] = {}  # VIF ref -> network_sriov ref

    # ---- writing ---------------------------------------------------------------------------------

    def add(self, cls: str, fields: dict[str, Any], *, uuid_: str | None = None, ref: str | None = None) -> str:
        ref = ref or new_ref()
        record = {name: default_of(spec) for name, spec in CLASSES[cls].items() if (cls, name) not in BACKREFS
                  and not _derived(cls, name)}
        record.update(fields)
        record["uuid"] = uuid_ or str(uuid.uuid4())
        self.objects[cls][ref] = record
        self._changed(cls, ref, "add")
        return ref

    def set(self, cls: str, ref: str, **fields: Any) -> None:
        self.get(cls, ref).update(fields)
        self._changed(cls, ref, "mod")

    def delete(self, cls: str, ref: str) -> None:
        self.get(cls, ref)
        del self.objects[cls][ref]
        self._changed(cls, ref, "del")

    def _changed(self, cls: str, ref: str, operation: str) -> None:
        for listener in self.on_change:
            listener(cls, ref, operation)

    # ---- reading ---------------------------------------------------------------------------------

    def get(self, cls: str, ref: str) -> dict[str, Any]:
        """The stored record (mutable); HANDLE_INVALID [class, ref] when there is none."""
        try:
            return self.objects[cls][ref]
        except KeyError:
            raise XapiError("HANDLE_INVALID", cls, ref) from None

    def exists(self, cls: str, ref: str) -> bool:
        return ref in self.objects[cls]

    def refs(self, cls: str) -> list[str]:
        return list(self.objects[cls])

    def where(self, cls: str, **equal: Any) -> list[str]:
        return [ref for ref, record in self.objects[cls].items()
                if all(record.get(key) == value for key, value in equal.items())]

    def one(self, cls: str, **equal: Any) -> str | None:
        found = self.where(cls, **equal)
        return found[0] if found else None

    def record(self, cls: str, ref: str) -> dict[str, Any]:
        """The record as XAPI sends it: stored fields, the sets that mirror other objects' refs, and the
        derived fields (a VGPU type's PGPUs and groups)."""
        stored = self.get(cls, ref)
        record = {key: _copy(value) for key, value in stored.items()}
        for (owner, field), (other, back) in BACKREFS.items():
            if owner == cls:
                record[field] = [r for r, o in self.objects[other].items() if o.get(back) == ref]
        if cls == "VGPU_type":
            record.update(self._vgpu_type_views(ref))
        if cls == "GPU_group":
            pgpus = [self.objects["PGPU"][p] for p in self.where("PGPU", GPU_group=ref)]
            record["supported_VGPU_types"] = _union(p["supported_VGPU_types"] for p in pgpus)
            record["enabled_VGPU_types"] = _union(p["enabled_VGPU_types"] for p in pgpus)
        return record

    def _vgpu_type_views(self, ref: str) -> dict[str, list[str]]:
        supported = [p for p, r in self.objects["PGPU"].items() if ref in r["supported_VGPU_types"]]
        enabled = [p for p, r in self.objects["PGPU"].items() if ref in r["enabled_VGPU_types"]]
        groups = self.objects["PGPU"]
        return {"supported_on_PGPUs": supported, "enabled_on_PGPUs": enabled,
                "supported_on_GPU_groups": sorted({groups[p]["GPU_group"] for p in supported}),
                "enabled_on_GPU_groups": sorted({groups[p]["GPU_group"] for p in enabled})}

    def records(self, cls: str, refs: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        return {ref: self.record(cls, ref) for ref in (self.refs(cls) if refs is None else refs)}


def _derived(cls: str, name: str) -> bool:
    return (cls == "VGPU_type" and name.endswith(("_PGPUs", "_GPU_groups"))) or (
        cls == "GPU_group" and name in ("supported_VGPU_types", "enabled_VGPU_types"))


def _union(lists: Iterable[list[str]]) -> list[str]:
    seen: list[str] = []
    for items in lists:
        seen += [item for item in items if item not in seen]
    return seen


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
