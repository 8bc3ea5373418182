"""What one host says to one VM's request: refusals and facts it cannot verify, each owned by the policy rule that
reports it. Placement refuses a host on any refusal; the policy layer reports the same refusals under their rules,
so the two cannot disagree (virtplane/placement.py, policies/rules/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["mandatory", "advisory"]

# Rule ids (the rule modules in policies/rules/ carry the same ids, their help and their vendor sources).
VIRTUALIZATION = "hw.virtualization"
SLAT = "hw.slat"
IOMMU = "hw.iommu"
NESTED = "hw.nested"
GPU_PASSTHROUGH = "hw.gpu-passthrough"
DEVICE_GROUP = "hw.device-group"
DEVICE_IN_USE = "hw.device-in-use"
VGPU = "hw.vgpu"
VGPU_SIZE = "hw.vgpu-size"
GRAPHICS_MODE = "hw.graphics-mode"
SRIOV = "hw.sriov"
MMIO = "hw.mmio"
HARDWARE_VERSION = "hw.hardware-version"
MEMORY_RESERVATION = "hw.memory-reservation"
PLACEMENT = "hw.placement"


@dataclass(frozen=True)
class Refusal:
    """Why a host cannot serve a VM. ``why`` reads after the host's name in placement's errors ("has no amd GPU");
    the rule's message is ``host <name> <subject>: <why>``, ``host <name> <why>`` without a subject, or ``why``
    alone when it speaks of the VM's own settings (``about_vm``)."""

    rule: str
    field: str | None
    why: str
    subject: str | None = None
    remedy: str = ""
    about_vm: bool = False

    def message(self, host: str) -> str:
        if self.about_vm:
            return self.why
        return f"host {host} {self.subject}: {self.why}" if self.subject else f"host {host} {self.why}"


@dataclass(frozen=True)
class Unknown:
    """A fact the host does not report: never a silent pass. ``fact`` names it ("nested virtualization")."""

    rule: str
    field: str | None
    fact: str
    level: Level = "advisory"


@dataclass
class Judgement:
    """Everything one host says to one request: refusals and unknowns, in the order found."""

    refusals: list[Refusal] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)

    def refuse(self, rule: str, field: str | None, why: str, subject: str | None = None, remedy: str = "",
               about_vm: bool = False) -> None:
        self.refusals.append(Refusal(rule, field, why, subject, remedy, about_vm))

    def unknown(self, rule: str, field: str | None, fact: str, level: Level = "advisory") -> None:
        self.unknowns.append(Unknown(rule, field, fact, level))

    def of(self, rule: str) -> tuple[list[Refusal], list[Unknown]]:
        return [r for r in self.refusals if r.rule == rule], [u for u in self.unknowns if u.rule == rule]
