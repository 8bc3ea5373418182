"""What every virtplane component (a ``pulumi.ComponentResource`` made of virtplane resources: a DesktopPool, the
modules under modules/) shares: under ``pulumi up`` it registers as a component and parents its children; under
virtplane's own CLI it is not registered (its children are collected like any resource, under their own names)."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import declared
from virtplane.resources import _stand_in_outputs


def start(component: pulumi.ComponentResource, type_: str, name: str, opts: pulumi.ResourceOptions | None) -> bool:
    """Register ``component`` (Pulumi) or give it stand-in outputs (virtplane CLI); True under the CLI."""
    component.resource_name = name  # type: ignore[attr-defined]
    if declared.active_collector() is not None:
        _stand_in_outputs(component, name, type_)
        return True
    pulumi.ComponentResource.__init__(component, type_, name, None, opts)
    return False


def child_options(component: pulumi.ComponentResource, opts: pulumi.ResourceOptions | None,
                  collected: bool) -> pulumi.ResourceOptions:
    """The options of a component's children: its endpoint, and (under Pulumi) the component as parent."""
    provider = opts.provider if opts is not None else None
    return pulumi.ResourceOptions(provider=provider, parent=None if collected else component)


def finish(component: pulumi.ComponentResource, collected: bool, outputs: dict[str, Any]) -> None:
    """The component's outputs: attributes under the CLI, registered outputs under Pulumi."""
    for key, value in outputs.items():
        setattr(component, key, value)
    if not collected:
        component.register_outputs(outputs)
