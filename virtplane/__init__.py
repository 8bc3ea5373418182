"""virtplane: declarative virtual machines, networks and disks on vSphere, Proxmox VE and Hyper-V.

The resource classes are imported on first use, so the ``virtplane`` command starts without loading Pulumi.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtplane.pools.resource import DesktopPool
    from virtplane.resources import Disk, Endpoint, Gpu, Network, Nic, VirtualMachine

__all__ = ["DesktopPool", "Disk", "Endpoint", "Gpu", "Network", "Nic", "VirtualMachine"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "DesktopPool":
        from virtplane.pools.resource import DesktopPool

        return DesktopPool
    if name in __all__:
        from virtplane import resources

        return getattr(resources, name)
    raise AttributeError(f"module 'virtplane' has no attribute {name!r}")
