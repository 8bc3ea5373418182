"""What a stack says about the rules: waive or downgrade them, in ``Pulumi.<stack>.yaml`` under ``virtplane:policy``.

    config:
      virtplane:policy:
        waive:
          hw.mobility: "batch VMs are never migrated"          # every VM
          hw.gpu-passthrough@render-1: "the GPU is freed by the change window script"   # one VM
        downgrade:
          hw.vgpu: "our A40s run in mixed-size mode"           # mandatory -> advisory; a list of ids also works

A waived finding is still reported, marked waived with its reason; it no longer blocks. Waiving a mandatory rule
needs a written reason. A downgraded finding is reported as an advisory. Unknown rule ids are errors, so a typo
never waives nothing silently."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtplane.errors import VirtplaneError
from virtplane.policies.model import ADVISORY, Finding

CONFIG_KEY = "virtplane:policy"


@dataclass
class PolicyConfig:
    waive: dict[str, str] = field(default_factory=dict)  # "rule" or "rule@resource" -> reason
    downgrade: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, where: str = CONFIG_KEY) -> PolicyConfig:
        from virtplane.policies.rules import BY_ID

        if value is None:
            return cls()
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise VirtplaneError(f"{where}: expected an object with 'waive' and 'downgrade', got invalid JSON "
                                     f"({exc.msg})") from None
        if not isinstance(value, dict) or set(value) - {"waive", "downgrade"}:
            raise VirtplaneError(f"{where}: expected an object with only 'waive' and 'downgrade'")
        config = cls(_entries(value.get("waive"), f"{where}.waive"), _entries(value.get("downgrade"),
                                                                           f"{where}.downgrade"))
        for section, entries in (("waive", config.waive), ("downgrade", config.downgrade)):
            for key, reason in entries.items():
                rule = key.split("@", 1)[0]
                if rule not in BY_ID:
                    raise VirtplaneError(f"{where}.{section}: unknown rule '{rule}' (rules: {', '.join(BY_ID)})")
                if section == "waive" and BY_ID[rule].RULE.level == "mandatory" and not reason.strip():
                    raise VirtplaneError(f"{where}.waive: mandatory rule '{key}' can only be waived with a written "
                                         "reason")
        return config

    def apply(self, findings: list[Finding]) -> list[Finding]:
        for finding in findings:
            reason = self._lookup(self.waive, finding)
            if reason is not None:
                finding.waived = reason or "waived"
                continue
            reason = self._lookup(self.downgrade, finding)
            if reason is not None and finding.level != ADVISORY:
                finding.level = ADVISORY
                finding.downgraded = reason or "downgraded"
        return findings

    @staticmethod
    def _lookup(entries: dict[str, str], finding: Finding) -> str | None:
        if not entries:
            return None
        specific = entries.get(f"{finding.rule}@{finding.resource}")
        return specific if specific is not None else entries.get(finding.rule)


def _entries(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return dict.fromkeys(value, "")
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise VirtplaneError(f"{where}: expected a map of rule id to reason (or a list of rule ids)")


def load(stack_dir: Path, project: str, stack: str) -> PolicyConfig:
    """The stack's policy config from ``Pulumi.<stack>.yaml`` (none: nothing waived)."""
    from virtplane.evaluate import read_config

    values, _ = read_config(stack_dir, project, stack)
    return PolicyConfig.parse(values.get(CONFIG_KEY), f"Pulumi.{stack}.yaml {CONFIG_KEY}")
