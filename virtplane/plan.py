"""A plan: per resource, the action to take and each changed field with how it will be applied."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from virtplane.providers.base import FieldChange, Observed, Rule
from virtplane.specs import Spec


class Action(enum.StrEnum):
    NOOP = "noop"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True)
class PlannedChange:
    change: FieldChange
    rule: Rule

    def to_json(self) -> dict[str, Any]:
        return {"field": self.change.path, "old": self.change.old, "new": self.change.new,
                "apply": self.rule.value}


@dataclass
class ResourcePlan:
    kind: str
    name: str
    endpoint: str
    action: Action
    spec: Spec | None = None
    observed: Observed | None = None
    changes: list[PlannedChange] = field(default_factory=list)
    depends_on: set[str] = field(default_factory=set)
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def needs_power_off(self) -> bool:
        return any(c.rule is Rule.POWER_OFF for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "endpoint": self.endpoint, "action": self.action.value,
                "power_off": self.needs_power_off, "note": self.note or None,
                "changes": [c.to_json() for c in self.changes]}


@dataclass
class Plan:
    stack: str
    resources: list[ResourcePlan] = field(default_factory=list)

    @property
    def pending(self) -> list[ResourcePlan]:
        return [r for r in self.resources if r.action is not Action.NOOP]

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for resource in self.resources:
            counts[resource.action.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "summary": self.counts(),
                "resources": [r.to_json() for r in self.resources]}
