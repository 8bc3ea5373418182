"""The small shared types of the policy layer: a rule's description, a finding, and what rules look at.

A rule module (policies/rules/) exports ``RULE`` (a ``Rule``) and ``check(vm, inventory, stack)`` returning
``Finding``s (a container rule: ``check(ct, inventory, stack)``, policies/containers.py). ``VmUnderCheck`` is one
declared VM with the host the rules evaluate it on (its ``node``, else the host placement chooses);
``StackUnderCheck`` is the whole stack with the capacity taken per host so far, counted in declaration order, so a
rule can tell which VM is the one too many (policies/evaluate.py builds it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from virtplane.inventory import Host, Inventory
from virtplane.placement import Assignment, Usage
from virtplane.specs import VirtualMachineSpec
from virtplane.verdicts import Judgement

Level = Literal["mandatory", "advisory"]
MANDATORY: Level = "mandatory"
ADVISORY: Level = "advisory"


@dataclass(frozen=True)
class Source:
    """A vendor document a rule follows."""

    title: str
    url: str


@dataclass(frozen=True)
class Rule:
    """What a rule is: its id (``hw.iommu``), default level, one-line title, help text and sources.
    ``applies`` says whether the rule has anything to say about a VM (used for JUnit test cases)."""

    id: str
    level: Level
    title: str
    help: str
    sources: tuple[Source, ...]
    applies: Callable[[VmUnderCheck], bool] = lambda vm: True

    @property
    def help_uri(self) -> str:
        return self.sources[0].url if self.sources else ""


@dataclass
class Finding:
    """One rule's verdict about one resource on one host. ``waived`` holds the stack's written reason when
    the stack waived the rule (the finding is still reported); ``downgraded`` marks a mandatory rule the stack
    turned into an advisory."""

    rule: str
    level: Level
    resource: str
    endpoint: str
    host: str | None
    field: str | None
    message: str
    remediation: str = ""
    file: str | None = None
    line: int | None = None
    waived: str | None = None
    downgraded: str | None = None
    kind: str = "VirtualMachine"  # the resource's kind

    @property
    def noun(self) -> str:
        """How sentences name the resource's kind: "VM", "container"."""
        return "VM" if self.kind == "VirtualMachine" else self.kind.lower()

    @property
    def blocking(self) -> bool:
        """A mandatory finding that no waiver covers: it makes ``check`` exit 2 and ``apply`` refuse."""
        return self.level == MANDATORY and self.waived is None

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "rule": self.rule, "level": self.level, "kind": self.kind, "resource": self.resource,
            "endpoint": self.endpoint,
            "host": self.host, "field": self.field, "message": self.message, "remediation": self.remediation,
            "file": self.file, "line": self.line}
        if self.waived is not None:
            document["waived"] = self.waived
        if self.downgraded is not None:
            document["downgraded"] = self.downgraded
        return document


@dataclass
class VmUnderCheck:
    """A declared VM as the rules see it. ``spec`` carries creation defaults for unset fields unless the VM is
    a clone; ``host`` is the host the rules evaluate (None when no host can serve it: see hw.placement)."""

    name: str
    endpoint: str
    spec: VirtualMachineSpec
    hypervisor: str | None = None
    host: Host | None = None
    assignment: Assignment | None = None
    placement_problem: str | None = None  # why no host was found (None: a host was found)
    candidates: dict[str, list[str]] = field(default_factory=dict)  # host -> why it cannot serve the VM
    judgement: Judgement = field(default_factory=Judgement)  # what ``host`` says to the VM (virtplane/verdicts.py)
    file: str | None = None
    line: int | None = None

    @cached_property
    def passthrough_gpus(self) -> list[int]:
        return [i for i, gpu in enumerate(self.spec.gpus or []) if gpu.mode == "passthrough"]

    @cached_property
    def vgpus(self) -> list[int]:
        return [i for i, gpu in enumerate(self.spec.gpus or []) if gpu.mode == "vgpu"]

    @cached_property
    def sriov_nics(self) -> list[int]:
        return [i for i, nic in enumerate(self.spec.nics or []) if nic.adapter == "sriov"]

    @cached_property
    def has_devices(self) -> bool:
        """Passthrough GPUs, vGPUs or SR-IOV NICs: the devices that pin memory and the VM to its host."""
        return bool(self.spec.gpus) or bool(self.sriov_nics)

    def finding(self, rule: Rule, message: str, *, field: str | None = None, remediation: str = "",
                level: Level | None = None, host: str | None = None) -> Finding:
        return Finding(rule.id, level or rule.level, self.name, self.endpoint,
                       host if host is not None else (self.host.name if self.host else None), field, message,
                       remediation, self.file, self.line)


@dataclass
class StackUnderCheck:
    """The whole stack as the rules see it while one VM is checked: ``usage`` holds what the VMs checked before it
    took on each host (pinned VMs first, then the others in declaration order), so the VM
    that is one too many for a PF's free VFs, a vGPU profile's free instances, a GPU or a host's memory is the one
    that gets the finding. Holdings of the stack's own VMs that already run are released first (policies/hosts.py)."""

    identity: str
    names: frozenset[str] = frozenset()
    usage: Usage = field(default_factory=Usage)


def unknown(vm: VmUnderCheck, rule: Rule, fact: str, *, field: str | None = None, level: Level = ADVISORY,
            remediation: str = "") -> Finding:
    """The finding for a fact the host does not report: never a silent pass."""
    host = vm.host.name if vm.host else "?"
    return vm.finding(rule, f"cannot verify {fact} on {host}: the host does not report it", field=field,
                      level=level, remediation=remediation or "check it on the host by hand, or waive the rule "
                      "with a reason in the stack's virtplane:policy config")


def judged(vm: VmUnderCheck, rule: Rule, remediation: str = "") -> list[Finding]:
    """The refusals and unknown facts ``rule`` owns in what the VM's host said to it (the same placement acts on):
    refusals at the rule's level, unknowns as "cannot verify" findings."""
    host = vm.host.name if vm.host else "?"
    refusals, unknowns = vm.judgement.of(rule.id)
    found = [vm.finding(rule, refusal.message(host), field=refusal.field,
                        remediation=refusal.remedy or remediation) for refusal in refusals]
    found += [unknown(vm, rule, item.fact, field=item.field, level=item.level) for item in unknowns]
    return found


CheckFunction = Callable[[VmUnderCheck, Inventory, StackUnderCheck], list[Finding]]
