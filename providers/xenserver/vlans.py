"""Which XAPI network a stack's Network is, and back: a Network of VLAN N is the pool's network over VLAN N of the
endpoint's NIC device (a network whose PIFs are the untagged PIFs of VLANs with tag N on that device: XenAPI
reference, classes network, PIF and VLAN); VLAN 0 is the device's own pool-wide network. A NIC's network reads back
as the declared Network of that VLAN, and a network no declared Network stands for by its XAPI name (an SR-IOV
network, a network made by hand). Pure: it works on records already read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from virtplane.providers.base import Declared
from virtplane.specs import NetworkSpec

Records = Mapping[str, Mapping[str, Any]]
VLAN_KEY = "virtplane.vlan"  # network other_config: "<device>.<tag>", written when virtplane makes a VLAN network


@dataclass(frozen=True)
class Vlans:
    device: str  # the NIC device VLAN networks are on ("eth0")
    declared: Mapping[int, str]  # VLAN tag -> the declared Network's name (tags declared once)

    def network_of(self, vlan: int, networks: Records, pifs: Records) -> str | None:
        """The network carrying ``vlan`` on the device, or None when the pool has none."""
        wanted = "-1" if vlan == 0 else str(vlan)
        for pif in pifs.values():
            on_device = pif.get("device") == self.device and pif.get("network") in networks
            if on_device and str(pif.get("VLAN")) == wanted and (vlan != 0 or pif.get("physical")):
                return str(pif["network"])
        return None

    def vlan_of(self, network: str, pifs: Records) -> int | None:
        for pif in pifs.values():
            if pif.get("network") == network and pif.get("device") == self.device:
                tag = int(pif.get("VLAN", "-1"))
                return 0 if tag < 0 else tag
        return None

    def name_of(self, network: str, networks: Records, pifs: Records) -> str:
        """A network's name as the stack calls it."""
        vlan = self.vlan_of(network, pifs)
        if vlan is not None and vlan in self.declared:
            return self.declared[vlan]
        return str(networks.get(network, {}).get("name_label") or network)

    def find(self, name: str, declared_vlan: int | None, networks: Records, pifs: Records) -> list[str]:
        """The networks a NIC's ``name`` stands for: the declared Network's VLAN network, else those so named."""
        if declared_vlan is not None:
            found = self.network_of(declared_vlan, networks, pifs)
            return [found] if found else []
        return [ref for ref, network in networks.items() if network.get("name_label") == name]


def declared_vlans(declared: Declared) -> dict[str, int]:
    """Declared Network name -> its VLAN."""
    return {name: cast(NetworkSpec, spec).vlan for name, spec in declared.get("Network", {}).items()}


def vlans_for(device: str, declared: Declared) -> Vlans:
    by_vlan: dict[int, list[str]] = {}
    for name, vlan in declared_vlans(declared).items():
        by_vlan.setdefault(vlan, []).append(name)
    return Vlans(device, {vlan: names[0] for vlan, names in by_vlan.items() if len(names) == 1})


def management_device(pifs: Records, master: str) -> str | None:
    """The master's management interface's device (where XAPI itself is reached)."""
    for pif in pifs.values():
        if pif.get("host") == master and pif.get("management"):
            return str(pif["device"])
    return None
