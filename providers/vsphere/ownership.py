"""Ownership markers and tags as vSphere custom attributes, plus the markers written at creation."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from pyVmomi import vim, vmodl

from virtplane.providers.base import MARKER_KEY, Owner
from virtplane.providers.marker import RESTORE_KEY  # the power record: "power=on", or empty
from virtplane.providers.vsphere.faults import provider_error

TAGS_KEY = "virtplane.tags"
OUR_KEYS = (MARKER_KEY, TAGS_KEY, RESTORE_KEY)


class CustomAttributes:
    """Our custom attribute definitions for one managed object type, created once and cached.

    The definitions are scoped to the object type (``VirtualMachine``, ``DistributedVirtualPortgroup``,
    ``Network``) rather than global: vCenter allows both, and govmomi's simulator returns global
    definitions without their required ``type`` field, which pyVmomi then refuses to deserialize.
    """

    def __init__(self, si: Any, mo_type: type):
        self._si = si
        self._mo_type = mo_type
        self._type_name = mo_type.__name__.rsplit(".", 1)[-1]
        self._keys: dict[str, int] = {}
        self._manager_ref: Any = None
        self._lock = threading.Lock()

    @property
    def _manager(self) -> Any:
        if self._manager_ref is None:
            self._manager_ref = self._si.RetrieveContent().customFieldsManager
        return self._manager_ref

    def keys(self) -> dict[str, int]:
        """Our attribute names -> keys, as far as they exist (re-read while one is missing)."""
        with self._lock:
            if any(key not in self._keys for key in OUR_KEYS):
                self._read()
            return dict(self._keys)

    def _read(self) -> None:
        try:
            fields = self._manager.field or []
        except vmodl.MethodFault as fault:
            raise provider_error("read the custom attribute definitions", fault) from None
        for definition in fields:
            scope = definition.managedObjectType
            scope_name = scope.__name__.rsplit(".", 1)[-1] if isinstance(scope, type) else scope
            if definition.name in OUR_KEYS and scope_name == self._type_name:
                self._keys[definition.name] = definition.key

    def key(self, name: str) -> int:
        """The key of attribute ``name``, creating the global definition when it is missing."""
        known = self.keys()
        if name in known:
            return known[name]
        with self._lock:
            return self._create(name)

    def _create(self, name: str) -> int:
        if name in self._keys:
            return self._keys[name]
        try:
            definition = self._manager.AddCustomFieldDef(name=name, moType=self._mo_type)
            self._keys[name] = definition.key
        except vim.fault.DuplicateName:
            self._read()  # someone else created it meanwhile
        except vmodl.MethodFault as fault:
            raise provider_error(f"create the custom attribute {name}", fault) from None
        if name not in self._keys:
            raise provider_error(f"find the custom attribute {name}", "it vanished after being created")
        return self._keys[name]

    def set(self, entity: Any, name: str, value: str) -> None:
        key = self.key(name)
        try:
            self._manager.SetField(entity=entity, key=key, value=value)
        except vmodl.MethodFault as fault:
            raise provider_error(f"set the custom attribute {name} on {entity._moId}", fault) from None

    def parse(self, custom_values: Iterable[Any] | None) -> dict[str, str]:
        """Our attributes from an entity's customValue; the LAST value per key wins.

        Uses the keys as last read: callers read them once per pass with ``keys()``.
        """
        with self._lock:
            names = {key: name for name, key in self._keys.items()}
        found: dict[str, str] = {}
        for value in custom_values or []:
            name = names.get(value.key)
            if name is not None:
                found[name] = getattr(value, "value", "") or ""
        return found

    def write_owner(self, entity: Any, owner: Owner) -> None:
        self.set(entity, MARKER_KEY, owner.encode())

    def write_tags(self, entity: Any, tags: Iterable[str]) -> None:
        self.set(entity, TAGS_KEY, encode_tags(tags))

    def write_restore(self, entity: Any, power: str | None) -> None:
        """Record (or, with None, clear) the power state to restore (providers/marker.py)."""
        self.set(entity, RESTORE_KEY, "" if power is None else f"power={power}")


def encode_tags(tags: Iterable[str]) -> str:
    return ",".join(sorted(set(tags)))


def decode_tags(text: str | None) -> list[str]:
    return sorted({tag for tag in (text or "").split(",") if tag})


def extra_config_marker(owner: Owner) -> Any:
    """The marker as an extraConfig option, written atomically with CreateVM / CloneVM."""
    return vim.option.OptionValue(key=MARKER_KEY, value=owner.encode())


def owner_from_extra_config(options: Iterable[Any] | None) -> Owner | None:
    found = None
    for option in options or []:
        if option.key == MARKER_KEY:
            found = Owner.decode(str(option.value or ""))
    return found


