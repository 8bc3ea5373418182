"""DiffConfig: what a change of an Endpoint's settings does under Pulumi.

A change of the endpoint's identity — its ``kind``, or a setting that decides which backend and which of its
objects it reaches (``Provider.identity_settings``: vSphere ``server`` and ``datacenter``, Proxmox ``endpoint``,
Hyper-V ``server``) — points the stack at other objects: it is a replacement of the provider, which Pulumi carries
out by replacing every resource of that Endpoint (deleted from the old backend, destroying their disks, then
created on the new one). So it is reported in ``replaces`` (delete before replace, so the new provider never
meets the old objects), and refused, like any change that destroys data, unless ``allowDataLoss`` allows it. Any
other setting (credentials, defaults for new objects, timeouts) is changed in place: the resources stay.
A value not known yet (a preview) that may change the identity is shown as a replacement, not refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.provider.experimental.provider import PropertyDiff, PropertyDiffKind

from virtplane import redact
from virtplane.errors import VirtplaneError
from virtplane.plugin import guards
from virtplane.plugin.endpoint import ENGINE_KEYS, settings_inputs
from virtplane.plugin.values import has_unknown
from virtplane.providers.registry import KINDS, provider_class


@dataclass
class ConfigDiff:
    changed: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    detailed: dict[str, PropertyDiff] = field(default_factory=dict)


def identity_settings(kind: str, name: str) -> frozenset[str]:
    if kind not in KINDS:
        return frozenset()
    return provider_class(kind, name).identity_settings


def diff_config(name: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> ConfigDiff:
    """The settings that changed and those of them that replace the provider; raises when a replacement is known
    and data loss is not allowed."""
    old_kind, _ = settings_inputs(olds)
    new_kind, _ = settings_inputs(news)
    identity = {"kind"} | identity_settings(old_kind, name) | identity_settings(new_kind, name)
    keys = sorted((set(olds) | set(news)) - ENGINE_KEYS)
    result = ConfigDiff()
    for key in keys:
        old, new = (old_kind, new_kind) if key == "kind" else (olds.get(key), news.get(key))
        if old == new and not has_unknown(new):
            continue
        result.changed.append(key)
        replace = key in identity
        if replace:
            result.replaces.append(key)
        kind = PropertyDiffKind.UPDATE_REPLACE if replace else PropertyDiffKind.UPDATE
        result.detailed[key] = PropertyDiff(kind, True)
    known = [key for key in result.replaces if not has_unknown(news.get(key))]
    allowed = bool(guards.flag(news.get("allowDataLoss"))) or guards.allowed_by_environment()
    if known and not allowed:
        changes = ", ".join(f"{key} from {_shown(old_kind if key == 'kind' else olds.get(key))} to "
                            f"{_shown(new_kind if key == 'kind' else news.get(key))}" for key in known)
        raise VirtplaneError(redact.redact(
            f"refusing to apply: Endpoint '{name}': changing its {changes} points the stack at another backend, so "
            "Pulumi would replace every resource of this Endpoint (deleting each from the old backend, with its "
            f"disks, and creating it on the new one). Nothing was changed; {guards.ALLOWANCE} to apply it anyway, "
            "or give the Endpoint its previous settings"))
    return result


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value)
