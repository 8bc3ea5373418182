"""Run every rule over a stack's VMs and an inventory: one entry point for ``virtplane check``, ``plan``,
``apply`` and the CrossGuard pack.

Which host a rule evaluates: the VM's ``node`` when it names one (or the host where the VM already holds devices,
per the inventory); otherwise the host placement would choose (virtplane/placement.py's ``judge`` and
``preference``, via policies/chooser.py), counting what the VMs checked before took. What that host says to the VM
(``judge``: refusals and unknown facts, each owned by a rule) is what the rules report, so a host placement chooses
is never one a mandatory rule then refuses. Pinned VMs are checked first (they have no
choice), then the others in declaration order. When no host can serve a VM, only hw.placement reports it (listing
every host and why); the other rules say nothing about it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from virtplane.declared import DesiredStack
from virtplane.gc_pause import cycle_collector_paused
from virtplane.inventory import Inventory
from virtplane.placement import judge, needs_hardware, record
from virtplane.policies import pool_findings
from virtplane.policies.chooser import HostChooser
from virtplane.policies.containers import ContainerUnderCheck, check_containers, declared_containers
from virtplane.policies.hosts import release
from virtplane.policies.model import ADVISORY, Finding, StackUnderCheck, VmUnderCheck
from virtplane.policies.rules import ALL
from virtplane.policies.rules import placement as placement_rule
from virtplane.policies.waivers import PolicyConfig
from virtplane.specs import VirtualMachineSpec


@dataclass(frozen=True)
class DeclaredVm:
    name: str
    endpoint: str
    spec: VirtualMachineSpec
    file: str | None = None
    line: int | None = None


@dataclass
class Report:
    """Every finding, and every (resource, endpoint, rule) the rules evaluated (for JUnit)."""

    stack: str
    vms: int
    findings: list[Finding] = field(default_factory=list)
    evaluated: list[tuple[str, str, str]] = field(default_factory=list)
    containers: int = 0

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    def summary(self) -> dict[str, object]:
        return {"vms": self.vms, "containers": self.containers, "evaluated": len(self.evaluated),
                "mandatory": len(self.blocking),
                "advisory": sum(1 for f in self.findings if f.level == ADVISORY and f.waived is None),
                "waived": sum(1 for f in self.findings if f.waived is not None),
                "by_rule": dict(sorted(Counter(f.rule for f in self.findings).items()))}


def declared_vms(desired: DesiredStack) -> list[DeclaredVm]:
    return [DeclaredVm(r.name, r.endpoint, r.spec, getattr(r, "file", None), getattr(r, "line", None))
            for r in desired.resources.values()
            if r.kind == "VirtualMachine" and isinstance(r.spec, VirtualMachineSpec)]


def vms_need_policy(desired: DesiredStack) -> bool:
    """True when some VM asks for devices or nested virtualization: only then do plan/apply run the VM rules."""
    return any(needs_hardware(vm.spec) for vm in declared_vms(desired))


def needs_policy(desired: DesiredStack) -> bool:
    """True when plan/apply run rules: the VM rules (see ``vms_need_policy``) or the container rules (the stack has
    containers)."""
    return any(r.kind == "Container" for r in desired.resources.values()) or vms_need_policy(desired)


def needs_host_facts(desired: DesiredStack) -> bool:
    """True when a rule needs the hosts' facts: a VM asking for devices or nested virtualization, or a container
    with devices (the other container rules read only the spec)."""
    return any(needs_hardware(vm.spec) for vm in declared_vms(desired)) or any(
        r.kind == "Container" and getattr(r.spec, "devices", None) for r in desired.resources.values())


def check_stack(desired: DesiredStack, inventory: Inventory, config: PolicyConfig | None = None, *,
                include_vms: bool = True) -> Report:
    """Every rule over the stack's VMs (unless ``include_vms`` is False) and containers."""
    hypervisors = {name: endpoint.kind for name, endpoint in desired.endpoints.items()}
    report = check_vms(desired.identity, declared_vms(desired) if include_vms else [], inventory, hypervisors,
                       config, declared_containers(desired, inventory, hypervisors))
    if desired.pools:  # a pool's desktops that find no host: one finding on the pool
        pool_of = {r.name: r.pool for r in desired.resources.values() if r.pool is not None}
        report.findings = pool_findings.fold(report.findings, pool_of,
                                             {name: pool.spec.size for name, pool in desired.pools.items()})
    return report


def check_vms(identity: str, vms: Sequence[DeclaredVm], inventory: Inventory,
              hypervisors: Mapping[str, str] | None = None, config: PolicyConfig | None = None,
              containers: Sequence[ContainerUnderCheck] = ()) -> Report:
    """The VM rules over ``vms``, then the container rules over ``containers`` (which see the devices the VMs were
    placed on); waivers and downgrades of ``config`` applied to every finding."""
    with cycle_collector_paused():  # the findings and placements hold no cycles (virtplane/gc_pause.py)
        return _check_vms(identity, vms, inventory, hypervisors or {}, config, containers)


def _check_vms(identity: str, vms: Sequence[DeclaredVm], inventory: Inventory, hypervisors: Mapping[str, str],
               config: PolicyConfig | None, containers: Sequence[ContainerUnderCheck]) -> Report:
    specs = [vm.spec.with_creation_defaults() for vm in vms]
    names = frozenset(vm.name for vm in vms)
    hosts_by_endpoint, running_on = release(inventory, names, {vm.name: s.memory for vm, s in zip(vms, specs,
                                                                                                 strict=True)})
    stack = StackUnderCheck(identity, names)
    choosers: dict[str, HostChooser] = {}
    report = Report(identity, len(vms))
    per_vm: list[list[Finding]] = [[] for _ in vms]
    pinned = [i for i, s in enumerate(specs) if s.node or vms[i].name in running_on]
    free = [i for i, s in enumerate(specs) if not (s.node or vms[i].name in running_on)]
    for index in pinned + free:
        declared, spec = vms[index], specs[index]
        vm = VmUnderCheck(declared.name, declared.endpoint, spec, hypervisor=hypervisors.get(declared.endpoint),
                          file=declared.file, line=declared.line)
        _locate(vm, hosts_by_endpoint.get(declared.endpoint, []), running_on.get(declared.name), stack, choosers)
        for rule in ALL:
            if (vm.host is None and rule is not placement_rule) or not (
                    rule.RULE.applies(vm) or any(vm.judgement.of(rule.RULE.id))):
                continue
            report.evaluated.append((vm.name, vm.endpoint, rule.RULE.id))
            per_vm[index].extend(rule.check(vm, inventory, stack))
        if vm.assignment is not None:
            record(spec, vm.assignment, stack.usage)
    report.findings = [finding for found in per_vm for finding in found]
    found, evaluated = check_containers(list(containers), inventory, stack)
    report.findings += found
    report.evaluated += evaluated
    report.containers = len(containers)
    if config is not None:
        config.apply(report.findings)
    return report


def _locate(vm: VmUnderCheck, hosts: list, running_on: str | None, stack: StackUnderCheck,
            choosers: dict[str, HostChooser]) -> None:
    """Set the host the rules evaluate (and the devices placement gives there), or why there is none."""
    node = vm.spec.node or running_on
    if not hosts:
        vm.placement_problem = (f"cannot verify VM {vm.name}: the inventory has no hosts of endpoint "
                                f"'{vm.endpoint}'")
        return
    if node is not None:
        host = next((h for h in hosts if h.name == node), None)
        if host is None:
            known = ", ".join(sorted(h.name for h in hosts))
            vm.placement_problem = f"endpoint '{vm.endpoint}' has no host '{node}' (hosts: {known})"
        elif host.online is False:
            vm.placement_problem = f"host '{node}' is offline"
        else:
            vm.host = host
            vm.assignment, vm.judgement = judge(vm.spec, host, stack.usage)
    else:
        chooser = choosers.get(vm.endpoint)
        if chooser is None:
            chooser = choosers[vm.endpoint] = HostChooser(hosts)
        assignment, reasons = chooser.choose(vm.spec, stack.usage)
        if assignment is None:
            vm.placement_problem = f"no host of endpoint '{vm.endpoint}' can serve it"
            vm.candidates = reasons
        else:
            vm.host = chooser.hosts[assignment.host]
            vm.assignment, vm.judgement = judge(vm.spec, vm.host, stack.usage)
    if vm.host is not None:
        vm.hypervisor = vm.host.hypervisor
