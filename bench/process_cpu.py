"""CPU seconds a process has used so far, for the benchmarks' client and server CPU columns."""

from __future__ import annotations

import os
from pathlib import Path


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (Linux /proc); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
