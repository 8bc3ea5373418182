"""The ownership marker on Proxmox: the tag ``virtplane`` plus a ``virtplane.owner:`` line in the description.

Creating a VM writes both at once. Cloning one writes the description (the clone call takes a description
but no tags), and the update that follows adds the tag; a VM with the description line but not the tag is
one whose clone was interrupted (``marker_complete=False``), and the next apply finishes it. Only the
description names stack and resource; the tag makes our VMs cheap to find in ``/cluster/resources``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MARKER_TAG = "virtplane"
TAG_SEPARATORS = re.compile(r"[;,\s]+")


def split_tags(text: str | None) -> list[str]:
    """PVE's tag list (``a;b``; older versions also wrote commas or spaces) as a list."""
    return [tag for tag in TAG_SEPARATORS.split(text or "") if tag]


def user_tags(text: str | None) -> list[str]:
    """The tags a stack declared: everything but our marker tag, sorted."""
    return sorted({tag for tag in split_tags(text) if tag != MARKER_TAG})


def has_marker_tag(text: str | None) -> bool:
    return MARKER_TAG in split_tags(text)


def encode_tags(tags: Iterable[str]) -> str:
    """The value of ``tags`` for a VM we own: the user's tags and the marker tag."""
    return ";".join(sorted({*tags, MARKER_TAG}))
