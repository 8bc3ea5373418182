"""SriovAppliance: a VM with SR-IOV virtual functions on given networks (a router, a packet processor, an NFV
appliance), on any hypervisor that offers SR-IOV."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import components
from virtplane.modules._vm import PCIE_MACHINE, build_vm, hypervisor, refused
from virtplane.resources import Network, Nic, _unknown

KIND = "SriovAppliance"
TYPE = f"virtplane:modules:{KIND}"


class SriovAppliance(pulumi.ComponentResource):
    """A VM with ``count`` SR-IOV ports on each ``(network, count)`` of ``ports`` (each port a virtual function of
    a physical function of its host: ``device`` names the PF's PCI address or a Proxmox mapping; unset, placement
    picks a PF with free VFs), plus an optional paravirtual ``management`` NIC first.

    Set for you: all memory reserved (VFs are PCI devices), placement on a host whose PFs have enough free VFs for
    every port, and on Proxmox the q35 machine (PCI Express). On Hyper-V an SR-IOV port needs an external switch
    created with IOV; on Proxmox a VF joins the bridge untagged (its VLAN is the PF's). ``cpus`` (2), ``memory``
    (4 GiB), ``disk`` (10 GiB; none when ``clone_from`` names a golden image) and ``tags`` are yours. Output:
    ``vm`` (the VirtualMachine, named as the appliance).
    """

    def __init__(self, resource_name: str, *, ports: list[tuple[Network | str, int]], device: str | None = None,
                 management: Network | str | None = None, cpus: int = 2, memory: int | str = "4GiB",
                 disk: int | str | None = "10GiB", clone_from: str | None = None, tags: list[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        collected = components.start(self, TYPE, resource_name, opts)
        problems = _unknown(unknown, ["ports", "device", "management", "cpus", "memory", "disk", "clone_from",
                                      "tags", "opts"])
        vfs: list[Nic] = []
        if not isinstance(ports, list | tuple) or not ports:
            problems.append(("ports", "expected a non-empty list of (network, count) pairs, e.g. [('wan', 2)]"))
        else:
            for index, port in enumerate(ports):
                if not (isinstance(port, tuple | list) and len(port) == 2 and isinstance(port[1], int)
                        and not isinstance(port[1], bool) and port[1] >= 1):
                    problems.append((f"ports[{index}]", f"expected (network, count) with a count of at least 1, got "
                                                        f"{port!r}"))
                    continue
                vfs += [Nic(port[0], adapter="sriov", device=device) for _ in range(port[1])]
        if refused(self, KIND, resource_name, collected, problems):
            return
        vm = build_vm(self, resource_name, opts, collected, cpus=cpus, memory=memory, disk=disk, network=management,
                      clone_from=clone_from, extra_nics=vfs, machine=PCIE_MACHINE.get(hypervisor(opts) or ""),
                      tags=tags)
        components.finish(self, collected, {"vm": vm})
