"""Simulator processes the lab starts in their own session: launch, wait until ready, check, stop."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from virtplane.errors import VirtplaneError


@dataclass(kw_only=True)
class Simulator:
    """A running simulator: its process, how to log in, and how to verify its certificate."""

    password_variable: ClassVar[str]  # the environment variable an Endpoint reads the password from

    pid: int
    ca_file: str
    password_file: str
    user: str

    @property
    def password(self) -> str:
        return Path(self.password_file).read_text().strip()

    def settings(self) -> dict[str, str]:
        """The environment variables an Endpoint reads to reach this simulator, all but the password."""
        raise NotImplementedError

    def environ(self) -> dict[str, str]:
        """Every variable an Endpoint reads to reach this simulator, the password included."""
        return {**self.settings(), self.password_variable: self.password}

    def shell_exports(self) -> list[str]:
        """``export`` lines for a shell; the password is read from its file, never printed."""
        return [f"export {name}={shlex.quote(value)}" for name, value in self.settings().items()] + [
            f'export {self.password_variable}="$(cat {shlex.quote(self.password_file)})"']

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def alive(self) -> bool:
        return alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        stop(self.pid, timeout)


def new_password(run_dir: Path) -> Path:
    """A random password in a file only its owner can read."""
    password_file = run_dir / "password"
    password_file.write_text(secrets.token_urlsafe(18))
    password_file.chmod(0o600)
    return password_file


def launch(args: list[str], run_dir: Path, what: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """Start ``args`` in its own session (it outlives this process) in ``run_dir``; wait for the first
    JSON line it prints once it serves. Returns its pid and that line."""
    ready_file = run_dir / "ready.json"
    log_file = run_dir / "simulator.log"
    ready_file.unlink(missing_ok=True)
    with open(ready_file, "w") as out, open(log_file, "w") as log:
        child = subprocess.Popen(args, stdout=out, stderr=log, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=run_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ready_file.read_text().strip()
        if text:
            return child.pid, json.loads(text.splitlines()[0])
        if child.poll() is not None:
            raise VirtplaneError(f"the {what} exited during start-up: {log_file.read_text().strip()[-500:]}")
        time.sleep(0.05)
    child.kill()
    raise VirtplaneError(f"the {what} did not start within {timeout:.0f} s")


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
