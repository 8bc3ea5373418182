"""Reads served from batched observes, cached for the life of the plugin process (one ``pulumi`` run).

``pulumi refresh`` sends one Read per resource, N of them, in parallel or not. The first Read of a kind
runs ONE ``observe`` of everything this stack owns of that kind on the endpoint (the driver's batched pass:
one PropertyCollector round trip on vSphere, one cluster listing plus the owned VMs' configs in parallel
on Proxmox) and indexes it by stable id; every other Read of the refresh is answered from that index with
no round trip, whatever order or parallelism the engine uses. An id the pass did not find (an import of an
object made elsewhere, another stack's object) is read with ``observe_ids``; ids asked for at about the same
time share one call. So a refresh of N resources costs O(1) round trips per endpoint and kind (plus the
per-VM config reads Proxmox's API cannot batch), where a bridged Terraform provider makes one read per
resource. What we change ourselves (create, update, delete) is dropped from the cache.

Creates ask first for an object already carrying their resource's marker (an interrupted create's,
``claimed``): one ``observe`` declares the names asked for at about the same time and those Check saw for new
resources, and keeps the answers for their Creates (a stack's creates cost one read, not one each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from virtplane.providers.base import Declared, KindDriver, Observed
from virtplane.specs import Spec

BATCH_WINDOW_SECONDS = 0.005  # how long keys asked for wait for company; correctness does not depend on it
T = TypeVar("T")


class Batches(Generic[T]):
    """Keys of one group asked for at about the same time are answered by one call of ``run(keys)``; keys asked
    for while a call runs start the next one. Every waiter of a failed call gets its failure."""

    def __init__(self) -> None:
        self._pending: dict[str, dict[str, asyncio.Future[T | None]]] = {}
        self._collecting: dict[str, asyncio.Task[None]] = {}

    async def ask(self, group: str, key: str, run: Callable[[list[str]], Awaitable[Mapping[str, T]]]) -> T | None:
        pending = self._pending.setdefault(group, {})
        future = pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            pending[key] = future
            if group not in self._collecting:
                self._collecting[group] = asyncio.ensure_future(self._run(group, run))
        return await asyncio.shield(future)

    async def _run(self, group: str, run: Callable[[list[str]], Awaitable[Mapping[str, T]]]) -> None:
        await asyncio.sleep(BATCH_WINDOW_SECONDS)
        self._collecting.pop(group, None)
        batch = self._pending.pop(group, {})
        try:
            found = await run(list(batch))
        except BaseException as error:
            for future in batch.values():
                if not future.done():
                    future.set_exception(error)
            return
        for key, future in batch.items():
            if not future.done():
                future.set_result(found.get(key))


@dataclass(frozen=True)
class Claimed:
    """What carries a resource's marker (``owned``), or holds its name without being ours (``foreign``)."""

    owned: Observed | None = None
    foreign: Observed | None = None


class Reads:
    def __init__(self) -> None:
        self._owned: dict[str, asyncio.Task[dict[str, Observed]]] = {}
        self._owned_declared: dict[str, Declared] = {}  # kind -> what its owned pass was told the stack declares
        self._by_id: dict[tuple[str, str], Observed | None] = {}
        self._ids: Batches[Observed] = Batches()
        self._claims: Batches[Claimed] = Batches()
        self._claim_specs: dict[tuple[str, str], Spec] = {}
        self._claimed: dict[tuple[str, str], Claimed] = {}  # answers kept for Creates still to come
        self.passes: list[tuple[str, str, int]] = []  # (kind, "observe"|"observe_ids", ids asked): for tests

    async def owned(self, driver: KindDriver, stack: str, declared: Callable[[], Any]) -> dict[str, Observed]:
        """Everything of this kind the stack owns on the endpoint, by stable id (one observe per process)."""
        kind = driver.kind
        task = self._owned.get(kind)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._observe_owned(driver, stack, declared))
            self._owned[kind] = task
        return await asyncio.shield(task)

    def owned_pass_declared(self, kind: str) -> Declared | None:
        """What the owned pass of ``kind`` was told the stack declares (None before it started)."""
        return self._owned_declared.get(kind)

    async def _observe_owned(self, driver: KindDriver, stack: str, declared: Callable[[], Any]
                             ) -> dict[str, Observed]:
        known: Declared = await declared()
        self._owned_declared[driver.kind] = known
        self.passes.append((driver.kind, "observe", 0))
        result = await asyncio.to_thread(driver.observe, stack, known)
        return {live.id: live for live in result.owned.values() if live.id is not None}

    async def lookup(self, driver: KindDriver, stack: str, resource_id: str, declared: Callable[[], Any],
                     *, through_owned_pass: bool = False, fresh: bool = False) -> Observed | None:
        """The object with this id, or None when it does not exist. ``through_owned_pass``: try the stack's
        batched pass first (a refresh); otherwise read just this id (an import). ``fresh``: read it again
        whatever is cached (before changing it)."""
        key = (driver.kind, resource_id)
        if not fresh and key in self._by_id:
            return self._by_id[key]
        if not fresh and through_owned_pass:
            found = (await self.owned(driver, stack, declared)).get(resource_id)
            if found is not None:
                return found

        async def read(ids: list[str]) -> Mapping[str, Observed]:
            known: Declared = await declared()
            self.passes.append((driver.kind, "observe_ids", len(ids)))
            found = await asyncio.to_thread(driver.observe_ids, stack, ids, known)
            for asked in ids:
                self._by_id[(driver.kind, asked)] = found.get(asked)
            return found

        return await self._ids.ask(driver.kind, resource_id, read)

    async def claimed(self, driver: KindDriver, stack: str, name: str, spec: Spec, declared: Callable[[], Any],
                      candidates: Callable[[], Mapping[str, Spec]] = dict) -> Claimed:
        """The object carrying this resource's marker, or holding its name (read before this process changed
        anything about it). One ``observe`` declares every name asked for at about the same time and every one of
        ``candidates`` (resources this process may create next, not asked for yet), whose answers it keeps for
        their own Creates, so creating a stack's objects costs one read, not one per object."""
        kind = driver.kind
        cached = self._claimed.pop((kind, name), None)
        if cached is not None:
            return cached
        self._claim_specs[(kind, name)] = spec

        async def read(names: list[str]) -> Mapping[str, Claimed]:
            known: Declared = dict(await declared())
            asked = {n: self._claim_specs.pop((kind, n)) for n in names}
            others = {n: s for n, s in candidates().items() if n not in asked and (kind, n) not in self._claimed}
            known = {**known, kind: {**known.get(kind, {}), **others, **asked}}
            self.passes.append((kind, "observe", len(asked) + len(others)))
            result = await asyncio.to_thread(driver.observe, stack, known)
            for other in others:
                self._claimed[(kind, other)] = Claimed(result.owned.get(other), result.foreign.get(other))
            return {n: Claimed(result.owned.get(n), result.foreign.get(n)) for n in names}

        return await self._claims.ask(kind, name, read) or Claimed()

    def forget(self, kind: str, resource_id: str) -> None:
        """Drop what we know of one object (we just changed it)."""
        self._by_id.pop((kind, resource_id), None)
        for key, claimed in list(self._claimed.items()):
            if key[0] == kind and claimed.owned is not None and claimed.owned.id == resource_id:
                del self._claimed[key]
        task = self._owned.get(kind)
        if task is not None and task.done() and task.exception() is None:
            task.result().pop(resource_id, None)
