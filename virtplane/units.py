"""Parsing of human-friendly sizes ("4GiB", "512MiB", 4096) into whole MiB or GiB."""

from __future__ import annotations

import re

_UNITS_IN_BYTES = {
    "": None,  # bare number: the caller's default unit
    "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class SizeError(ValueError):
    """A size that cannot be read; the message says what is accepted."""


def parse_size(value: object, unit: str) -> int:
    """Return ``value`` as a whole number of ``unit`` ("MiB" or "GiB").

    Integers are taken to be in ``unit`` already; strings may carry a unit suffix such as "GiB",
    "GB", "MiB" or "TiB". Sizes that are not a whole number of ``unit`` are refused.
    """
    unit_bytes = _UNITS_IN_BYTES[unit.lower()]
    assert unit_bytes is not None
    example = f"an integer number of {unit} or a string like '4GiB' or '512MiB'"
    if isinstance(value, bool):
        raise SizeError(f"expected {example}, got {value!r}")
    if isinstance(value, int):
        number, factor = float(value), unit_bytes
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match or match.group(2).lower() not in _UNITS_IN_BYTES:
            raise SizeError(f"expected {example}, got {value!r}")
        number = float(match.group(1))
        factor = _UNITS_IN_BYTES[match.group(2).lower()] or unit_bytes
    else:
        raise SizeError(f"expected {example}, got {value!r}")
    total = number * factor
    if total <= 0:
        raise SizeError(f"must be greater than zero, got {value!r}")
    if total % unit_bytes:
        raise SizeError(f"must be a whole number of {unit}, got {value!r}")
    return int(total // unit_bytes)
