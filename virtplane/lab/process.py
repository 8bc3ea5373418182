"""A simulator process the lab started in its own session: is it alive, stop it."""

from __future__ import annotations

import os
import signal
import time


def alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    except ChildProcessError:
        pass  # started by another process (e.g. `virtplane lab up`)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
