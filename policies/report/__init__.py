"""Reporters for a policy Report, one per format: text (rich), json, sarif (2.1.0), junit (XML)."""

from __future__ import annotations

import os
from pathlib import Path

FORMATS = ("text", "json", "sarif", "junit")


def display_path(file: str | None, base: Path) -> str | None:
    """``file`` relative to ``base`` (the directory the command runs in, normally the repository root) when it is
    inside it, else as it is; '/' separators."""
    if file is None:
        return None
    try:
        return Path(os.path.relpath(Path(file).resolve(), base.resolve())).as_posix() \
            if Path(file).resolve().is_relative_to(base.resolve()) else Path(file).as_posix()
    except ValueError:
        return Path(file).as_posix()
