"""Property names as Pulumi writes them: camelCase on the wire and in the package schema (``secureBoot``,
``cloudInit.userData``, ``caFile``), snake_case in Python (``secure_boot``), as Pulumi's own Python SDKs do.

Only names virtplane knows are translated — the fields of every spec model (nested ones too) and the Endpoint
settings — so a free-form map's keys (the ``networks`` output names Networks) pass unchanged. Coming in, both spellings
are accepted: a program that registers snake_case names (or a stack config written ``virtplane:ca_file``) still works.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel


def camel(name: str) -> str:
    """``secure_boot`` -> ``secureBoot`` (names without ``_`` unchanged)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    """``secureBoot`` -> ``secure_boot``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


@cache
def _known() -> frozenset[str]:
    from virtplane.kinds import KINDS

    names: set[str] = set()
    for kind in KINDS:
        _fields(kind.spec, names)
    return frozenset(names | _settings())


def _fields(model: type[BaseModel], names: set[str]) -> None:
    from virtplane.enums import _nested

    for field, info in model.model_fields.items():
        names.add(field)
        for member in _nested(info.annotation):
            _fields(member, names)


def _settings() -> set[str]:
    from virtplane.endpoint_settings import endpoint_settings
    from virtplane.providers.registry import KINDS, provider_class

    names: set[str] = set()
    for kind in KINDS:
        try:
            names.update(setting.name for setting in endpoint_settings(provider_class(kind)))
        except ImportError:  # a provider whose client library is not installed
            continue
    return names


def to_wire(name: str) -> str:
    return camel(name) if name in _known() else name


def from_wire(name: str) -> str:
    """A wire name in Python's spelling; a name already in it (or unknown) unchanged."""
    python = snake(name)
    return python if python in _known() else name


def wire_path(path: str) -> str:
    """``disks[1].size``, ``cloud_init.user_data`` -> ``disks[1].size``, ``cloudInit.userData``."""
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: to_wire(m.group(0)), path)


def to_wire_map(values: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's properties with wire names, nested objects (disks, NICs, cloud-init) too."""
    return _translate(values, to_wire)


def from_wire_map(values: Mapping[str, Any]) -> dict[str, Any]:
    return _translate(values, from_wire)


def _translate(values: Any, name: Any) -> Any:
    if isinstance(values, Mapping):
        out = {}
        for key, value in values.items():
            translated = name(key)
            known = translated != key or key in _known()
            out[translated] = _translate(value, name) if known else value  # a free-form map's values as they are
        return out
    if isinstance(values, list):
        return [_translate(item, name) for item in values]
    return values
