"""The stack's Networks as this plugin process knows them: how a VM's NICs are wired and read back by name.

On Proxmox and Hyper-V a Network is a VLAN on the endpoint's bridge or switch, so a NIC reads back as a bridge and
a tag: only the declared Networks turn ``vmbr0.120`` into ``app``. The process learns them from Check, Create,
Update and Read of each Network; a VM's outputs also record, under ``networks``, the Networks its NICs were on
(``{"app": {"vlan": 120}}``), so a ``pulumi refresh`` — whose Reads run in parallel, VMs maybe before their
Networks — still names the NICs as the stack does. What the process learnt itself wins over what a VM recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.specs import NetworkSpec, Spec

OUTPUT = "networks"  # the VM output recording the Networks its NICs are on


class KnownNetworks:
    def __init__(self) -> None:
        self._seen: dict[str, Spec] = {}  # from the Networks' own RPCs in this process
        self._recorded: dict[str, Spec] = {}  # from VMs' outputs

    def learn(self, name: str, spec: Spec) -> None:
        self._seen[name] = spec

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
        self._recorded.pop(name, None)

    def learn_recorded(self, outputs: Mapping[str, Any]) -> set[str]:
        """Take in what a VM's outputs recorded; returns the names recorded there."""
        recorded = outputs.get(OUTPUT)
        if not isinstance(recorded, Mapping):
            return set()
        for name, settings in recorded.items():
            if name in self._seen or not isinstance(settings, Mapping):
                continue
            try:
                self._recorded[name] = build_spec("Network", name, dict(settings))
            except SpecError:
                continue
        return set(recorded)

    def all(self) -> dict[str, Spec]:
        return {**self._recorded, **self._seen}

    def output_for(self, state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The ``networks`` output of a VM whose spec-shaped ``state`` names its NICs' networks."""
        known = self.all()
        names = {nic.get("network") for nic in state.get("nics") or [] if isinstance(nic, Mapping)}
        return {name: known[name].model_dump() for name in sorted(n for n in names if isinstance(n, str))
                if isinstance(known.get(name), NetworkSpec)}
