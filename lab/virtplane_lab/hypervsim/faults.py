"""Faults tests switch on through the control endpoint: drop the connection when a cmdlet is reached,
be slow before a cmdlet, hold pipelines at a cmdlet until several have arrived (proof that a client runs them at
the same time, without measuring time), and reboot (lose every runspace)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


class DropConnection(Exception):
    """Close the client's TCP connection without answering the current request."""


@dataclass
class Faults:
    drop_at: dict[str, int] = field(default_factory=dict)  # cmdlet (lower case) -> how many more times
    slow: dict[str, float] = field(default_factory=dict)  # cmdlet (lower case) -> seconds before it runs
    gather_at: str = ""  # cmdlet (lower case) at which pipelines wait for each other
    gather_count: int = 0
    gather_seconds: float = 0.0
    arrived: int = 0
    gathered: bool = False  # True once gather_count pipelines were at gather_at at the same time
    lock: threading.Lock = field(default_factory=threading.Lock)
    _met: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._met = threading.Condition(self.lock)

    def configure(self, *, drop: str | None = None, times: int = 1, slow: str | None = None,
                  seconds: float = 0.0, gather: str | None = None, count: int = 2) -> None:
        with self.lock:
            if drop:
                self.drop_at[drop.lower()] = times
            if slow:
                self.slow[slow.lower()] = seconds
            if gather:
                self.gather_at, self.gather_count, self.gather_seconds = gather.lower(), count, seconds or 30.0
                self.arrived, self.gathered = 0, False

    def clear(self) -> None:
        with self.lock:
            self.drop_at.clear()
            self.slow.clear()
            self.gather_at, self.arrived = "", 0
            self._met.notify_all()

    def _gather(self) -> None:
        """Wait (lock held) until ``gather_count`` pipelines have reached the gathering cmdlet, or time out."""
        self.arrived += 1
        if self.arrived >= self.gather_count:
            self.gathered = True
            self._met.notify_all()
            return
        self._met.wait_for(lambda: self.gathered or not self.gather_at, timeout=self.gather_seconds)

    def before(self, cmdlet: str) -> None:
        """Called before ``cmdlet`` runs: sleep and/or drop the connection, as configured."""
        name = cmdlet.lower()
        with self.lock:
            if name == self.gather_at:
                self._gather()
            delay = self.slow.get(name, 0.0)
            drop = self.drop_at.get(name, 0) > 0
            if drop:
                self.drop_at[name] -= 1
                if not self.drop_at[name]:
                    del self.drop_at[name]
        if delay:
            time.sleep(delay)
        if drop:
            raise DropConnection(cmdlet)

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"drop_at": dict(self.drop_at), "slow": dict(self.slow), "gathered": self.gathered,
                    "arrived": self.arrived}
