"""The test session's libvirt daemon (the lab's, private, QEMU with TCG), started the first time a test needs it and
stopped when the session ends; ``fresh`` empties it for the test that asks."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import libvirt

from tests.support import libvirt as raw_libvirt
from virtplane_lab import libvirtd

_instance: libvirtd.LibvirtInstance | None = None
_used = False


def instance() -> libvirtd.LibvirtInstance:
    global _instance
    if _instance is None:
        work_dir = Path(tempfile.mkdtemp(prefix="virtplane-libvirtd-"))
        _instance = libvirtd.start(work_dir)
        atexit.register(_stop, _instance, work_dir)
    return _instance


def fresh() -> libvirtd.LibvirtInstance:
    """The session's daemon with no domain, volume or network but 'default'."""
    global _used
    _used = True
    empty()
    return instance()


def empty() -> None:
    conn = libvirt.open(instance().uri)
    try:
        raw_libvirt.empty(conn)
    finally:
        conn.close()


def used_since_last_call() -> bool:
    """Whether a test asked for the daemon since the last call (so it can be emptied after that test)."""
    global _used
    used, _used = _used, False
    return used


def stop() -> None:
    """Stop the session's daemon now, if it was started (the session's end calls it before it looks for processes
    left running; exiting does too)."""
    global _instance
    if _instance is not None:
        running, _instance = _instance, None
        running.stop()


def _stop(running: libvirtd.LibvirtInstance, work_dir: Path) -> None:
    running.stop()
    shutil.rmtree(work_dir, ignore_errors=True)
