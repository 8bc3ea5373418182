"""GpuWorkstation: a VM with a vGPU slice or a whole GPU, ready for a GPU guest on any hypervisor."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import components
from virtplane.modules._vm import PCIE_MACHINE, build_vm, hypervisor, refused
from virtplane.resources import Gpu, Network, _unknown

KIND = "GpuWorkstation"
TYPE = f"virtplane:modules:{KIND}"


class GpuWorkstation(pulumi.ComponentResource):
    """A VM with a GPU: a vGPU slice by ``profile`` (vSphere ``grid_a100-20c``, Proxmox mdev ``nvidia-471``,
    Hyper-V ``gpu-p/4``), or, with ``passthrough=True``, a whole GPU (``device``: a PCI address or Proxmox
    mapping; unset: any capable GPU, filtered by ``vendor``).

    What a GPU guest needs is set for you: UEFI firmware (large BARs are mapped above 4 GiB only by UEFI guests);
    all memory reserved (every driver reserves it for a VM holding a PCI device: vSphere locks it, Proxmox turns
    the balloon off, Hyper-V uses static memory); on Proxmox the q35 machine, so the device sits on PCI Express;
    the VM placed at plan time on a host that has the GPU. ``cpus`` (4), ``memory`` (16 GiB), ``disk`` (60 GiB;
    none when ``clone_from`` names a golden image), ``network`` (a paravirtual NIC), ``secure_boot`` and ``tags``
    are yours. Output: ``vm`` (the VirtualMachine, named as the workstation).
    """

    def __init__(self, resource_name: str, *, profile: str | None = None, passthrough: bool = False,
                 device: str | None = None, vendor: str | None = None, cpus: int = 4, memory: int | str = "16GiB",
                 disk: int | str | None = "60GiB", network: Network | str | None = None,
                 clone_from: str | None = None, secure_boot: bool | None = None, tags: list[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        collected = components.start(self, TYPE, resource_name, opts)
        problems = _unknown(unknown, ["profile", "passthrough", "device", "vendor", "cpus", "memory", "disk",
                                      "network", "clone_from", "secure_boot", "tags", "opts"])
        if passthrough and profile:
            problems.append(("profile", "is for a vGPU slice; a passthrough GPU is a whole device (leave profile "
                                        "unset, or passthrough=False)"))
        elif not passthrough and not profile:
            problems.append(("profile", "is required for a vGPU workstation (e.g. 'grid_a100-20c'), or set "
                                        "passthrough=True for a whole GPU"))
        if refused(self, KIND, resource_name, collected, problems):
            return
        gpu = Gpu("passthrough", device=device, vendor=vendor) if passthrough else Gpu("vgpu", profile=profile,
                                                                                          device=device)
        vm = build_vm(self, resource_name, opts, collected, cpus=cpus, memory=memory, disk=disk, network=network,
                      clone_from=clone_from, gpus=[gpu], firmware="uefi", secure_boot=secure_boot,
                      machine=PCIE_MACHINE.get(hypervisor(opts) or ""), tags=tags)
        components.finish(self, collected, {"vm": vm})


__all__ = ["GpuWorkstation"]
