"""Pool stacks evaluated as the CLI evaluates them, on an in-memory endpoint whose hosts and guests tests set."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.unit.memory_hypervisor import MemoryDriver, MemoryProvider
from virtplane import apply
from virtplane.declared import DesiredStack
from virtplane.engine import build_plan
from virtplane.evaluate import evaluate
from virtplane.inventory import Host
from virtplane.plan import Plan
from virtplane.providers.base import GuestState, Observed


class GuestDriver(MemoryDriver):
    """The in-memory VM driver with guest states tests set (``users``: name -> logged-in users)."""

    def __init__(self) -> None:
        super().__init__("VirtualMachine")
        self.users: dict[str, tuple[str, ...]] = {}
        self.guest_reads: list[list[str]] = []

    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        self.guest_reads.append(sorted(live.name for live in observed))
        return {live.name: GuestState(str(live.state.get("power")), self.users.get(live.name), told_by="test tools")
                for live in observed}


class PoolProvider(MemoryProvider):
    name = "memory"
    offers_linked_clones = True

    def __init__(self, hosts: list[Host] | None = None) -> None:
        super().__init__()
        self.drivers["VirtualMachine"] = GuestDriver()
        self._hosts = hosts

    def hosts(self) -> list[Host]:
        if self._hosts is None:
            raise NotImplementedError("no host facts")
        return self._hosts

    @property
    def vms(self) -> GuestDriver:
        return self.drivers["VirtualMachine"]  # type: ignore[return-value]


@pytest.fixture
def memory_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from virtplane.providers import registry

    monkeypatch.setitem(registry.KINDS, "memory", "tests.unit.pools.helpers:PoolProvider")


class PoolStack:
    """A stack directory whose program is rewritten per step; plans and applies on one in-memory endpoint."""

    def __init__(self, directory: Path, provider: PoolProvider) -> None:
        self.directory = directory
        self.provider = provider
        (directory / "Pulumi.yaml").write_text("name: desks\nruntime: python\n")

    def declare(self, body: str) -> DesiredStack:
        program = "import pulumi\nimport virtplane\n" \
                  "ep = virtplane.Endpoint('ep', kind='memory')\non_ep = pulumi.ResourceOptions(provider=ep)\n"
        (self.directory / "__main__.py").write_text(program + textwrap.dedent(body))
        self.desired = evaluate(self.directory, "dev")
        return self.desired

    def plan(self) -> Plan:
        return build_plan(self.desired, {"ep": self.provider})

    def apply(self, **options: Any) -> Plan:
        plan = self.plan()
        result = apply.run(plan, {"ep": self.provider}, **options)
        assert not result.failed, [o.error for o in result.failed]
        return plan

    def live(self) -> dict[str, dict[str, Any]]:
        return {name: state for name, (_, state) in self.provider.vms.objects.items()}

    def source(self, name: str) -> str | None:
        owner = self.provider.vms.objects[name][0]
        return owner.source if owner is not None else None
