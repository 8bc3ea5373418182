"""Which device of a host a VM's GPU, vGPU or SR-IOV NIC would get, and why each other candidate cannot serve it.

Pure functions over one host's facts (virtplane/inventory.py) and what the plan already placed (``Usage``). Each
candidate is checked in stages; the first stage it fails is its ``Miss``. When no candidate serves a request, the
refusal names every candidate's reason and belongs to the rule of the candidate that got furthest (a GPU that is
free but needs UEFI is an hw.mmio matter, one that is in use an hw.device-in-use one), so placement and the policy
layer say the same thing.

Whole GPUs: capable (IOMMU and device), enabled for passthrough, active (vSphere: enabled and rebooted), its device
group (Proxmox: alone in its IOMMU group but for its own functions and bridges; vSphere: the ``dependentDevice`` it
must be released with is free), not in use (by a VM outside the plan, another VM of the plan, the plan's vGPU
instances, or powered-off VMs that take a free one of a model at start: ``device_claims``), and not a large-BAR
board for a VM that boots BIOS.
vGPUs: the profile offered (on the named GPU or mapping), a GPU not given whole, the GPU's graphics type Shared
Direct (vSphere), one frame-buffer size per GPU in equal-size mode and the frame buffer left, a free instance, and
no BIOS for C-series profiles on large-BAR boards.
SR-IOV NICs: a physical function with SR-IOV on and a free virtual function.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virtplane import gpus as boards
from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.specs import GpuSpec, NicSpec, VirtualMachineSpec
from virtplane.verdicts import (
    DEVICE_GROUP,
    DEVICE_IN_USE,
    GPU_PASSTHROUGH,
    GRAPHICS_MODE,
    MMIO,
    SRIOV,
    VGPU,
    VGPU_SIZE,
    Judgement,
)

if TYPE_CHECKING:
    from virtplane.placement import Usage

VENDOR_IDS = {"nvidia": "0x10de", "amd": "0x1002", "intel": "0x8086"}
SHARED_DIRECT = "sharedDirect"
MIXED_SIZE = "mixedSize"
LARGE_BAR_BIOS_REFUSED = ("vsphere", "proxmox")  # where the vendors document the failure
_SHORT_PCI = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def normalize_address(address: str) -> str:
    """A device name to compare: PCI ``3b:00.0`` -> ``0000:3b:00.0``; anything else (a Hyper-V location path
    ``PCIROOT(0)#PCI(0300)#PCI(0000)``, a partitionable GPU's name) as it is; lower case."""
    address = address.strip().lower()
    return f"0000:{address}" if _SHORT_PCI.match(address) else address


def mapped(host: Host, name: str) -> set[str]:
    """The addresses a resource mapping called ``name`` names on ``host`` (empty when there is no such mapping)."""
    wanted = name.strip().lower()
    return {normalize_address(a) for m in host.pci_mappings if m.id.lower() == wanted for a in m.addresses}


def gpu_matches(device: PciDevice, gpu: GpuSpec, host: Host) -> bool:
    if gpu.device:
        address = normalize_address(device.address)
        return address in mapped(host, gpu.device) or address == normalize_address(gpu.device)
    return gpu.vendor is None or device.vendor_id.lower() == VENDOR_IDS[gpu.vendor]


def device_at(host: Host, address: str | None) -> PciDevice | None:
    if not address:
        return None
    wanted = normalize_address(address)
    return next((d for d in host.pci_devices if normalize_address(d.address) == wanted), None)


# ---- staged misses ---------------------------------------------------------------------------------------------

CAPABLE, ENABLED, ACTIVE, GROUP, IN_USE, SIZE, FREE, FIRMWARE = range(1, 9)


@dataclass(frozen=True)
class Miss:
    stage: int
    rule: str
    why: str


def refuse_slot(judgement: Judgement, field: str, subject: str, misses: Sequence[Miss], remedy: str = "") -> None:
    """One refusal for a request no candidate serves, owned by the rule of the candidate that got furthest."""
    furthest = max(misses, key=lambda miss: miss.stage)
    why = "; ".join(dict.fromkeys(miss.why for miss in misses))
    judgement.refuse(furthest.rule, field, why, subject, remedy)


# ---- whole GPUs ------------------------------------------------------------------------------------------------

def _slot(address: str) -> str:
    return address.rsplit(".", 1)[0]


def _is_bridge(device: PciDevice) -> bool:
    return device.class_id.lower().startswith("0x06")


def _holders(device: PciDevice, taken: set[str]) -> str | None:
    if device.in_use_by:
        return f"in use by {', '.join(device.in_use_by)}"
    if device.address in taken:
        return "given to another VM of this plan"
    return None


def _group_miss(host: Host, device: PciDevice, taken: set[str]) -> Miss | None:
    if host.hypervisor in ("proxmox", "libvirt") and device.iommu_group is not None and device.iommu_group >= 0:
        others = sorted(d.address for d in host.pci_devices if d.iommu_group == device.iommu_group
                        and _slot(d.address) != _slot(device.address) and not _is_bridge(d))
        if others:
            return Miss(GROUP, DEVICE_GROUP, f"{device.address} shares IOMMU group {device.iommu_group} with "
                                             f"{', '.join(others)}: a device is passed through only with its "
                                             "whole group, which holds other devices")
    dependent = device.dependent_device
    if dependent and normalize_address(dependent) != normalize_address(device.address):
        mates = [d for d in host.pci_devices if d.address != device.address and (
            normalize_address(d.address) == normalize_address(dependent)
            or (d.dependent_device and normalize_address(d.dependent_device) == normalize_address(dependent)))]
        for mate in mates:
            held = _holders(mate, taken)
            if held is None and mate.passthrough_enabled is False and not _is_bridge(mate):
                held = "not enabled for passthrough"
            if held is not None:
                return Miss(GROUP, DEVICE_GROUP, f"{device.address} is released by the host only together with "
                                                 f"{mate.address} (dependent device {dependent}), which is {held}")
    return None


def claims_satisfiable(host: Host, unavailable: set[str]) -> list[str]:
    """The VMs of ``host.device_claims`` left without a device when ``unavailable`` (and every device in use) is
    gone: a matching of claims to distinct free devices (augmenting paths; claims are few)."""
    free = {d.address for d in host.pci_devices if not d.in_use_by and d.address not in unavailable}
    owner: dict[str, int] = {}

    def assign(index: int, seen: set[str]) -> bool:
        for address in host.device_claims[index].devices:
            if address not in free or address in seen:
                continue
            seen.add(address)
            if address not in owner or assign(owner[address], seen):
                owner[address] = index
                return True
        return False

    return [claim.vm for index, claim in enumerate(host.device_claims) if not assign(index, set())]


def _firmware_miss(spec: VirtualMachineSpec, host: Host, device: PciDevice, what: str) -> Miss | None:
    """BIOS firmware with a large-BAR device: refused where the vendors say it fails (vSphere's DevicePowerOn, and
    Proxmox VE, whose GPU passthrough wants OVMF); Hyper-V sizes the VM's MMIO space for DDA instead, and libvirt's
    documents say nothing of it."""
    facts = (device.vendor_id, device.device_id, device.memory_mib, device.device_name)
    if host.hypervisor not in LARGE_BAR_BIOS_REFUSED or spec.firmware != "bios" or not boards.large_bar(*facts):
        return None
    size = boards.bar_gib(*facts)
    return Miss(FIRMWARE, MMIO, f"{what} {device.address} maps more than 16 GB (a {size} GiB BAR) and needs UEFI "
                                "firmware with 64-bit MMIO; the VM boots BIOS")


def _gpu_miss(spec: VirtualMachineSpec, host: Host, device: PciDevice, taken: set[str], usage: Usage) -> Miss | None:
    address = device.address
    plan_whole = usage.whole_gpus.get(host.name, set()) | taken
    sliced = {d for (d, _), count in usage.vgpus_on(host.name).items() if count}
    if device.passthrough_capable is False:
        return Miss(CAPABLE, GPU_PASSTHROUGH, f"{address} is not passthrough-capable (IOMMU off or device "
                                              "unsupported)")
    if device.passthrough_enabled is False:
        return Miss(ENABLED, GPU_PASSTHROUGH, f"{address} is not enabled for passthrough")
    if device.passthrough_enabled and device.passthrough_active is False:
        return Miss(ACTIVE, GPU_PASSTHROUGH, f"{address} is enabled for passthrough but not active until the host "
                                             "reboots")
    if (group := _group_miss(host, device, plan_whole)) is not None:
        return group
    if device.in_use_by:
        return Miss(IN_USE, DEVICE_IN_USE, f"{address} is in use by {', '.join(device.in_use_by)}")
    if address in plan_whole:
        return Miss(IN_USE, DEVICE_IN_USE, f"{address} is already given to another VM of this plan")
    if address in sliced:
        return Miss(IN_USE, DEVICE_IN_USE, f"{address} already serves vGPU instances of this plan")
    running = sorted({vm for t in host.vgpu_types if t.device == address for vm in t.in_use_by})
    if running:
        return Miss(IN_USE, DEVICE_IN_USE, f"{address} runs the vGPUs of {', '.join(running)}")
    if "" in sliced and not another_gpu_left(host, address, taken, usage):
        return Miss(IN_USE, DEVICE_IN_USE, f"{address} is the last GPU left for this plan's vGPU instances")
    if host.device_claims:
        before = claims_satisfiable(host, plan_whole)
        after = claims_satisfiable(host, plan_whole | {address})
        if len(after) > len(before):
            left = [vm for vm in after if vm not in before] or after
            return Miss(IN_USE, DEVICE_IN_USE, f"{address} is the last free device that {', '.join(left)} can take "
                                               "when it starts (a powered-off VM that holds no particular device yet)")
    return _firmware_miss(spec, host, device, "GPU")


def choose_gpu(spec: VirtualMachineSpec, index: int, host: Host, taken: set[str], usage: Usage,
               judgement: Judgement) -> PciDevice | None:
    """The GPU ``spec.gpus[index]`` (passthrough) gets on ``host``, or None with a refusal in ``judgement``."""
    gpu = (spec.gpus or [])[index]
    field = f"gpus[{index}]"
    subject = f"cannot give {field} a whole GPU"
    candidates = [d for d in host.gpus() if gpu_matches(d, gpu, host)]
    if not candidates:
        what = f"GPU {gpu.device}" if gpu.device else (f"{gpu.vendor} GPU" if gpu.vendor else "GPU")
        listed = host.sources.get("gpus")  # how the host's GPUs are found, where that explains a missing one
        judgement.refuse(GPU_PASSTHROUGH, field, f"has no {what}" + (f" ({listed})" if listed else ""), subject)
        return None
    misses = []
    for device in candidates:
        miss = _gpu_miss(spec, host, device, taken, usage)
        if miss is None:
            _gpu_unknowns(host, device, field, judgement)
            return device
        misses.append(miss)
    refuse_slot(judgement, field, subject, misses)
    return None


def _gpu_unknowns(host: Host, device: PciDevice, field: str, judgement: Judgement) -> None:
    level = "mandatory" if host.hypervisor == "vsphere" else "advisory"
    if device.passthrough_capable is None:
        judgement.unknown(GPU_PASSTHROUGH, field, f"whether GPU {device.address} is passthrough-capable", level)
    if device.passthrough_enabled is None:
        judgement.unknown(GPU_PASSTHROUGH, field, f"whether GPU {device.address} is enabled for passthrough", level)
    if host.devices_in_use_known is not True:
        judgement.unknown(DEVICE_IN_USE, field, f"which VMs hold GPU {device.address}")


def another_gpu_left(host: Host, besides: str | None, taken: set[str], usage: Usage) -> bool:
    """Whether a GPU other than ``besides`` is not given whole (by this plan or to a running VM): where vGPU
    profiles name no device (vSphere lists them per host), some GPU must stay for the plan's vGPU instances."""
    whole = usage.whole_gpus.get(host.name, set()) | taken
    return any(d.address != besides and d.address not in whole and not d.in_use_by for d in host.gpus())


# ---- vGPUs -----------------------------------------------------------------------------------------------------

def _size(vgpu_type: VgpuType) -> int | None:
    return vgpu_type.size_mib or boards.profile(vgpu_type.profile, vgpu_type.description).size_mib


def _gb(mib: int) -> str:
    return f"{mib / 1024:g} GB"


def _residents(host: Host, device: str, usage: Usage, extra: Counter[tuple[str, str]]
               ) -> list[tuple[str, int | None, int]]:
    """(profile, size, count) of the vGPUs on ``device``: running ones (``in_use_by``) and this plan's."""
    sizes = {t.profile: _size(t) for t in host.vgpu_types}
    found: Counter[str] = Counter()
    for vgpu_type in host.vgpu_types:
        if (vgpu_type.device or "") == device and vgpu_type.in_use_by:
            found[vgpu_type.profile] += len(vgpu_type.in_use_by)
    for (placed_on, profile), count in [*usage.vgpus_on(host.name).items(), *extra.items()]:
        if placed_on == device and count:
            found[profile] += count
    return [(profile, sizes.get(profile) or boards.profile(profile).size_mib, count)
            for profile, count in sorted(found.items())]


def _size_miss(host: Host, vgpu_type: VgpuType, device: str, usage: Usage, extra: Counter[tuple[str, str]]
               ) -> Miss | None:
    """Equal-size mode and the frame buffer left on the GPU ``device`` (the GPU itself when the host has only one
    and its profiles are host-wide)."""
    wanted = boards.profile(vgpu_type.profile, vgpu_type.description)
    size = _size(vgpu_type)
    if wanted.mig or size is None:
        return None
    gpu = device_at(host, device) if device else (host.gpus()[0] if len(host.gpus()) == 1 else None)
    if gpu is None and not device:
        return None
    shown = gpu.address if gpu is not None else device
    residents = [r for r in _residents(host, device, usage, extra) if not boards.profile(r[0]).mig]
    if (gpu is None or gpu.vgpu_mode != MIXED_SIZE) and vgpu_type.profile.startswith(("grid_", "nvidia-")):
        clashing = sorted(profile for profile, other, _ in residents if other is not None and other != size)
        if clashing:
            return Miss(SIZE, VGPU_SIZE, f"GPU {shown} already hosts vGPU profile {', '.join(clashing)}; a "
                                         f"time-sliced NVIDIA GPU in equal-size mode hosts one frame-buffer size at "
                                         f"a time, so '{vgpu_type.profile}' ({_gb(size)}) cannot join it")
    if gpu is not None and gpu.memory_mib:
        used = sum((other or 0) * count for _, other, count in residents)
        if used + size > gpu.memory_mib:
            return Miss(SIZE, VGPU_SIZE, f"GPU {shown} has {_gb(gpu.memory_mib)} of frame buffer and {_gb(used)} "
                                         f"is taken by vGPUs: '{vgpu_type.profile}' ({_gb(size)}) does not fit")
    return None


def capacity_known(host: Host, vgpu_type: VgpuType) -> bool:
    """Whether free instances can be told: counted by the host, or the GPU's frame buffer and the profile's size."""
    if vgpu_type.available is not None:
        return True
    gpu = device_at(host, vgpu_type.device)
    return gpu is not None and bool(gpu.memory_mib) and _size(vgpu_type) is not None


def _vgpu_miss(spec: VirtualMachineSpec, host: Host, vgpu_type: VgpuType, usage: Usage,
               extra: Counter[tuple[str, str]]) -> Miss | None:
    device = vgpu_type.device or ""
    whole = usage.whole_gpus.get(host.name, set())
    if device and device in whole:
        return Miss(IN_USE, DEVICE_IN_USE, f"GPU {device} is given whole to another VM of this plan")
    if not device and host.gpus() and not another_gpu_left(host, None, set(), usage):
        return Miss(IN_USE, DEVICE_IN_USE, "has no GPU left for vGPU profiles: every GPU is given whole")
    if host.hypervisor == "vsphere":
        gpu = device_at(host, device)
        kind = gpu.graphics_type if gpu is not None and gpu.graphics_type else (None if gpu else host.graphics_mode)
        if kind is not None and kind != SHARED_DIRECT:
            where = f"GPU {device}'s" if gpu is not None else "the host's"
            return Miss(CAPABLE, GRAPHICS_MODE, f"{where} graphics type is '{kind}'; vGPU needs 'sharedDirect' "
                                                "(Shared Direct)")
    if (size := _size_miss(host, vgpu_type, device, usage, extra)) is not None:
        return size
    taken = usage.vgpus[(host.name, device, vgpu_type.profile)] + extra[(device, vgpu_type.profile)]
    if vgpu_type.available is not None and vgpu_type.available <= taken:
        return Miss(FREE, VGPU, f"has no free instance of vGPU profile '{vgpu_type.profile}' left")
    profile = boards.profile(vgpu_type.profile, vgpu_type.description)
    gpu = device_at(host, device) if device else None
    if gpu is not None and profile.series == "c":
        return _firmware_miss(spec, host, gpu, "the C-series vGPU's GPU")
    return None


def offered_types(host: Host, gpu: GpuSpec) -> list[VgpuType]:
    profile = (gpu.profile or "").lower()
    offered = [t for t in host.vgpu_types if t.profile.lower() == profile]
    if gpu.device:
        wanted = mapped(host, gpu.device) | {normalize_address(gpu.device)}
        offered = [t for t in offered if t.device and normalize_address(t.device) in wanted]
    return offered


def choose_vgpu(spec: VirtualMachineSpec, index: int, host: Host, usage: Usage, extra: Counter[tuple[str, str]],
                judgement: Judgement) -> VgpuType | None:
    """The vGPU profile instance ``spec.gpus[index]`` gets on ``host`` (on which GPU), or None and a refusal."""
    gpu = (spec.gpus or [])[index]
    field = f"gpus[{index}]"
    subject = f"cannot give {field}.profile '{gpu.profile}'"
    offered = offered_types(host, gpu)
    if not offered:
        names = sorted({t.profile for t in host.vgpu_types})
        choices = f" (offered: {', '.join(names)})" if names else " (it offers no vGPU profiles)"
        where = f" on {gpu.device}" if gpu.device else ""
        judgement.refuse(VGPU, f"{field}.profile", f"offers no vGPU profile '{gpu.profile}'{where}{choices}", subject)
        return None
    misses = []
    for vgpu_type in offered:
        miss = _vgpu_miss(spec, host, vgpu_type, usage, extra)
        if miss is None:
            if not capacity_known(host, vgpu_type):
                judgement.unknown(VGPU, f"{field}.profile", f"free instances of vGPU profile '{vgpu_type.profile}'")
            gpu_facts = device_at(host, vgpu_type.device)
            if host.hypervisor == "vsphere" and not (gpu_facts and gpu_facts.graphics_type) and not host.graphics_mode:
                judgement.unknown(GRAPHICS_MODE, field, "the host graphics type (vGPU needs Shared Direct)")
            return vgpu_type
        misses.append(miss)
    refuse_slot(judgement, f"{field}.profile", subject, misses)
    return None


# ---- SR-IOV ----------------------------------------------------------------------------------------------------

def _bus(address: str) -> str:
    """``0000:5e:02.1`` -> ``0000:5e``: a PF's VFs are on its bus."""
    return address.rsplit(":", 1)[0]


def choose_vf(nic: NicSpec, index: int, host: Host, usage: Usage, extra: Counter[str],
              judgement: Judgement) -> SriovFunction | None:
    """The physical function whose virtual function ``nic`` gets, or None and a refusal."""
    field = f"nics[{index}]"
    subject = f"cannot give {field} a virtual function"
    functions: Iterable[SriovFunction] = host.sriov
    if nic.device:
        buses = {_bus(a) for a in mapped(host, nic.device)}
        # a mapping names the PF or (Proxmox) a pool of its VFs, which are on the PF's bus
        functions = [f for f in functions if f.address == normalize_address(nic.device) or _bus(f.address) in buses]
    functions = list(functions)
    if not functions:
        judgement.refuse(SRIOV, field, f"has no SR-IOV physical function {nic.device}" if nic.device
                         else "has no SR-IOV physical function", subject)
        return None
    misses = []
    for function in functions:
        taken = usage.vfs[(host.name, function.address)] + extra[function.address]
        if function.enabled is False:
            misses.append(Miss(ENABLED, SRIOV, f"SR-IOV is not enabled on {function.address}"))
        elif function.vfs_free is not None and function.vfs_free <= taken:
            misses.append(Miss(FREE, SRIOV, f"{function.address} has no free virtual function left "
                                            f"({function.vfs_free} free, {taken} taken by this plan)"))
        else:
            if function.enabled is None:
                judgement.unknown(SRIOV, field, f"whether SR-IOV is enabled on {function.address}")
            if function.vfs_free is None:
                judgement.unknown(SRIOV, field, f"free virtual functions of {function.address}")
            return function
    refuse_slot(judgement, field, subject, misses)
    return None
