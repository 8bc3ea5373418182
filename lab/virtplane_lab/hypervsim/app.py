"""Wires one simulated host together: state, cmdlets, engine, shells, faults and the listener, plus the
control endpoint's actions (``/hypervsim/<action>``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import (  # noqa: F401 - registration
    cmdlets_devices,
    cmdlets_dvd,
    cmdlets_host,
    cmdlets_network,
    cmdlets_storage,
    cmdlets_vm,
    snapshots,
)
from .auth import write_ntlm_user_file
from .engine import REGISTRY, Engine
from .faults import Faults
from .hostfile import load as load_host
from .model import Host
from .server import Endpoint
from .shells import Shells


class Simulator:
    def __init__(self, *, host_name: str, profile: str, user: str, password: str, work_dir: Path,
                 command_log: Path | None, state_dump: Path | None) -> None:
        self.host = Host(name=host_name, hardware=load_host(profile))
        self.user = user
        self.password = password
        self.faults = Faults()
        self.engine = Engine(self.host, self.faults, command_log)
        self.shells = Shells(self.engine.run)
        self.state_dump = state_dump
        self.tls = False
        write_ntlm_user_file(work_dir / "ntlm-users", user, password, host_name)
        self.work_dir = work_dir
        self.endpoint: Endpoint | None = None

    def listen(self, address: str, port: int, cert_out: Path | None) -> None:
        self.endpoint = Endpoint((address, port), user=self.user, password=self.password, shells=self.shells,
                                 faults=self.faults, control=self.control)
        if cert_out is not None:
            from .tls import server_context

            context = server_context(cert_out, address, self.work_dir)
            self.endpoint.socket = context.wrap_socket(self.endpoint.socket, server_side=True)
            self.tls = True

    def ready(self) -> dict[str, Any]:
        assert self.endpoint is not None
        host, port = self.endpoint.server_address[:2]
        scheme = "https" if self.tls else "http"
        where = f"[{host}]" if ":" in str(host) else str(host)
        return {"url": f"{scheme}://{where}:{port}/wsman", "host": str(host), "port": port, "tls": self.tls,
                "control": f"{scheme}://{where}:{port}/hypervsim/", "host_name": self.host.name}

    def serve_forever(self) -> None:
        assert self.endpoint is not None
        self.endpoint.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.dump()

    def dump(self) -> dict[str, Any]:
        with self.host.lock:
            state = self.host.dump()
        if self.state_dump is not None:
            self.state_dump.write_text(json.dumps(state, indent=1))
        return state

    def control(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``fault`` {drop, times, slow, seconds}; ``clear``; ``reboot``; ``state``; ``dump``; ``cmdlets``."""
        if action == "fault":
            self.faults.configure(drop=payload.get("drop"), times=int(payload.get("times", 1)),
                                  slow=payload.get("slow"), seconds=float(payload.get("seconds", 0.0)),
                                  gather=payload.get("gather"), count=int(payload.get("count", 2)))
            return self.faults.snapshot()
        if action == "clear":
            self.faults.clear()
            return self.faults.snapshot()
        if action == "reboot":
            lost = self.shells.reboot()
            with self.host.lock:
                for vm in self.host.vms:  # the stop action on shutdown, the start action on boot
                    was_running = vm.state == "Running"
                    if was_running:
                        vm.state = "Saved" if vm.automatic_stop_action == "Save" else "Off"
                    if vm.automatic_start_action == "Start" or (
                            was_running and vm.automatic_start_action == "StartIfRunning"):
                        vm.state = "Running"
            return {"runspaces_lost": lost}
        if action in ("state", "dump"):
            return {**self.dump(), "shells": self.shells.count(), "most_pipelines_at_once": self.engine.most_at_once}
        if action == "seed":
            from .seeding import seed

            with self.host.lock:
                return seed(self.host, payload)
        if action == "cmdlets":
            return {"cmdlets": sorted((c.name, sorted(c.params)) for c in REGISTRY.values())}
        raise KeyError(f"unknown control action {action!r}")

