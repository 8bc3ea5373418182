"""Where a pool's new desktops go, and whether the whole pool fits before anything is made.

Desktops that need host facts (GPUs, vGPUs, SR-IOV NICs, nested virtualization) are placed on the endpoint's
inventory by virtplane/placement.py's ``place``, host by host in the pool's order: ``spread`` tries the hosts
holding the fewest of the pool's desktops first (then the usual preference: most memory left), ``pack`` the hosts
holding the most (then by name), so it fills one host before the next. Other desktops go where the driver (or the
hypervisor: vSphere DRS, the template's Proxmox node) puts them.

Before the first new desktop of a pool is placed, all of them are placed on a copy of what the plan took so far:
when some do not fit, the plan stops with one sentence saying how many fit where, and nothing is made.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence

from virtplane.inventory import Host
from virtplane.placement import Assignment, PlacementError, Usage, place
from virtplane.plan import ResourcePlan
from virtplane.specs import VirtualMachineSpec


def place_desktop(name: str, endpoint: str, spec: VirtualMachineSpec, hosts: Sequence[Host], usage: Usage,
                  held: Counter[str], spread: str) -> Assignment:
    """Place one desktop; ``held`` counts the pool's desktops per host (live and placed), updated here."""
    if spec.node is not None:
        chosen = place(name, endpoint, spec, hosts, usage)
    else:
        chosen = None
        for group in _host_order(hosts, held, spread):
            try:
                chosen = place(name, endpoint, spec, group, usage)
                break
            except PlacementError:
                continue
        if chosen is None:  # no host fits: the full reasons, host by host
            chosen = place(name, endpoint, spec, hosts, usage)
    held[chosen.host] += 1
    return chosen


def _host_order(hosts: Sequence[Host], held: Counter[str], spread: str) -> list[list[Host]]:
    if spread == "pack":
        return [[host] for host in sorted(hosts, key=lambda h: (-held[h.name], h.name))]
    counts = sorted({held[host.name] for host in hosts})
    return [[host for host in hosts if held[host.name] == count] for count in counts]


def check_capacity(pool: str, endpoint: str, items: list[ResourcePlan], hosts: Sequence[Host], usage: Usage,
                   held: Counter[str], spread: str) -> None:
    """Place every desktop of ``items`` (the pool's new ones) on copies; PlacementError when some do not fit."""
    trial, counted, fitted = copy.deepcopy(usage), Counter(held), Counter[str]()
    for index, item in enumerate(items):
        assert isinstance(item.spec, VirtualMachineSpec)
        try:
            fitted[place_desktop(item.name, endpoint, item.spec.with_creation_defaults(), hosts, trial, counted,
                                 spread).host] += 1
        except PlacementError as error:
            raise PlacementError(_too_small(pool, endpoint, items, index, fitted, item.spec, str(error))) from None


def _too_small(pool: str, endpoint: str, items: list[ResourcePlan], fits: int, fitted: Counter[str],
               spec: VirtualMachineSpec, reason: str) -> str:
    where = ", ".join(f"{host}: {count}" for host, count in sorted(fitted.items())) or "none"
    vgpus = sorted({gpu.profile or "" for gpu in spec.gpus or [] if gpu.mode == "vgpu"})
    what = f" with vGPU profile {', '.join(repr(p) for p in vgpus)}" if vgpus else ""
    why = reason.split(" — ", 1)[1] if " — " in reason else reason
    return (f"DesktopPool '{pool}': {len(items)} new desktops{what} need a place, but the hosts of endpoint "
            f"'{endpoint}' can take only {fits} of them after the stack's other VMs ({where}); desktop "
            f"{items[fits].name} and later: {why}. Nothing was created: lower size by {len(items) - fits} or free "
            "capacity")


class PoolPlacer:
    """The placement state of one endpoint's pools during one plan: desktops per host, pools already checked."""

    def __init__(self, endpoint: str, spreads: dict[str, str], items: list[ResourcePlan]) -> None:
        self.endpoint = endpoint
        self.spreads = spreads  # pool -> spread | pack
        self.held: dict[str, Counter[str]] = {pool: Counter() for pool in spreads}
        self.new: dict[str, list[ResourcePlan]] = {pool: [] for pool in spreads}
        for item in items:
            if item.pool not in spreads:
                continue
            if item.action.value in ("create", "replace") and not item.deferred:
                self.new[item.pool].append(item)
            elif item.action.value != "delete" and item.observed is not None and item.observed.state.get("node"):
                self.held[item.pool][str(item.observed.state["node"])] += 1
        self._checked: set[str] = set()

    def place(self, item: ResourcePlan, spec: VirtualMachineSpec, hosts: Sequence[Host], usage: Usage) -> Assignment:
        pool = str(item.pool)
        if pool not in self._checked:
            self._checked.add(pool)
            check_capacity(pool, self.endpoint, self.new[pool], hosts, usage, self.held[pool], self.spreads[pool])
        return place_desktop(item.name, self.endpoint, spec, hosts, usage, self.held[pool], self.spreads[pool])
