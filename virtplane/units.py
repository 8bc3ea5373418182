"""Parsing of human-friendly sizes ("4GiB", "512MiB", 4096) into whole MiB or GiB.

Sizes are binary: hypervisors size memory and disks in MiB and GiB (powers of 1024). The decimal units
(kB, MB, GB, TB: powers of 1000) are refused with the binary size to write instead, because 4 GB is
3.73 GiB, which is not a whole number of MiB: taking "4GB" to mean 4 GiB would quietly change the size.
"""

from __future__ import annotations

import re

_BINARY_IN_BYTES = {
    "": None,  # bare number: the caller's default unit
    "b": 1,
    "k": 1024, "kib": 1024,
    "m": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gib": 1024**3,
    "t": 1024**4, "tib": 1024**4,
}
_DECIMAL_TO_BINARY = {"kb": "KiB", "mb": "MiB", "gb": "GiB", "tb": "TiB"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class SizeError(ValueError):
    """A size that cannot be read; the message says what is accepted."""


def parse_size(value: object, unit: str) -> int:
    """Return ``value`` as a whole number of ``unit`` ("MiB" or "GiB").

    Integers are taken to be in ``unit`` already; strings may carry a binary unit suffix such as "GiB",
    "MiB", "TiB" (or "G", "M", "T"). Decimal units ("GB") and sizes that are not a whole number of ``unit``
    are refused.
    """
    unit_bytes = _BINARY_IN_BYTES[unit.lower()]
    assert unit_bytes is not None
    example = f"an integer number of {unit} or a string like '4GiB' or '512MiB'"
    if isinstance(value, bool):
        raise SizeError(f"expected {example}, got {value!r}")
    if isinstance(value, int):
        number, factor = float(value), unit_bytes
    elif isinstance(value, str):
        match = _SIZE.match(value)
        suffix = match.group(2).lower() if match else ""
        if match and suffix in _DECIMAL_TO_BINARY:
            binary = _DECIMAL_TO_BINARY[suffix]
            raise SizeError(f"got {value!r}: decimal units ({match.group(2)}, powers of 1000) are not accepted, "
                            f"sizes are binary; write '{match.group(1)}{binary}' ({binary}, powers of 1024)")
        if not match or suffix not in _BINARY_IN_BYTES:
            raise SizeError(f"expected {example}, got {value!r}")
        number = float(match.group(1))
        factor = _BINARY_IN_BYTES[suffix] or unit_bytes
    else:
        raise SizeError(f"expected {example}, got {value!r}")
    total = number * factor
    if total <= 0:
        raise SizeError(f"must be greater than zero, got {value!r}")
    if total % unit_bytes:
        raise SizeError(f"must be a whole number of {unit}, got {value!r}")
    return int(total // unit_bytes)
