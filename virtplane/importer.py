"""``virtplane import``: read existing VMs (and the networks their NICs are on) from one endpoint and describe them as a
stack would declare them, field by field as they are (virtplane/import_inputs.py, the same inputs the Pulumi plugin
answers ``pulumi import`` with), with what no field can say kept aside for a comment.

Networks: a NIC on a VLAN of the endpoint's bridge or switch (Proxmox, Hyper-V: the Network driver reads such ids,
``vmbr0.120``) becomes a ``Network(vlan=…)`` of the stack named by that id — the name a NIC on it reads back with
when no Network of the stack names it, as under ``pulumi import`` — which owns nothing on the host; a NIC on an
existing network (a vSphere port group, a bridge untagged, a XenServer network) names it as a string, so importing
never makes the stack own a network other VMs use.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from virtplane.cloudinit import short
from virtplane.import_inputs import importable, inputs_from_state
from virtplane.providers.base import Observed, Owner, Provider
from virtplane.specs import NetworkSpec


@dataclass(frozen=True)
class Selection:
    """Which VMs: any name matching a glob, any carrying a tag, any id named; everything when nothing is given."""

    globs: Sequence[str] = ()
    tags: Sequence[str] = ()
    ids: Sequence[str] = ()

    @property
    def everything(self) -> bool:
        return not (self.globs or self.tags or self.ids)

    def matches(self, vm_id: str, live: Observed) -> bool:
        if self.everything:
            return True
        return (any(fnmatch.fnmatchcase(live.name, glob) for glob in self.globs)
                or any(tag in (live.state.get("tags") or []) for tag in self.tags)
                or any(vm_id.lower() == wanted.lower() for wanted in self.ids))


@dataclass
class ImportedVm:
    name: str
    id: str
    inputs: dict[str, Any]
    not_expressed: list[str] = field(default_factory=list)  # one description each
    owner: Owner | None = None


@dataclass
class ImportedNetwork:
    name: str
    vlan: int
    id: str


@dataclass
class Imported:
    kind: str
    endpoint: str
    networks: list[ImportedNetwork] = field(default_factory=list)
    vms: list[ImportedVm] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)


def read(provider: Provider, kind: str, endpoint: str, stack: str, selection: Selection) -> Imported:
    """The selected VMs of ``provider`` as a stack declares them (two batched reads of every VM at most: one to choose,
    one to name their NICs after the stack's networks)."""
    vm_driver = provider.driver("VirtualMachine")
    every = vm_driver.observe_all(stack, {})
    chosen = {vm_id: live for vm_id, live in every.items() if selection.matches(vm_id, live)}
    _refuse_shared_names(chosen)
    result = Imported(kind, endpoint)
    result.missing_ids = [wanted for wanted in selection.ids if wanted.lower() not in {i.lower() for i in every}]
    result.networks = _networks(provider, stack, chosen.values())
    if result.networks:
        declared = {"Network": {network.name: NetworkSpec(vlan=network.vlan) for network in result.networks}}
        chosen = vm_driver.observe_ids(stack, list(chosen), declared)
    for vm_id, live in sorted(chosen.items(), key=lambda item: (item[1].name, item[0])):
        inputs, left_out = importable("VirtualMachine", live.name, inputs_from_state("VirtualMachine", live.state))
        notes = [f"{field_name}: {reason}" for field_name, reason in left_out] + list(live.unexpressed)
        if live.state.get("cloud_init"):
            notes.append(f"cloud-init delivered earlier ({short(live.state['cloud_init'])}): give cloud_init= to "
                         "manage it")
        result.vms.append(ImportedVm(live.name, vm_id, inputs, notes, live.owner))
    return result


def _refuse_shared_names(chosen: dict[str, Observed]) -> None:
    """A stack names each resource once: VMs sharing a name (Hyper-V allows it) cannot all be imported."""
    from virtplane.errors import VirtplaneError

    by_name: dict[str, list[str]] = {}
    for vm_id, live in chosen.items():
        by_name.setdefault(live.name, []).append(vm_id)
    shared = {name: ids for name, ids in by_name.items() if len(ids) > 1}
    if shared:
        described = "; ".join(f"'{name}' (ids {', '.join(sorted(ids))})" for name, ids in sorted(shared.items()))
        raise VirtplaneError(f"several selected VMs share a name, which a stack cannot declare twice: {described}; "
                             "select one of each with --id (nothing was written)")


def _networks(provider: Provider, stack: str, vms: Any) -> list[ImportedNetwork]:
    """The VLAN networks the NICs are on, as the Network driver reads them by id (``vmbr0.120``)."""
    names = sorted({str(nic["network"]) for live in vms for nic in live.state.get("nics") or [] if nic.get("network")})
    if not names:
        return []
    try:
        found = provider.driver("Network").observe_ids(stack, names, {})
    except NotImplementedError:
        return []
    networks: dict[int, ImportedNetwork] = {}
    for network_id, live in found.items():
        vlan = int(live.state.get("vlan") or 0)
        if vlan and vlan not in networks:
            networks[vlan] = ImportedNetwork(network_id, vlan, network_id)
    return [networks[vlan] for vlan in sorted(networks)]


def variable(name: str, taken: set[str]) -> str:
    """A Python name for a resource: ``web-1`` -> ``web_1`` (made unique among ``taken``, which it joins)."""
    import keyword

    base = re.sub(r"\W+", "_", name).strip("_").lower() or "vm"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = f"vm_{base}"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}_{number}", number + 1
    taken.add(candidate)
    return candidate
