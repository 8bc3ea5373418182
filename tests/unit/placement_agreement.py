"""Placement and the policy layer must agree: a host placement chooses is one no mandatory rule then refuses.

``checked_place`` is ``virtplane.placement.place`` for the placement tests: it places as ``place`` does and then runs
every rule over all the placements made with the same ``Usage`` so far (each VM pinned to the host it got, in the
order placed, as ``virtplane check`` counts them), failing the test when a mandatory rule refuses one. Only rules
about the VM alone, which no host could satisfy, are exempt (``HOST_INDEPENDENT``).
"""

from __future__ import annotations

from collections.abc import Sequence

from virtplane.inventory import Host, Inventory
from virtplane.placement import Assignment, Usage, place
from virtplane.policies.evaluate import DeclaredVm, check_vms
from virtplane.specs import VirtualMachineSpec

HOST_INDEPENDENT = frozenset({"hw.nested-with-devices"})  # ESXi refuses it on every host
_PLACED: dict[int, tuple[Usage, list[tuple[DeclaredVm, Host]]]] = {}  # kept alive: ids are not reused


def blocking(vms: Sequence[DeclaredVm], hosts: Sequence[Host]) -> list[str]:
    """The mandatory findings of host-dependent rules for ``vms`` over ``hosts``, as "rule VM: message"."""
    kinds = {host.endpoint: host.hypervisor for host in hosts}
    report = check_vms("agreement/test", list(vms), Inventory(hosts=list(hosts)), kinds)
    return [f"{f.rule} {f.resource}: {f.message}" for f in report.blocking if f.rule not in HOST_INDEPENDENT]


def checked_place(name: str, endpoint: str, spec: VirtualMachineSpec, hosts: Sequence[Host],
                  usage: Usage) -> Assignment:
    """``place`` as plan and apply call it (the spec with its creation defaults), checked by the rules."""
    spec = spec.with_creation_defaults()
    assignment = place(name, endpoint, spec, hosts, usage)
    placed = _PLACED.setdefault(id(usage), (usage, []))[1]
    chosen = next(host for host in hosts if host.name == assignment.host)
    placed.append((DeclaredVm(name, endpoint, spec.model_copy(update={"node": chosen.name})), chosen))
    everything = {(host.endpoint, host.name): host for _, host in placed} | {(h.endpoint, h.name): h for h in hosts}
    refused = blocking([vm for vm, _ in placed], list(everything.values()))
    assert not refused, f"placement chose {assignment.host} for {name}, and the policy refuses: {refused}"
    return assignment
