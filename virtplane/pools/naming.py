"""A pool's desktop names: ``naming`` is a format string with ``{pool}`` (the pool's name) and ``{n}`` (the desktop's
number, from 1), e.g. the default ``{pool}-{n:03}`` -> ``web-001``. Names are read back into numbers exactly: a
name the pattern did not make (``web-1`` for ``{n:03}``) is no desktop of the pool."""

from __future__ import annotations

import re
import string

DEFAULT_NAMING = "{pool}-{n:03}"


def naming_problem(naming: str, pool: str) -> str | None:
    """Why ``naming`` cannot name the desktops of ``pool``, or None."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(naming) if field is not None]
    except ValueError as exc:
        return f"{naming!r} is not a format string: {exc}"
    unknown = sorted({field for field in fields if field not in ("pool", "n")})
    if unknown:
        return f"{naming!r} uses {', '.join('{' + f + '}' for f in unknown)}; only {{pool}} and {{n}} are known"
    if "n" not in fields:
        return f"{naming!r} has no {{n}} (the desktop's number), so every desktop would get the same name"
    try:
        first, second = name_of(naming, pool, 1), name_of(naming, pool, 2)
    except (ValueError, TypeError) as exc:
        return f"{naming!r} cannot format a desktop's number: {exc}"
    if first == second:
        return f"{naming!r} gives desktops 1 and 2 the same name"
    return None


def name_of(naming: str, pool: str, number: int) -> str:
    return naming.format(pool=pool, n=number)


def number_of(naming: str, pool: str, name: str) -> int | None:
    """The number of desktop ``name`` of ``pool``, or None when the pattern did not make that name."""
    pattern = ""
    for literal, field, spec, _conversion in string.Formatter().parse(naming):
        pattern += re.escape(literal)
        if field == "pool":
            pattern += re.escape(format(pool, spec or ""))
        elif field == "n":
            pattern += r"(\d+)"
    match = re.fullmatch(pattern, name)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number >= 1 and name_of(naming, pool, number) == name else None
