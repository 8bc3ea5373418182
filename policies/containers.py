"""The container rules' view of a stack: each declared Container with the host it names, checked by the rules in
``CONTAINER_RULES`` (policies/rules/container_*.py). A container rule exports ``RULE`` and ``check(ct, inventory,
stack)`` as a VM rule does; what it looks at is a ``ContainerUnderCheck``.

A container's ``spec`` carries the creation defaults for what the stack leaves unset, unless it is a clone (then an
unset field is unknown: the source's). Only a container that names its node has a host (one with devices must).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from virtplane.container_specs import ContainerSpec
from virtplane.declared import DesiredStack
from virtplane.inventory import Host, Inventory
from virtplane.policies.model import ADVISORY, Finding, Level, Rule, StackUnderCheck


@dataclass
class ContainerUnderCheck:
    name: str
    endpoint: str
    spec: ContainerSpec
    hypervisor: str | None = None
    host: Host | None = None
    file: str | None = None
    line: int | None = None

    @property
    def unprivileged(self) -> bool | None:
        """Whether it runs unprivileged; None for a clone that does not say (its source's, unknown here)."""
        return self.spec.unprivileged

    def finding(self, rule: Rule, message: str, *, field: str | None = None, remediation: str = "",
                level: Level | None = None) -> Finding:
        return Finding(rule.id, level or rule.level, self.name, self.endpoint, self.host.name if self.host else None,
                       field, message, remediation, self.file, self.line, kind="Container")

    def unknown(self, rule: Rule, fact: str, *, field: str | None = None, remediation: str = "") -> Finding:
        """An advisory for a fact that cannot be verified: never a silent pass."""
        return self.finding(rule, f"cannot verify {fact}", field=field, level=ADVISORY,
                            remediation=remediation or "declare it, or waive the rule with a reason in the stack's "
                                                       "virtplane:policy config")


def under_check(name: str, endpoint: str, spec: ContainerSpec, inventory: Inventory, hypervisor: str | None = None,
                file: str | None = None, line: int | None = None) -> ContainerUnderCheck:
    """A declared container as the rules see it: its creation defaults filled in, the host it names found."""
    spec = spec.with_creation_defaults()
    host = next((h for h in inventory.by_endpoint(endpoint) if h.name == spec.node), None)
    return ContainerUnderCheck(name, endpoint, spec, hypervisor, host, file, line)


def declared_containers(desired: DesiredStack, inventory: Inventory,
                        hypervisors: Mapping[str, str] | None = None) -> list[ContainerUnderCheck]:
    hypervisors = hypervisors or {}
    return [under_check(r.name, r.endpoint, r.spec, inventory, hypervisors.get(r.endpoint), r.file, r.line)
            for r in desired.resources.values() if r.kind == "Container" and isinstance(r.spec, ContainerSpec)]


def check_containers(containers: list[ContainerUnderCheck], inventory: Inventory, stack: StackUnderCheck
                     ) -> tuple[list[Finding], list[tuple[str, str, str]]]:
    """Every container rule over every container: (findings, (container, endpoint, rule) evaluated)."""
    from virtplane.policies.rules import CONTAINER_RULES

    findings: list[Finding] = []
    evaluated: list[tuple[str, str, str]] = []
    for ct in containers:
        for rule in CONTAINER_RULES:
            if not rule.RULE.applies(ct):
                continue
            evaluated.append((ct.name, ct.endpoint, rule.RULE.id))
            findings.extend(rule.check(ct, inventory, stack))
    return findings, evaluated
