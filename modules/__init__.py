"""Reusable, hypervisor-portable components (Pulumi ComponentResources) built from virtplane resources.

Each works unchanged under ``virtplane plan/apply`` (its children are collected under their own names) and under
``pulumi up`` (a component of type ``virtplane:modules:<Name>`` parenting its children). docs/modules.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtplane.modules.gpu_workstation import GpuWorkstation
    from virtplane.modules.nested_lab import NestedLab
    from virtplane.modules.sriov_appliance import SriovAppliance
    from virtplane.pools.resource import DesktopPool

__all__ = ["DesktopPool", "GpuWorkstation", "NestedLab", "SriovAppliance"]
_HOMES = {"DesktopPool": "virtplane.pools.resource", "GpuWorkstation": "virtplane.modules.gpu_workstation",
          "NestedLab": "virtplane.modules.nested_lab", "SriovAppliance": "virtplane.modules.sriov_appliance"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'virtplane.modules' has no attribute {name!r}")
