"""Wires the simulated pool together: the pool and its seed, the master's listener and a pool member's, TLS,
and the control endpoint's actions (``/xapisim/<action>``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from virtplane_lab.hypervsim.tls import server_context

from . import gpu, network, pool, storage, tasks, vm  # noqa: F401 - registration of the messages
from .pool import XapiPool
from .seed import HOSTS, seed
from .server import Listener

MASTER, MEMBER = HOSTS[0]["address"], HOSTS[1]["address"]
BIND_ATTEMPTS = 20


class Simulator:
    def __init__(self, *, user: str, password: str, work_dir: Path) -> None:
        self.pool = XapiPool(user, password)
        seed(self.pool)
        self.work_dir = work_dir
        self.calls: list[str] = []
        self.calls_lock = threading.Lock()
        self.master: Listener | None = None
        self.member: Listener | None = None
        self.tls = False

    def listen(self, port: int, cert_out: Path | None) -> None:
        """The master on 127.0.0.1 and a member (xs-sriov) on 127.0.0.2, on one port, as a pool's hosts share
        one: a client sent to the member follows HOST_IS_SLAVE to the master's address on the same port."""
        for _ in range(BIND_ATTEMPTS):
            master = self._listener(MASTER, port, member=False)
            try:
                member = self._listener(MEMBER, master.server_address[1], member=True)
            except OSError:
                master.server_close()
                if port:
                    raise
                continue
            self.master, self.member = master, member
            break
        else:
            raise OSError(f"no port free on both {MASTER} and {MEMBER}")
        if cert_out is not None:
            context = server_context(cert_out, MASTER, self.work_dir, also=(MEMBER,))
            for listener in (self.master, self.member):
                listener.socket = context.wrap_socket(listener.socket, server_side=True)
            self.tls = True

    def _listener(self, address: str, port: int, *, member: bool) -> Listener:
        return Listener((address, port), self.pool, member=member, control=self.control, calls=self.calls,
                        calls_lock=self.calls_lock)

    def ready(self) -> dict[str, Any]:
        assert self.master is not None
        port = self.master.server_address[1]
        scheme = "https" if self.tls else "http"
        return {"url": f"{scheme}://{MASTER}:{port}/", "member_url": f"{scheme}://{MEMBER}:{port}/",
                "host": MASTER, "port": port, "tls": self.tls, "control": f"{scheme}://{MASTER}:{port}/xapisim/"}

    def serve_forever(self) -> None:
        assert self.master is not None and self.member is not None
        threading.Thread(target=self.member.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        self.master.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        for listener in (self.master, self.member):
            if listener is not None:
                listener.server_close()

    def control(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``fault`` {drop, when: before|after, times, slow, seconds}; ``clear``; ``reset`` (a freshly seeded pool,
        faults cleared, call log emptied); ``calls`` (the methods called, in order); ``objects`` (how many of
        each class)."""
        faults = self.pool.faults
        if action == "fault":
            if payload.get("drop") and payload.get("when", "before") == "after":
                faults.configure_after(str(payload["drop"]), int(payload.get("times", 1)))
            else:
                faults.configure(drop=payload.get("drop"), times=int(payload.get("times", 1)),
                                 slow=payload.get("slow"), seconds=float(payload.get("seconds", 0.0)))
            return faults.snapshot()
        if action == "clear":
            faults.clear()
            return faults.snapshot()
        if action == "reset":
            faults.clear()
            self.pool.reset(seed)
            with self.calls_lock:
                self.calls.clear()
            return {"reset": True}
        if action == "calls":
            with self.calls_lock:
                return {"calls": list(self.calls)}
        if action == "objects":
            with self.pool.db.lock:
                return {cls: len(objects) for cls, objects in self.pool.db.objects.items()}
        raise KeyError(f"unknown control action {action!r}")
