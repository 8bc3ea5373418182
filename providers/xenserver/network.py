"""The Network kind on XenServer / XCP-ng: a network per VLAN tag on the endpoint's NIC device, made once per pool.

A virtplane Network of VLAN N is the pool's network over VLAN N of the endpoint's ``network_device`` (default: the
master's management interface, usually ``eth0``); VLAN 0 is that device's own pool-wide network. XAPI allows one
VLAN per tag on a PIF (PIF_VLAN_EXISTS), so every stack that declares VLAN N uses the same network:

- ``observe`` reports each declared Network whose VLAN network exists as owned and in sync (nothing to do), and
  VLAN networks this stack made that it no longer declares (its marker, no declared Network of that VLAN) for
  deletion. Networks no stack of ours made are used, never changed.
- ``create`` makes the network (``network.create``, named after the Network, with ``other_config:virtplane.vlan
  = <device>.<tag>`` and the stack's marker) and its VLAN on every host (``pool.create_VLAN_from_PIF`` on the
  master's PIF of that device). A network left without VLAN by an interrupted create is found by its
  ``virtplane.vlan`` key and finished, never made twice.
- ``delete`` removes the VLANs (``VLAN.destroy``) and the network (``network.destroy``) when no VIF is on it; while
  VMs of other stacks or people still use it, it stays and only this stack's marker is removed (it is theirs now).
- Two declared Networks with one VLAN are refused at plan time: a NIC's network is read back from its VLAN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from virtplane.errors import ProviderError
from virtplane.providers.base import (
    MARKER_KEY,
    Created,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Rule,
)
from virtplane.providers.claims import guard
from virtplane.providers.xenserver.client import OutcomeUnknown, XapiClient, XapiFailure
from virtplane.providers.xenserver.pool_facts import PoolFacts
from virtplane.providers.xenserver.pool_reader import PoolReader
from virtplane.providers.xenserver.records import MARKER_TAG
from virtplane.providers.xenserver.settings import XenserverSettings
from virtplane.providers.xenserver.vlans import VLAN_KEY, Vlans, declared_vlans
from virtplane.specs import NetworkSpec, Spec


@dataclass
class NetworkHandle:
    ref: str | None  # None: VLAN 0, the device's own network (never ours to delete)


class NetworkDriver(KindDriver):
    kind = "Network"
    replaceable = frozenset({"vlan"})  # a Network is found by its VLAN: another VLAN is another network (new id)

    def __init__(self, client: XapiClient, settings: XenserverSettings, facts: PoolFacts) -> None:
        self._client = client
        self._settings = settings
        self._facts = facts
        self._reader = PoolReader(client)

    @property
    def _where(self) -> str:
        return f"XenServer endpoint '{self._settings.endpoint_name}'"

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        view = self._reader.view(("networks", "pifs"))
        device = self._facts.device(view.pifs)
        vlans = Vlans(device, {})
        wanted = declared_vlans(declared)
        result = ObserveResult()
        for name, vlan in wanted.items():
            found = vlans.network_of(vlan, view.networks, view.pifs)
            if found is not None and list(wanted.values()).count(vlan) == 1:
                result.owned[name] = Observed(name, NetworkHandle(found if vlan else None), Owner(stack, name),
                                              {"vlan": vlan}, id=str(view.networks[found]["uuid"]))
        for ref, network in view.networks.items():
            owner = Owner.decode((network.get("other_config") or {}).get(MARKER_KEY))
            vlan = vlans.vlan_of(ref, view.pifs)
            if owner is None or owner.stack != stack or owner.resource in wanted or vlan in wanted.values():
                continue
            result.owned[owner.resource] = Observed(owner.resource, NetworkHandle(ref), owner,
                                                    {"vlan": vlan if vlan is not None else 0},
                                                    id=str(network["uuid"]))
        return result

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """Networks by uuid (a Pulumi refresh, destroy or import), named as ``observe`` names them: the declared
        Network of their VLAN, else their own name. One read of the pool's networks and PIFs."""
        view = self._reader.view(("networks", "pifs"))
        vlans = Vlans(self._facts.device(view.pifs), {})
        names = {vlan: name for name, vlan in declared_vlans(declared).items()}
        found: dict[str, Observed] = {}
        for ref, network in view.networks.items():
            if network["uuid"] not in ids:
                continue
            vlan = vlans.vlan_of(ref, view.pifs)
            name = names.get(vlan, str(network["name_label"])) if vlan is not None else str(network["name_label"])
            found[str(network["uuid"])] = Observed(name, NetworkHandle(ref if vlan else None), Owner(stack, name),
                                                   {"vlan": vlan if vlan is not None else 0}, id=str(network["uuid"]))
        return found

    def rule(self, change: FieldChange) -> Rule:
        """Another VLAN is another network of the pool (its id changes): a replacement. Under the CLI it never comes
        up: ``observe`` reports a declared Network by its VLAN."""
        return Rule.REPLACE if change.path == "vlan" else Rule.IN_PLACE

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        vlan = cast(NetworkSpec, spec).vlan
        twins = sorted(name for name, other in declared_vlans(declared).items() if other == vlan)
        if len(twins) > 1:
            return [("vlan", f"VLAN {vlan} is the VLAN of networks {', '.join(twins)} on this endpoint; on XenServer "
                             "a network is a VLAN of the endpoint's NIC, so networks sharing one could not be told "
                             "apart")]
        return []

    def create(self, owner: Owner, spec: Spec) -> Created:
        vlan = cast(NetworkSpec, spec).vlan
        view = self._reader.view(("networks", "pifs"))
        device = self._facts.device(view.pifs)
        vlans = Vlans(device, {})
        found = vlans.network_of(vlan, view.networks, view.pifs)
        if found is not None:  # VLAN 0, or made meanwhile by another stack: nothing to make
            return Created(str(view.networks[found]["uuid"]), {"vlan": vlan})
        if vlan == 0:
            raise ProviderError(f"{self._where} has no pool-wide network on device {device} for network "
                                f"{owner.resource} (VLAN 0)")
        key = f"{device}.{vlan}"
        network = next((ref for ref, r in view.networks.items() if (r.get("other_config") or {}).get(VLAN_KEY) == key),
                       None) or self._make_network(owner, vlan, device, key)
        tagged = next((ref for ref, pif in view.pifs.items() if pif.get("host") == self._facts.master()
                       and pif.get("device") == device and pif.get("physical")), None)
        if tagged is None:
            raise ProviderError(f"the master of {self._where} has no physical interface {device} for VLAN {vlan}")
        what = f"put VLAN {vlan} of network {owner.resource} on {device} of every host"
        try:
            self._client.call("pool.create_VLAN_from_PIF", tagged, network, str(vlan), what=what)
        except OutcomeUnknown:
            again = self._reader.view(("networks", "pifs"))
            if vlans.network_of(vlan, again.networks, again.pifs) != network:
                self._client.call("pool.create_VLAN_from_PIF", tagged, network, str(vlan), what=what)
        return Created(str(self._client.get("network.get_uuid", network, what="read the new network")), {"vlan": vlan})

    def _make_network(self, owner: Owner, vlan: int, device: str, key: str) -> str:
        record = {"name_label": owner.resource, "name_description": f"VLAN {vlan} on {device}, made by virtplane",
                  "MTU": "1500", "other_config": {VLAN_KEY: key, MARKER_KEY: owner.encode()}, "tags": [MARKER_TAG]}
        try:
            return str(self._client.call("network.create", record, what=f"create network {owner.resource}"))
        except OutcomeUnknown:
            networks = self._reader.view(("networks",)).networks
            made = [ref for ref, r in networks.items() if (r.get("other_config") or {}).get(VLAN_KEY) == key]
            if made:
                return made[0]
            return str(self._client.call("network.create", record, what=f"create network {owner.resource}"))

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        """Nothing to change: a Network is found by its VLAN, so the VLAN read back is the declared one."""

    def delete(self, observed: Observed) -> None:
        guard(observed, "delete", "network")
        ref = cast(NetworkHandle, observed.handle).ref
        if ref is None:
            return
        try:
            marker = Owner.decode(self._client.get("network.get_other_config", ref,
                                                   what=f"read network {observed.name}").get(MARKER_KEY))
            if marker is None or observed.owner is None or marker.stack != observed.owner.stack:
                return  # a VLAN network another stack (or a person) made: used, never deleted
            vifs = self._client.get("network.get_VIFs", ref, what=f"read the NICs on network {observed.name}")
            if vifs:  # VMs not of this stack use it: leave it to them, without our marker
                self._client.call("network.remove_from_other_config", ref, MARKER_KEY,
                                  what=f"hand network {observed.name} over to the VMs still on it")
                return
            for pif in self._client.get("network.get_PIFs", ref, what=f"read network {observed.name}"):
                vlan = self._client.get("PIF.get_VLAN_master_of", pif, what=f"read network {observed.name}")
                self._client.call("VLAN.destroy", vlan, what=f"remove a VLAN of network {observed.name}")
            self._client.call("network.destroy", ref, what=f"delete network {observed.name}")
        except XapiFailure as failure:
            if failure.code != "HANDLE_INVALID":
                raise
