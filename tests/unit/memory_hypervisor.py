"""An in-memory hypervisor implementing the driver contract, for testing the planner and executor."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from virtplane.providers.base import (
    Created,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Provider,
    RefusedChange,
    Rule,
)
from virtplane.specs import Spec


class MemoryDriver(KindDriver):
    def __init__(self, kind: str, fail_on: set[str] | None = None) -> None:
        self.kind = kind  # type: ignore[misc]
        self.replaceable = frozenset({"disks"}) if kind == "VirtualMachine" else frozenset()  # type: ignore[misc]
        self.delivers = frozenset({"cloud_init"}) if kind == "VirtualMachine" else frozenset()  # type: ignore[misc]
        self.objects: dict[str, tuple[Owner | None, dict[str, Any]]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on or set()
        self.running = 0
        self.max_running = 0
        self.hosts: list[str] = []
        self.restore: dict[str, str] = {}  # name -> the power state recorded to restore (providers/marker.py)
        self._lock = threading.Lock()

    def observe(self, stack, declared):
        names = declared.get(self.kind, {})
        result = ObserveResult()
        for name, (owner, state) in self.objects.items():
            seen = Observed(name, name, owner, dict(state), restore_power=self.restore.get(name))
            if owner is not None and owner.stack == stack:
                result.owned[owner.resource] = seen
            elif name in names:
                result.foreign[name] = seen
        return result

    def _record(self, op: str, name: str) -> None:
        with self._lock:
            self.calls.append((op, name))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if name in self.fail_on:
                from virtplane.errors import ProviderError
                raise ProviderError(f"{self.kind} '{name}': the hypervisor said no")
            import time
            time.sleep(0.01)
        finally:
            with self._lock:
                self.running -= 1

    def create(self, owner: Owner, spec: Spec) -> Created:
        self._record("create", owner.resource)
        self.objects[owner.resource] = (owner, spec.model_dump())
        return Created(owner.resource, spec.model_dump())

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        self._record("update", observed.name)
        self.objects[observed.name] = (observed.owner, spec.model_dump())
        self.restore.pop(observed.name, None)

    def delete(self, observed: Observed) -> None:
        self._record("delete", observed.name)
        self.objects.pop(observed.name, None)

    def place(self, spec, placed):
        if not self.hosts:
            return None
        return min(self.hosts, key=lambda host: (placed.get(host, 0), host))

    def rule(self, change: FieldChange) -> Rule:
        if change.path.endswith(".size") and change.old is not None and change.new < change.old:
            raise RefusedChange("shrinking a disk is not possible")
        if change.path.endswith(".thin"):
            return Rule.REPLACE
        if change.path == "firmware":
            return Rule.POWER_OFF
        return Rule.IN_PLACE


class MemoryProvider(Provider):
    name = "memory"
    settings_model = BaseModel

    def __init__(self, fail_on: set[str] | None = None, backend: str | None = None) -> None:
        self.drivers = {kind: MemoryDriver(kind, fail_on) for kind in ("Network", "VirtualMachine")}
        self.backend = backend

    def identity(self) -> str:
        if self.backend is None:
            raise NotImplementedError
        return self.backend

    @classmethod
    def settings_from(cls, endpoint, inputs, environ):
        return BaseModel()

    @classmethod
    def connect(cls, settings):
        return cls()

    def driver(self, kind: str) -> MemoryDriver:
        return self.drivers[kind]
