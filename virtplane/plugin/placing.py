"""Placement under ``pulumi up``, as ``virtplane plan`` places: the engine's Placer, one per plugin process.

Creates run concurrently, so one placement runs at a time, counting what this process placed already on each
host. Check asks the same question without taking anything (a copy of what was placed).
"""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

from virtplane import redact
from virtplane.apply import creation_spec
from virtplane.engine import Placer
from virtplane.kinds import build_spec
from virtplane.placement import PlacementError, needs_hardware, place
from virtplane.plan import Action, ResourcePlan
from virtplane.plugin.endpoint import Endpoint
from virtplane.providers.base import KindDriver
from virtplane.specs import Spec, VirtualMachineSpec


class Placement:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._placer: Placer | None = None  # what this process placed, per host; used under _lock only
        self._lock = asyncio.Lock()

    async def _endpoint_placer(self) -> Placer:
        if self._placer is None:
            self._placer = Placer(self.endpoint.name, await self.endpoint.provider())
        return self._placer

    async def creation_spec(self, name: str, spec: Spec, driver: KindDriver) -> Spec:
        """What the driver's create gets, as ``virtplane apply`` makes it: the creation defaults, the host and
        the devices placement chose (counting what this process placed already)."""
        if "node" not in type(spec).model_fields:
            return spec
        item = ResourcePlan(driver.kind, name, self.endpoint.name, Action.CREATE, spec=spec)
        async with self._lock:
            placer = await self._endpoint_placer()
            await asyncio.to_thread(placer.place, item, driver)
        return creation_spec(item)

    async def failures(self, name: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        """Check's view of placement, without taking anything: a new VM that needs devices or nested
        virtualization no host of the endpoint can serve (as it stands, after what this process placed) is a
        failure. Anything else that goes wrong here (the endpoint unreachable) is left for Create to report."""
        spec = build_spec("VirtualMachine", name, inputs)
        assert isinstance(spec, VirtualMachineSpec)
        spec = spec.with_creation_defaults()
        if not needs_hardware(spec):
            return []
        try:
            async with self._lock:
                placer = await self._endpoint_placer()
                trial = copy.deepcopy(placer.usage)
                await asyncio.to_thread(lambda: place(name, placer.endpoint, spec, placer.hosts(), trial))
        except PlacementError as error:
            field = re.search(r"field '([^']+)'", str(error))
            return [(field.group(1) if field else "gpus", redact.redact(str(error)))]
        except Exception:  # the endpoint unreachable, a library's fault: Create reports it, as one sentence
            return []
        return []
