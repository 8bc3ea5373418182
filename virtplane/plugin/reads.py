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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from virtplane.providers.base import Declared, KindDriver, Observed

BATCH_WINDOW_SECONDS = 0.005  # how long ids asked for by id wait for company; correctness does not depend on it


class Reads:
    def __init__(self) -> None:
        self._owned: dict[str, asyncio.Task[dict[str, Observed]]] = {}
        self._by_id: dict[tuple[str, str], Observed | None] = {}
        self._pending: dict[str, dict[str, asyncio.Future[Observed | None]]] = {}
        self._collecting: dict[str, asyncio.Task[None]] = {}  # kind -> the batch still gathering ids
        self.passes: list[tuple[str, str, int]] = []  # (kind, "observe"|"observe_ids", ids asked): for tests

    async def owned(self, driver: KindDriver, stack: str, declared: Callable[[], Any]) -> dict[str, Observed]:
        """Everything of this kind the stack owns on the endpoint, by stable id (one observe per process)."""
        kind = driver.kind
        task = self._owned.get(kind)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._observe_owned(driver, stack, declared))
            self._owned[kind] = task
        return await asyncio.shield(task)

    async def _observe_owned(self, driver: KindDriver, stack: str, declared: Callable[[], Any]
                             ) -> dict[str, Observed]:
        known: Declared = await declared()
        self.passes.append((driver.kind, "observe", 0))
        result = await asyncio.to_thread(driver.observe, stack, known)
        return {live.id: live for live in result.owned.values() if live.id is not None}

    async def lookup(self, driver: KindDriver, stack: str, resource_id: str, declared: Callable[[], Any],
                     *, through_owned_pass: bool = False, fresh: bool = False) -> Observed | None:
        """The object with this id, or None when it does not exist. ``through_owned_pass``: try the stack's
        batched pass first (a refresh); otherwise read just this id (an import). ``fresh``: read it again
        whatever is cached (before changing it)."""
        key = (driver.kind, resource_id)
        if fresh:
            return await self._read_by_id(driver, stack, resource_id, declared)
        if key in self._by_id:
            return self._by_id[key]
        if through_owned_pass:
            found = (await self.owned(driver, stack, declared)).get(resource_id)
            if found is not None:
                return found
        return await self._read_by_id(driver, stack, resource_id, declared)

    async def _read_by_id(self, driver: KindDriver, stack: str, resource_id: str, declared: Callable[[], Any]
                          ) -> Observed | None:
        kind = driver.kind
        pending = self._pending.setdefault(kind, {})
        future = pending.get(resource_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            pending[resource_id] = future
            if kind not in self._collecting:  # ids asked for while a batch is being read start the next one
                self._collecting[kind] = asyncio.ensure_future(self._run_batch(driver, stack, declared))
        return await asyncio.shield(future)

    async def _run_batch(self, driver: KindDriver, stack: str, declared: Callable[[], Any]) -> None:
        await asyncio.sleep(BATCH_WINDOW_SECONDS)
        kind = driver.kind
        self._collecting.pop(kind, None)
        batch = self._pending.pop(kind, {})
        ids = list(batch)
        try:
            known: Declared = await declared()
            self.passes.append((kind, "observe_ids", len(ids)))
            found = await asyncio.to_thread(driver.observe_ids, stack, ids, known)
        except BaseException as error:  # every waiter gets the failure
            for future in batch.values():
                if not future.done():
                    future.set_exception(error)
            return
        for resource_id, future in batch.items():
            live = found.get(resource_id)
            self._by_id[(kind, resource_id)] = live
            if not future.done():
                future.set_result(live)

    def forget(self, kind: str, resource_id: str) -> None:
        """Drop what we know of one object (we just changed it)."""
        self._by_id.pop((kind, resource_id), None)
        task = self._owned.get(kind)
        if task is not None and task.done() and task.exception() is None:
            task.result().pop(resource_id, None)
