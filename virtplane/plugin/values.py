"""Pulumi property values to plain Python and back (and wire names to Python's: virtplane/wire_names.py).

On the wire every number is a double (``cpus=2`` arrives as ``2.0``) and the SDK refuses Python ints on the
way out, so whole floats become ints coming in and ints become floats going out. A value not known yet
(preview) is the engine's unknown string; a secret is a PropertyValue with ``is_secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.provider.experimental.property_value import PropertyValue

from virtplane.wire_names import from_wire, from_wire_map, to_wire, to_wire_map

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def plain(value: PropertyValue | Any) -> Any:
    """A PropertyValue (or a map/list of them) as plain Python, secrets unwrapped."""
    if isinstance(value, PropertyValue):
        value = value.value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def plain_map(values: Mapping[str, PropertyValue] | None) -> dict[str, Any]:
    return {key: plain(value) for key, value in (values or {}).items()}


def has_unknown(value: Any) -> bool:
    if isinstance(value, PropertyValue):
        value = value.value
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, Mapping):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(item) for item in value)
    return False


def is_secret(value: Any) -> bool:
    """True when the value or anything inside it is marked secret."""
    if not isinstance(value, PropertyValue):
        return False
    if value.is_secret:
        return True
    inner = value.value
    if isinstance(inner, Mapping):
        return any(is_secret(item) for item in inner.values())
    if isinstance(inner, list | tuple):
        return any(is_secret(item) for item in inner)
    return False


def secret_keys(values: Mapping[str, PropertyValue] | None) -> set[str]:
    return {key for key, value in (values or {}).items() if is_secret(value)}


def to_property(value: Any, secret: bool = False) -> PropertyValue:
    """Plain Python as a PropertyValue (ints as doubles); None stays null."""
    if isinstance(value, PropertyValue):
        return PropertyValue(value.value, is_secret=True) if secret and not value.is_secret else value
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        converted: Any = value
    elif isinstance(value, int):
        converted = float(value)
    elif isinstance(value, Mapping):
        converted = {str(key): to_property(item) for key, item in value.items()}
    elif isinstance(value, list | tuple | set | frozenset):
        converted = [to_property(item) for item in value]
    else:
        converted = str(value)
    return PropertyValue(converted, is_secret=secret)


def to_property_map(values: Mapping[str, Any], secret: set[str] | frozenset[str] = frozenset()
                    ) -> dict[str, PropertyValue]:
    """A plain map as PropertyValues, the keys in ``secret`` marked secret; None values are left out."""
    return {key: to_property(value, key in secret) for key, value in values.items() if value is not None}


def inputs_of(values: Mapping[str, PropertyValue] | None) -> dict[str, Any]:
    """A resource's properties as plain Python with Python's names (``secureBoot`` on the wire is ``secure_boot``)."""
    return from_wire_map(plain_map(values))


def secrets_of(*maps: Mapping[str, PropertyValue] | None) -> set[str]:
    """The Python names of the properties marked secret in any of ``maps``."""
    return {from_wire(key) for values in maps for key in secret_keys(values)}


def outputs_map(values: Mapping[str, Any], secret: set[str] | frozenset[str] = frozenset()
                ) -> dict[str, PropertyValue]:
    """Plain properties with Python's names as PropertyValues with wire names, those in ``secret`` marked secret."""
    return to_property_map(to_wire_map(values), {to_wire(key) for key in secret})
