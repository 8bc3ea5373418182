"""The Network kind on Hyper-V: a VLAN on the endpoint's VM switch (setting ``switch``).

As on Proxmox, a virtplane Network is a VLAN (``Set-VMNetworkAdapterVlan -Access -VlanId``) on an existing
switch, set on each adapter that uses it; nothing is created or deleted on the host for it. ``observe``
reports a declared network as existing when the switch exists; ``check`` says, in one sentence, when it does
not (naming the switches the host has). SR-IOV needs a switch created with IOV enabled (it cannot be turned on
later): ``check`` refuses an SR-IOV NIC on a switch without it. The id is ``switch.vlan``, read back by
``observe_ids`` while the switch exists (providers/vlan_networks.py).
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
from virtplane.providers.hyperv.client import Cmd, HypervClient, pipe
from virtplane.providers.hyperv.settings import ENV, HypervSettings
from virtplane.specs import NetworkSpec, Spec


class NetworkDriver(KindDriver):
    kind = "Network"
    replaceable = frozenset({"vlan"})  # the id names the VLAN: another VLAN is another network (new id)

    def __init__(self, client: HypervClient, settings: HypervSettings) -> None:
        self._client = client
        self._settings = settings

    def switches(self) -> dict[str, bool]:
        """Switch name -> IOV enabled."""
        result = self._client.run([pipe(Cmd("Get-VMSwitch"))], "read the VM switches", retry_read=True)
        return {o.text("Name") or "": bool(o.flag("IovEnabled")) for o in result.objects}

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        result = ObserveResult()
        networks = declared.get(self.kind, {})
        if not networks:
            return result
        known = self.switches()
        for name, spec in networks.items():
            if self._settings.switch in known:
                vlan = cast(NetworkSpec, spec).vlan
                result.owned[name] = Observed(name, None, Owner(stack, name), {"vlan": vlan},
                                              id=vlan_networks.network_id(self._settings.switch, vlan))
        return result

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """Networks by id (``lab-switch.120``): those on the endpoint's switch, while the host has it."""
        switch = self._settings.switch
        present = switch if switch and switch in self.switches() else None
        return vlan_networks.observe_ids(stack, ids, present, declared)

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        switch = self._settings.switch
        if not switch:
            return [("vlan", f"a network on Hyper-V is a VLAN on the endpoint's switch: set switch= on the Endpoint "
                             f"or {ENV['switch']}")]
        known = self.switches()
        if switch not in known:
            choices = ", ".join(sorted(known)) or "none"
            return [("vlan", f"the endpoint's switch '{switch}' does not exist on the Hyper-V host (switches: "
                             f"{choices})")]
        return []

    def create(self, owner: Owner, spec: Spec) -> Created:
        """Nothing to create: adapters carry the VLAN."""
        vlan = cast(NetworkSpec, spec).vlan
        return Created(vlan_networks.network_id(self._settings.switch or "", vlan), {"vlan": vlan})

    def rule(self, change: FieldChange) -> Rule:
        """Another VLAN is another network on the switch (its id changes): a replacement. Under the CLI it never
        comes up: ``observe`` reports a declared network with its declared VLAN, and the NICs carry the change."""
        return Rule.REPLACE if change.path == "vlan" else Rule.IN_PLACE

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        """Nothing to change."""

    def delete(self, observed: Observed) -> None:
        """Nothing to delete."""
