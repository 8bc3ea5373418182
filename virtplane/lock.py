"""A stack lock per endpoint, so two applies (or destroys) of one stack cannot interleave.

The lock is local and documented as such: one file per (stack, endpoint backend) under
``$VIRTPLANE_LOCK_DIR`` (default ``~/.local/state/virtplane/locks``), created atomically (O_EXCL) and holding
its holder (user, host, process id), command and start time. Two runs on one machine — or on machines
sharing that directory — exclude each other. A lock whose holder process no longer runs on this host is
stale: it is reported with its holder and age and never broken silently; ``--break-lock`` removes it.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from virtplane.errors import VirtplaneError


class StackLocked(VirtplaneError):
    """Another run holds the lock (or left a stale one)."""


def lock_dir() -> Path:
    configured = os.environ.get("VIRTPLANE_LOCK_DIR")
    return Path(configured) if configured else Path.home() / ".local" / "state" / "virtplane" / "locks"


def lock_path(stack: str, backend: str) -> Path:
    digest = hashlib.sha256(f"{stack}\n{backend}".encode()).hexdigest()[:24]
    return lock_dir() / f"{digest}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict[str, object], now: float) -> tuple[str, bool]:
    started = float(holder.get("started", now))  # type: ignore[arg-type]
    age = int(now - started)
    pid = int(holder.get("pid", 0))  # type: ignore[call-overload]
    stale = holder.get("host") == socket.gethostname() and not _alive(pid)
    since = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = (f"{holder.get('user')}@{holder.get('host')} (process {pid}, `{holder.get('command')}`) "
            f"since {since}, {age} s ago")
    return text, stale


def _take(path: Path, stack: str, backend: str, command: str, break_lock: bool) -> dict[str, object]:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(), "command": command,
              "started": time.time(), "stack": stack, "backend": backend}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            try:
                current = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                current = {}
            text, stale = _describe(current, time.time())
            if break_lock:
                path.unlink(missing_ok=True)
                continue
            if stale:
                raise StackLocked(f"stack {stack} on {backend} has a stale lock of {text}: that process no longer "
                                  "runs (it was stopped before it could remove its lock); check that no other run "
                                  f"of this stack is active, then pass --break-lock to remove it (lock file {path})"
                                  ) from None
            raise StackLocked(f"stack {stack} on {backend} is held by a lock of {text}; wait for it to finish, "
                              f"or pass --break-lock to remove it if no run is active (lock file {path})") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(holder, handle)
        return holder
    raise StackLocked(f"stack {stack} on {backend}: another run took the lock while it was being broken")


@contextlib.contextmanager
def stack_lock(stack: str, backends: list[str], command: str, *, break_lock: bool = False) -> Iterator[None]:
    """Hold the lock of ``stack`` on every backend (taken in sorted order, so runs cannot deadlock)."""
    taken: list[tuple[Path, dict[str, object]]] = []
    try:
        for backend in sorted(set(backends)):
            path = lock_path(stack, backend)
            taken.append((path, _take(path, stack, backend, command, break_lock)))
        yield
    finally:
        for path, holder in reversed(taken):
            _release(path, holder)


def _release(path: Path, holder: dict[str, object]) -> None:
    """Remove the lock file only while it is still ours (another run may have broken it and taken it since)."""
    try:
        current = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return
    if current.get("pid") == holder["pid"] and current.get("started") == holder["started"]:
        path.unlink(missing_ok=True)
