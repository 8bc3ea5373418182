"""The Network kind on Proxmox VE: a VLAN on the endpoint's VLAN-aware bridge.

A virtplane Network is a VLAN tag on the endpoint's bridge (setting ``bridge``, default ``vmbr0``): the tag is
set on each NIC that uses the network, and nothing is created or deleted on the cluster for it (a VLAN on a
VLAN-aware bridge needs no object, and SDN zones/vnets would be cluster-wide state this model does not need).

So ``observe`` reports every declared network as owned and existing, with the declared VLAN, when it can be
used as declared: the bridge exists on every online node, is VLAN-aware there when the VLAN is not 0 (checked
when the nodes report ``bridge_vlan_aware``), and no other declared network of the endpoint has the same VLAN
(a NIC's network is read back from its bridge and tag, so two networks on one VLAN could not be told apart).
A network that cannot be used is not reported, so the plan wants to create it and ``check`` says why.
Create, update and delete do nothing; when destroying (nothing declared) nothing is reported. The id is
``bridge.vlan`` (``vmbr0.120``), read back by ``observe_ids`` while the bridge exists (providers/vlan_networks.py).
"""

from __future__ import annotations

from typing import cast

from virtplane.providers import vlan_networks
from virtplane.providers.base import (
    Created,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Rule,
)
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.settings import ProxmoxSettings
from virtplane.specs import NetworkSpec, Spec


class NetworkDriver(KindDriver):
    kind = "Network"
    replaceable = frozenset({"vlan"})  # the id names the VLAN: another VLAN is another network (new id)

    def __init__(self, cluster: Cluster, settings: ProxmoxSettings):
        self._cluster = cluster
        self._bridge = settings.bridge

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._cluster.refresh()
        networks = {name: cast(NetworkSpec, spec) for name, spec in declared.get(self.kind, {}).items()}
        result = ObserveResult()
        for name, spec in networks.items():
            if not self._problems(name, spec, networks):
                result.owned[name] = Observed(name, None, Owner(stack, name), {"vlan": spec.vlan},
                                              id=vlan_networks.network_id(self._bridge, spec.vlan))
        return result

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """Networks by id (``vmbr0.120``): those on the endpoint's bridge, while it exists on every online node."""
        self._cluster.refresh()
        bridge = None if self._cluster.bridge_problem(self._bridge, 0) else self._bridge
        return vlan_networks.observe_ids(stack, ids, bridge, declared)

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        net_spec = cast(NetworkSpec, spec)
        networks = {name: cast(NetworkSpec, other) for name, other in declared.get(self.kind, {}).items()}
        name = next((n for n, other in networks.items() if other is spec), "")
        return self._problems(name, net_spec, networks)

    def _problems(self, name: str, spec: NetworkSpec, networks: dict[str, NetworkSpec]) -> list[tuple[str, str]]:
        problems = []
        if problem := self._cluster.bridge_problem(self._bridge, spec.vlan):
            problems.append(("vlan", f"{problem} (a network on Proxmox is a VLAN on the endpoint's bridge; set "
                                     "bridge= on the Endpoint or PROXMOX_VE_BRIDGE)"))
        twins = sorted(other for other, twin in networks.items() if other != name and twin.vlan == spec.vlan)
        if twins:
            problems.append(("vlan", f"VLAN {spec.vlan} is also the VLAN of network(s) {', '.join(twins)} on this "
                                     f"endpoint; on Proxmox a network is a VLAN on bridge {self._bridge}, so networks "
                                     "sharing one could not be told apart"))
        return problems

    def create(self, owner: Owner, spec: Spec) -> Created:
        """Nothing to create: NICs carry the VLAN tag. The id names the bridge and the VLAN."""
        vlan = cast(NetworkSpec, spec).vlan
        return Created(vlan_networks.network_id(self._bridge, vlan), {"vlan": vlan})

    def rule(self, change: FieldChange) -> Rule:
        """Another VLAN is another network on the bridge (its id changes): a replacement. Under the CLI it never
        comes up: ``observe`` reports a declared network with its declared VLAN, and the NICs carry the change."""
        return Rule.REPLACE if change.path == "vlan" else Rule.IN_PLACE

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        """Nothing to change: the VLAN read back is the declared one."""

    def delete(self, observed: Observed) -> None:
        """Nothing to delete."""
