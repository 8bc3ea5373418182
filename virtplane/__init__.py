"""virtplane: declarative virtual machines, containers, networks and disks on vSphere, Proxmox VE and Hyper-V.

The resource classes are imported on first use, so the ``virtplane`` command starts without loading Pulumi.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from virtplane.container_resources import Container, ContainerFeatures, Mount
    from virtplane.pools.resource import DesktopPool
    from virtplane.resources import (
        CloudInit,
        Disk,
        DiskArgs,
        Endpoint,
        Gpu,
        GpuArgs,
        Network,
        Nic,
        NicArgs,
        VirtualMachine,
    )

__all__ = ["CloudInit", "Container", "ContainerFeatures", "DesktopPool", "Disk", "DiskArgs", "Endpoint", "Gpu",
           "GpuArgs", "Mount", "Network", "Nic", "NicArgs", "VirtualMachine"]
_CONTAINER_NAMES = ("Container", "ContainerFeatures", "Mount")
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "DesktopPool":
        from virtplane.pools.resource import DesktopPool

        return DesktopPool
    if name in _CONTAINER_NAMES:
        from virtplane import container_resources

        return getattr(container_resources, name)
    if name in __all__:
        from virtplane import resources

        return getattr(resources, name)
    if name[:1].isupper():  # the schema's enum types, for code generated from it (virtplane/enums.py)
        from virtplane.enums import enums

        if name in enums():
            return enums()[name]
    raise AttributeError(f"module 'virtplane' has no attribute {name!r}")
