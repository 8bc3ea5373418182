"""Declaring a stack in code and converging it through the engine, as the CLI does; the suite's full VM."""

from __future__ import annotations

from typing import Any

from tests.conformance.peers import Peer
from virtplane import apply
from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack
from virtplane.engine import build_plan
from virtplane.kinds import build_spec
from virtplane.plan import Action, Plan
from virtplane.specs import Spec

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

    def pool(self, name: str, template: str, size: int, **fields: Any) -> Stack:
        """A DesktopPool as the CLI collects it: its desktops (replacing those declared before) and the pool; linked
        clones where the peer's provider offers them."""
        from virtplane.pools.spec import DeclaredPool, build_pool

        settings = {key: fields.pop(key) for key in ("naming", "spread", "max_unavailable", "linked_clone")
                    if key in fields}
        spec, desktops = build_pool(name, {"template": template, "size": size, **settings},
                                    {"power": "on", **fields}, type(self.peer.provider).offers_linked_clones)
        self.desired.resources = {k: r for k, r in self.desired.resources.items() if r.pool != name}
        for member, member_spec in desktops.values():
            self.desired.resources[f"VirtualMachine/{member}"] = DeclaredResource(
                "VirtualMachine", member, member_spec, ENDPOINT, pool=name)
        self.desired.pools[name] = DeclaredPool(name, spec, ENDPOINT, {n: m for n, (m, _) in desktops.items()})
        return self

    def container(self, name: str, **fields: Any) -> Stack:
        deps = {f"Network/{nic['network']}" for nic in fields.get("nics", [])
                if f"Network/{nic['network']}" in self.desired.resources}
        self._add("Container", name, fields, deps)
        return self

    def drop(self, name: str) -> Stack:
        self.desired.resources = {k: r for k, r in self.desired.resources.items() if r.name != name}
        return self

    def _add(self, kind: str, name: str, fields: dict[str, Any], deps: set[str]) -> None:
        spec = build_spec(kind, name, fields)
        self.desired.resources[f"{kind}/{name}"] = DeclaredResource(kind, name, spec, ENDPOINT, deps)

    def plan(self, *, destroy: bool = False) -> Plan:
        return build_plan(self.desired, {ENDPOINT: self.peer.provider}, destroy=destroy)

    def declared(self) -> dict[str, dict[str, Spec]]:
        """Kind -> name -> spec, as the engine hands it to the drivers."""
        found: dict[str, dict[str, Spec]] = {}
        for resource in self.desired.resources.values():
            found.setdefault(resource.kind, {})[resource.name] = resource.spec
        return found

    def apply(self, *, destroy: bool = False, allow_data_loss: bool = False, parallel: int = 4) -> Plan:
        """Plan and apply; fail the test on any failed resource. Returns the plan that was applied."""
        plan = self.plan(destroy=destroy)
        result = apply.run(plan, {ENDPOINT: self.peer.provider}, parallel=parallel,
                           allow_data_loss=allow_data_loss or destroy)
        assert not result.failed, [outcome.error for outcome in result.failed]
        return plan

    def changes(self) -> dict[str, tuple[Action, list[tuple[str, Any, Any]]]]:
        """Resource name -> (action, [(path, live, declared)]) for everything not in sync."""
        return {r.name: (r.action, [(c.change.path, c.change.old, c.change.new) for c in r.changes])
                for r in self.plan().resources if r.action is not Action.NOOP}


def full_vm(peer: Peer, network: str, **overrides: Any) -> dict[str, Any]:
    """A VM using every portable field the peer's hypervisor has (peers.py says where one differs and why)."""
    fields = {
        "cpus": 4, "sockets": 2, "memory": "2GiB",
        "disks": [{"size": "10GiB"}, {"size": 4, "bus": peer.second_disk_bus}],
        "nics": [{"network": network}, {"network": network, "adapter": peer.second_nic_adapter}],
        "firmware": "uefi", "secure_boot": True, "guest_os": "linux", "power": "on",
        "nested_virtualization": True, "tags": ["app", "tier1"], **overrides,
    }
    return {field: value for field, value in fields.items() if field not in peer.absent_fields}


def lab(peer: Peer, name: str, vms: int = 1, **overrides: Any) -> Stack:
    stack = Stack(peer, f"{name}-stack").network(f"{name}-net", vlan=110)
    for index in range(vms):
        stack.vm(f"{name}-vm{index}", **full_vm(peer, f"{name}-net", **overrides))
    return stack


def observed_vm(stack: Stack, vm: str) -> dict[str, Any]:
    [item] = [r for r in stack.plan().resources if r.name == vm]
    assert item.observed is not None
    return item.observed.state


def full_container(template: str, network: str, **overrides: Any) -> dict[str, Any]:
    """A container using every portable field."""
    return {
        "template": template, "cpus": 2, "memory": "1GiB", "swap": "256MiB", "rootfs": {"size": "8GiB"},
        "mounts": [{"path": "/srv/data", "size": 4}, {"path": "/var/log/app", "size": "2GiB"}],
        "nics": [{"network": network}], "unprivileged": True, "features": {"nesting": True, "keyctl": True},
        "password": "correct horse battery", "power": "on", "tags": ["app", "ct"], **overrides,
    }


def container_lab(peer: Peer, name: str, containers: int = 1, **overrides: Any) -> Stack:
    from tests.conformance.peers import ContainerPeer

    assert isinstance(peer, ContainerPeer)
    stack = Stack(peer, f"{name}-stack").network(f"{name}-net", vlan=110)
    for index in range(containers):
        stack.container(f"{name}-ct{index}", **full_container(peer.template, f"{name}-net", **overrides))
    return stack
