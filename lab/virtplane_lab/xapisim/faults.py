"""Faults tests switch on through the control endpoint, on top of the Hyper-V simulator's (drop the connection
when a call is reached, be slow before it): ``drop`` with ``when="after"`` runs the call and then closes the
connection without answering (the client cannot tell whether it happened); ``slow`` on an ``Async`` call keeps its
task pending that long (a slow task)."""

from __future__ import annotations

from dataclasses import dataclass, field

from virtplane_lab.hypervsim.faults import DropConnection
from virtplane_lab.hypervsim.faults import Faults as _Faults

__all__ = ["DropConnection", "Faults"]


@dataclass
class Faults(_Faults):
    drop_after: dict[str, int] = field(default_factory=dict)  # method (lower case) -> how many more times

    def configure_after(self, method: str, times: int = 1) -> None:
        with self.lock:
            self.drop_after[method.lower()] = times

    def after(self, method: str) -> None:
        """Called once ``method`` has run: drop the connection, as configured."""
        name = method.lower()
        with self.lock:
            drop = self.drop_after.get(name, 0) > 0
            if drop:
                self.drop_after[name] -= 1
                if not self.drop_after[name]:
                    del self.drop_after[name]
        if drop:
            raise DropConnection(method)

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.drop_after.clear()

    def snapshot(self) -> dict[str, object]:
        base = super().snapshot()
        with self.lock:
            return {**base, "drop_after": dict(self.drop_after)}

    def delay(self, method: str) -> float:
        with self.lock:
            return self.slow.get(method.lower(), 0.0)
