"""Where a command's time goes: with ``VIRTPLANE_TIMINGS=1``, ``plan`` and ``drift`` print their phases on stderr.

The phases follow each other; ``mark(name)`` charges the time since the previous mark to ``name`` (a phase may
recur: every endpoint's and kind's read is charged to "read", the planning between them to "diff"). The first
phase starts when the process did (Linux: /proc/self/stat), so it holds the interpreter's start and the imports.
"""

from __future__ import annotations

import os
import sys
import time

ENVIRONMENT = "VIRTPLANE_TIMINGS"
FIRST = "interpreter + imports"


def _process_age() -> float:
    """Seconds since this process started (0 where the system does not say)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: ticks after boot
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


_phases: dict[str, float] = {}
_last = time.perf_counter() - _process_age()


def mark(name: str) -> None:
    """Charge the time since the previous mark to phase ``name``."""
    global _last
    now = time.perf_counter()
    _phases[name] = _phases.get(name, 0.0) + now - _last
    _last = now


def begin() -> None:
    """Charge everything so far (start-up, imports, parsing the command line) to the first phase."""
    mark(FIRST)


def phases() -> dict[str, float]:
    return dict(_phases)


def report() -> None:
    """Print the phases on stderr when ``VIRTPLANE_TIMINGS`` is set."""
    if not os.environ.get(ENVIRONMENT):
        return
    parts = [f"{name} {seconds:.3f} s" for name, seconds in _phases.items()]
    sys.stderr.write(f"timings: {' · '.join(parts)} · total {sum(_phases.values()):.3f} s\n")
