"""Networks that are VLANs on an existing bridge or switch (Proxmox VE's bridge, Hyper-V's VM switch).

Nothing is made on the host for such a network: its NICs carry the VLAN. So its stable id names the bridge (or
switch) and the VLAN, ``vmbr0.120``, and reading one by id (a Pulumi refresh, destroy or import) is reading that
id back: it exists while the endpoint's bridge does. Its name is the declared network's with that VLAN, else the
id itself (an import, or a refresh that has not seen the stack's Networks).
"""

from __future__ import annotations

from collections.abc import Mapping

from virtplane.providers.base import Declared, Observed, Owner
from virtplane.specs import NetworkSpec


def network_id(base: str, vlan: int) -> str:
    """``vmbr0`` and 120 -> ``vmbr0.120``."""
    return f"{base}.{vlan}"


def parse_network_id(network: str) -> tuple[str, int] | None:
    """``vmbr0.120`` -> (``vmbr0``, 120); None for anything else (a switch name may hold dots: the last one
    counts)."""
    base, dot, vlan = network.rpartition(".")
    if not dot or not base or not vlan.isdigit() or int(vlan) > 4094:
        return None
    return base, int(vlan)


def observe_ids(stack: str, ids: list[str], base: str | None, declared: Declared) -> dict[str, Observed]:
    """The networks among ``ids`` that are VLANs on ``base`` (the endpoint's bridge or switch, None when it does
    not exist). Like ``observe``, a network that is only a VLAN tag belongs to the stack that declares it."""
    if base is None:
        return {}
    names = _names_by_vlan(declared.get("Network", {}))
    found: dict[str, Observed] = {}
    for wanted in ids:
        parsed = parse_network_id(wanted)
        if parsed is None or parsed[0] != base:
            continue
        vlan = parsed[1]
        name = names.get(vlan, wanted)
        found[wanted] = Observed(name, None, Owner(stack, name), {"vlan": vlan}, id=wanted)
    return found


def _names_by_vlan(networks: Mapping[str, object]) -> dict[int, str]:
    """VLAN -> the one declared network on it (a VLAN two networks share names neither)."""
    by_vlan: dict[int, list[str]] = {}
    for name, spec in networks.items():
        if isinstance(spec, NetworkSpec):
            by_vlan.setdefault(spec.vlan, []).append(name)
    return {vlan: names[0] for vlan, names in by_vlan.items() if len(names) == 1}
