"""NestedLab: a VM prepared to host other hypervisors (ESXi, Proxmox VE, Hyper-V, KVM inside a VM)."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import components
from virtplane.modules._vm import build_vm, refused
from virtplane.resources import Network, Nic, _unknown
from virtplane.units import SizeError, parse_size

KIND = "NestedLab"
TYPE = f"virtplane:modules:{KIND}"
MIN_MEMORY_MIB = 8192  # a guest hypervisor and one small VM of its own


class NestedLab(pulumi.ComponentResource):
    """A VM whose guest can run VMs of its own: hardware virtualization exposed to it (vSphere's "expose hardware
    assisted virtualization", Proxmox's ``cpu: host`` with nested KVM, Hyper-V's ExposeVirtualizationExtensions),
    placed at plan time on a host that supports nested virtualization, with the memory a guest hypervisor needs
    (``memory``, at least 8 GiB, default 32 GiB: Hyper-V runs nested guests only with static memory, which
    every driver gives a VM it creates), UEFI firmware, and paravirtual NICs (vmxnet3, virtio, synthetic), which
    the nested hypervisors' installers know.

    ``cpus`` (8), ``disk`` (200 GiB; none when ``clone_from`` names a golden image), ``networks`` (one NIC each;
    on Hyper-V the driver turns MAC address spoofing on for them, so bridged nested guests reach the network; a
    vSphere port group needs promiscuous mode and forged transmits, which virtplane does not manage:
    docs/modules.md) and ``tags`` are yours. Output: ``vm`` (the VirtualMachine, named as the lab).
    """

    def __init__(self, resource_name: str, *, cpus: int = 8, memory: int | str = "32GiB",
                 disk: int | str | None = "200GiB", networks: list[Network | str] | None = None,
                 clone_from: str | None = None, tags: list[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        collected = components.start(self, TYPE, resource_name, opts)
        problems = _unknown(unknown, ["cpus", "memory", "disk", "networks", "clone_from", "tags", "opts"])
        try:
            if parse_size(memory, "MiB") < MIN_MEMORY_MIB:
                problems.append(("memory", f"a guest hypervisor needs at least {MIN_MEMORY_MIB} MiB (8GiB); got "
                                           f"{memory!r}"))
        except SizeError as exc:
            problems.append(("memory", str(exc)))
        if refused(self, KIND, resource_name, collected, problems):
            return

        vm = build_vm(self, resource_name, opts, collected, cpus=cpus, memory=memory, disk=disk, network=None,
                      clone_from=clone_from, extra_nics=[Nic(n, adapter="paravirtual") for n in networks or []],
                      nested_virtualization=True, firmware="uefi", tags=tags)
        components.finish(self, collected, {"vm": vm})
