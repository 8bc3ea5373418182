"""Declaring a stack in code and converging it through the engine, as the CLI does."""

from __future__ import annotations

from typing import Any

from tests.conformance.peers import Peer
from virtplane import apply
from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack
from virtplane.engine import build_plan
from virtplane.plan import Action, Plan
from virtplane.specs import build_spec

ENDPOINT = "ep"


class Stack:
    """A desired stack on one peer: add networks and VMs, then plan, apply or destroy."""

    def __init__(self, peer: Peer, name: str):
        self.peer = peer
        self.desired = DesiredStack("conformance", name)
        self.desired.endpoints[ENDPOINT] = DeclaredEndpoint(ENDPOINT, peer.kind, {})

    def network(self, name: str, **fields: Any) -> Stack:
        self._add("Network", name, fields, set())
        return self

    def vm(self, name: str, **fields: Any) -> Stack:
        deps = {f"Network/{nic['network']}" for nic in fields.get("nics", [])
                if f"Network/{nic['network']}" in self.desired.resources}
        self._add("VirtualMachine", name, fields, deps)
        return self

    def drop(self, name: str) -> Stack:
        self.desired.resources = {k: r for k, r in self.desired.resources.items() if r.name != name}
        return self

    def _add(self, kind: str, name: str, fields: dict[str, Any], deps: set[str]) -> None:
        spec = build_spec(kind, name, fields)
        self.desired.resources[f"{kind}/{name}"] = DeclaredResource(kind, name, spec, ENDPOINT, deps)

    def plan(self, *, destroy: bool = False) -> Plan:
        return build_plan(self.desired, {ENDPOINT: self.peer.provider}, destroy=destroy)

    def apply(self, *, destroy: bool = False, allow_data_loss: bool = False) -> Plan:
        """Plan and apply; fail the test on any failed resource. Returns the plan that was applied."""
        plan = self.plan(destroy=destroy)
        result = apply.run(plan, {ENDPOINT: self.peer.provider}, parallel=4, allow_data_loss=allow_data_loss or destroy)
        assert not result.failed, [outcome.error for outcome in result.failed]
        return plan

    def changes(self) -> dict[str, tuple[Action, list[tuple[str, Any, Any]]]]:
        """Resource name -> (action, [(path, live, declared)]) for everything not in sync."""
        return {r.name: (r.action, [(c.change.path, c.change.old, c.change.new) for c in r.changes])
                for r in self.plan().resources if r.action is not Action.NOOP}
