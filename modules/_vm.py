"""What the modules share: the endpoint's hypervisor (a module adapts its VM to it), a module's refusal of its own
arguments, and the one VM most modules are made of."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import components
from virtplane.resources import Disk, Network, Nic, VirtualMachine, _refuse

# A PCI device wants PCI Express under it: Proxmox's q35 machine (its default i440fx has no PCIe slots, so
# hostpci gets no pcie=1); vSphere and Hyper-V Generation 2 VMs have PCIe already.
PCIE_MACHINE = {"proxmox": "q35"}


def hypervisor(opts: pulumi.ResourceOptions | None) -> str | None:
    """The kind of the module's endpoint (``vsphere``, ``proxmox``, ``hyperv``), None for the default endpoint."""
    return getattr(opts.provider if opts is not None else None, "endpoint_kind", None)


def refused(component: Any, kind: str, name: str, collected: bool, problems: list[tuple[str, str]]) -> bool:
    """Report the module's own problems (all at once, under the CLI); True when there were any."""
    if not problems:
        return False
    _refuse(kind, name, problems)
    components.finish(component, collected, {"vm": None})
    return True


def build_vm(component: Any, name: str, opts: pulumi.ResourceOptions | None, collected: bool, *, cpus: int,
             memory: int | str, disk: int | str | None, network: Network | str | None, clone_from: str | None,
             extra_nics: list[Nic] | None = None, **fields: Any) -> VirtualMachine:
    """The module's VM, named as the module: a disk unless cloned (the clone keeps its template's), a paravirtual
    NIC on ``network`` and the module's other NICs, on the module's endpoint."""
    nics = ([Nic(network)] if network is not None else []) + list(extra_nics or [])
    disks = [Disk(disk)] if disk is not None and clone_from is None else None
    return VirtualMachine(name, cpus=cpus, memory=memory, disks=disks, nics=nics or None, clone_from=clone_from,
                          opts=components.child_options(component, opts, collected), **fields)
