"""Choose a host for each VM that names none, the way virtplane/placement.py's ``place`` does, in time that grows
with the number of VMs rather than VMs x hosts.

``place`` tries every host for every VM and takes the best by ``preference`` (fewest unverifiable facts, most
memory left, name). Here each distinct demand (devices, nested, memory) keeps a heap of its endpoint's hosts
ordered by that same preference. Within one check capacity only shrinks, so a host's preference only gets worse and
a host that cannot fit a demand never fits it later: a popped host is re-fitted, pushed back when its key went
stale, dropped for that demand when it no longer fits, and chosen otherwise — the same host ``place`` would pick.
What a host's facts alone say to a request shape is judged once (virtplane/fact_verdicts.py); what depends on the
plan's earlier choices (memory reserved, devices taken) is judged at every fit.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from virtplane.fact_verdicts import FactVerdicts
from virtplane.inventory import Host
from virtplane.placement import Assignment, Usage, fit, free_memory, judge, preference
from virtplane.specs import VirtualMachineSpec
from virtplane.verdicts import Judgement


def _demand(spec: VirtualMachineSpec) -> tuple[object, ...]:
    return (tuple((g.mode, g.profile, g.device, g.vendor) for g in spec.gpus or []),
            tuple(n.device for n in spec.nics or [] if n.adapter == "sriov"),
            bool(spec.nested_virtualization), spec.memory or 0)


class HostChooser:
    """Per endpoint: ``choose`` returns the chosen assignment, or None and each host's reasons. ``facts`` may be
    shared with the other judgements of the same check (the hosts must not change while it is in use)."""

    def __init__(self, hosts: Sequence[Host], facts: FactVerdicts | None = None) -> None:
        self.hosts = {host.name: host for host in hosts}
        self.facts = facts if facts is not None else FactVerdicts()
        self._heaps: dict[tuple[object, ...], list[tuple[tuple[int, int, str], str]]] = {}
        self._exhausted: dict[tuple[object, ...], dict[str, list[str]]] = {}

    def choose(self, spec: VirtualMachineSpec, usage: Usage) -> tuple[Assignment | None, dict[str, list[str]]]:
        assignment, _, reasons = self.choose_judged(spec, usage)
        return assignment, reasons

    def choose_judged(self, spec: VirtualMachineSpec, usage: Usage
                      ) -> tuple[Assignment | None, Judgement | None, dict[str, list[str]]]:
        """``choose``, with the chosen host's judgement of the VM (what ``judge`` says there now)."""
        demand = _demand(spec)
        if demand in self._exhausted:
            return None, None, self._exhausted[demand]
        heap = self._heaps.get(demand)
        if heap is None:
            heap = self._heaps[demand] = []
            for host in self.hosts.values():
                assignment, _ = judge(spec, host, usage, self.facts)
                if assignment is not None:
                    heap.append((preference(assignment, free_memory(host, usage)), host.name))
            heapq.heapify(heap)
        while heap:
            key, name = heap[0]
            host = self.hosts[name]
            assignment, judgement = judge(spec, host, usage, self.facts)
            if assignment is None:
                heapq.heappop(heap)
                continue
            current = preference(assignment, free_memory(host, usage))
            if current != key:
                heapq.heapreplace(heap, (current, name))
                continue
            return assignment, judgement, {}
        reasons = {}
        for host in self.hosts.values():
            _, why = fit(spec, host, usage, self.facts)
            reasons[host.name] = why
        self._exhausted[demand] = reasons
        return None, None, reasons

