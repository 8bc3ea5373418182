"""An endpoint kind for tests: the in-memory hypervisor of tests/unit/memory_hypervisor.py, kept in a JSON
file so the plugin (another process) serves it while the test seeds and inspects it.

Registered in the plugin process with ``VIRTPLANE_EXTRA_KINDS=memory=tests.support.memory_endpoint:
FileProvider``. Its rules are MemoryDriver's (``thin`` replaces, ``firmware`` powers off, a shrink is
refused); it reads by stable id (``observe_ids``), guards ownership like the real drivers, and records every
read pass so tests can count round trips. Its hosts (``hosts`` in the file) are where placement puts VMs
and the only nodes a VM may name. A ``password`` setting must match the file's, as a login would.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from tests.unit.memory_hypervisor import MemoryDriver
from virtplane.errors import ConnectionFailed, OwnershipError, SpecError
from virtplane.providers.base import Created, FieldChange, Observed, ObserveResult, Owner, Provider
from virtplane.specs import Spec

_BARRIER_LOCK = threading.Lock()
ENV = {"path": "MEMORY_HYPERVISOR_PATH", "username": "MEMORY_HYPERVISOR_USER",
       "password": "MEMORY_HYPERVISOR_PASSWORD"}


class FileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    username: str | None = None
    password: SecretStr | None = None


class Store:
    """The hypervisor's state: ``objects`` kind -> id -> {name, owner, state}; ``calls`` [kind, op, ids]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def open(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            data.setdefault("objects", {"Network": {}, "VirtualMachine": {}})
            data.setdefault("calls", [])
            data.setdefault("next", 1)
            yield data
            self.path.write_text(json.dumps(data, indent=1))

    def read(self) -> dict[str, Any]:
        with self.open() as data:
            return data

    def add(self, kind: str, name: str, state: dict[str, Any], owner: Owner | None) -> str:
        """An object made behind virtplane's back (or by it, when ``owner`` is given); returns its id."""
        with self.open() as data:
            object_id = f"{kind[:2].lower()}-{data['next']}"
            data["next"] += 1
            data["objects"][kind][object_id] = {"name": name, "owner": owner.encode() if owner else None,
                                                "state": state}
            return object_id


class FileDriver(MemoryDriver):
    def __init__(self, kind: str, store: Store) -> None:
        super().__init__(kind)
        self.store = store

    def _observed(self, object_id: str, entry: dict[str, Any]) -> Observed:
        return Observed(entry["name"], object_id, Owner.decode(entry["owner"]), dict(entry["state"]), id=object_id)

    def observe(self, stack: str, declared: Any) -> ObserveResult:
        names = declared.get(self.kind, {})
        result = ObserveResult()
        with self.store.open() as data:
            data["calls"].append([self.kind, "observe", 0])
            for object_id, entry in data["objects"][self.kind].items():
                seen = self._observed(object_id, entry)
                if seen.owner is not None and seen.owner.stack == stack:
                    result.owned[seen.owner.resource] = seen
                elif seen.name in names:
                    result.foreign[seen.name] = seen
        return result

    def observe_ids(self, stack: str, ids: list[str], declared: Any) -> dict[str, Observed]:
        with self.store.open() as data:
            if data.get("chatty"):  # a client library that prints on stdout
                print(f"chatty library: reading {len(ids)} ids", flush=True)
            data["calls"].append([self.kind, "observe_ids", len(ids)])
            objects = data["objects"][self.kind]
            return {i: self._observed(i, objects[i]) for i in ids if i in objects}

    _barrier: threading.Barrier | None = None

    def create(self, owner: Owner, spec: Spec) -> Created:
        together = self.store.read().get("creates_together")
        if together:  # wait until that many creates run at once (a test of the plugin's concurrency)
            with _BARRIER_LOCK:
                if FileDriver._barrier is None or FileDriver._barrier.parties != together:
                    FileDriver._barrier = threading.Barrier(together)
            FileDriver._barrier.wait(timeout=30)
        state = spec.model_dump()
        object_id = self.store.add(self.kind, owner.resource, state, owner)
        return Created(object_id, state)

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        self._guard(observed, "update")
        with self.store.open() as data:
            entry = data["objects"][self.kind][observed.handle]
            entry["state"] = _merged(entry["state"], spec.model_dump())

    def delete(self, observed: Observed) -> None:
        self._guard(observed, "delete")
        with self.store.open() as data:
            data["objects"][self.kind].pop(observed.handle, None)

    def check(self, spec: Spec, declared: Any) -> list[tuple[str, str]]:
        node = getattr(spec, "node", None)
        hosts = self.store.read().get("hosts") or []
        if node is not None and node not in hosts:
            return [("node", f"no host named {node!r} on this endpoint; hosts: {', '.join(hosts) or 'none'}")]
        return []

    def place(self, spec: Any, placed: Any) -> str | None:
        self.hosts = self.store.read().get("hosts") or []
        return super().place(spec, placed)

    @staticmethod
    def _guard(observed: Observed, action: str) -> None:
        if observed.owner is None:
            raise OwnershipError(f"refusing to {action} {observed.name}: it carries no virtplane ownership marker")


def _merged(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The live state with every managed (non-None) field of ``desired``; disks/NICs by slot."""
    state = dict(live)
    for key, value in desired.items():
        if value is None:
            continue
        if key in ("disks", "nics"):
            by_slot = {item.get("slot"): item for item in live.get(key) or []}
            value = [{**by_slot.get(item.get("slot"), {}), **{k: v for k, v in item.items() if v is not None}}
                     for item in value]
        state[key] = value
    return state


class FileProvider(Provider):
    name = "memory"
    settings_model = FileSettings
    identity_settings = frozenset({"path"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self.drivers = {kind: FileDriver(kind, store) for kind in ("Network", "VirtualMachine")}

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        values = {key: inputs.get(key, environ.get(variable)) for key, variable in ENV.items()}
        if not values["path"]:
            raise SpecError("Endpoint", endpoint, [("path", f"is not set: pass path=… or set {ENV['path']}")])
        return FileSettings.model_validate({k: v for k, v in values.items() if v is not None})

    @classmethod
    def connect(cls, settings: BaseModel) -> FileProvider:
        config: FileSettings = settings  # type: ignore[assignment]
        store = Store(config.path)
        expected = store.read().get("password")
        given = config.password.get_secret_value() if config.password else None
        if expected is not None and given != expected:
            raise ConnectionFailed(f"memory endpoint {config.path}: login refused for user {config.username}")
        return cls(store)

    def identity(self) -> str:
        return str(self.store.path)

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """This hypervisor's own naming rule: no upper-case letters."""
        return "must hold no upper-case letters on this hypervisor" if name != name.lower() else None
