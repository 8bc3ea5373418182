"""vSphere's rule for the names of VMs and port groups, and how it stores them.

vSphere API reference, ``ManagedEntity.name``: "Any / (slash), \\ (backslash), character used in this name
element will be escaped. Similarly, any % (percent) character used in this name element will be escaped,
unless it is used to start an escape sequence. A slash is escaped as %2F or %2f. A backslash is escaped as
%5C or %5c, and a percent is escaped as %25." Names are limited to 80 characters, counted as stored, i.e.
escaped (VMware KB 2051649; the vSphere Client says "Up to 80 characters may be used (fewer if the
characters %, \\ or / are used)").

So a name may hold ``/``, ``\\`` and ``%``, each counting as three characters, and names read back are
unescaped before they are compared with declared ones. A ``%`` followed by two hex digits is refused: vSphere
takes it as an escape sequence and would read back a different name.
"""

from __future__ import annotations

import re

MAX_LENGTH = 80
_ESCAPES = {"%": "%25", "/": "%2f", "\\": "%5c"}
_ESCAPED = re.compile(r"%(25|2[fF]|5[cC])")
_SEQUENCE = re.compile(r"%[0-9A-Fa-f]{2}")


def escaped(name: str) -> str:
    """``name`` as vSphere stores it."""
    return "".join(_ESCAPES.get(char, char) for char in name)


def unescaped(stored: str) -> str:
    """A name read from vSphere as it was declared (``web%2f1`` -> ``web/1``)."""
    return _ESCAPED.sub(lambda match: {"25": "%", "2f": "/", "5c": "\\"}[match.group(1).lower()], stored)


def name_problem(name: str) -> str | None:
    """Why vSphere would refuse ``name`` or store it differently, or None."""
    if sequence := _SEQUENCE.search(name):
        return (f"must not hold '{sequence.group(0)}' on vSphere: a '%' followed by two hex digits is read as an "
                "escaped character, so the name would come back changed")
    length = len(escaped(name))
    if length > MAX_LENGTH:
        counted = " ('%', '/' and '\\' count as 3: vSphere stores them escaped)" if length != len(name) else ""
        return f"must be at most {MAX_LENGTH} characters on vSphere{counted}; it has {length}"
    return None
