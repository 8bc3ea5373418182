"""Faults tests switch on through the control endpoint: drop the connection when a cmdlet is reached,
be slow before a cmdlet, and reboot (lose every runspace)."""

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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, *, drop: str | None = None, times: int = 1, slow: str | None = None,
                  seconds: float = 0.0) -> None:
        with self.lock:
            if drop:
                self.drop_at[drop.lower()] = times
            if slow:
                self.slow[slow.lower()] = seconds

    def clear(self) -> None:
        with self.lock:
            self.drop_at.clear()
            self.slow.clear()

    def before(self, cmdlet: str) -> None:
        """Called before ``cmdlet`` runs: sleep and/or drop the connection, as configured."""
        name = cmdlet.lower()
        with self.lock:
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
            return {"drop_at": dict(self.drop_at), "slow": dict(self.slow)}
