"""`virtplane drift STACK --json` as its own process, for the benchmarks' end-to-end rows: its wall time, exit code,
peak resident memory (the child's own, from wait4) and the phases it prints with VIRTPLANE_TIMINGS=1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PHASE = re.compile(r"([a-z +/]+?) (\d+\.\d+) s")


@dataclass
class CliRun:
    seconds: float
    returncode: int
    peak_rss_mib: float
    phases: dict[str, float] = field(default_factory=dict)
    stderr: str = ""

    def fixed(self) -> float:
        """The phases that do not read the endpoint: start-up and imports, evaluation, login, diff, report."""
        return sum(seconds for name, seconds in self.phases.items() if name not in ("read", "total"))

    def phase_text(self) -> str:
        return ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.phases.items() if name != "total")


def run_drift(stack_dir: Path, environ: dict[str, str], command: str = "drift") -> CliRun:
    env = dict(environ, VIRTPLANE_TIMINGS="1")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "virtplane", command, str(stack_dir), "--json"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    phases: dict[str, float] = {}
    for line in stderr.splitlines():
        if line.startswith("timings: "):
            for part in line[len("timings: "):].split(" · "):
                match = _PHASE.fullmatch(part.strip())
                if match:
                    phases[match.group(1)] = float(match.group(2))
    return CliRun(seconds, process.returncode, usage.ru_maxrss / 1024, phases, stderr)
