"""Plan-time placement on capable hosts: which host can give a VM the devices and hardware assist it asks for.

Pure functions over the inventory (virtplane/inventory.py) and the specs; no I/O. A VM's demand is its
GPUs (whole devices or vGPU/mdev/partition profiles), its SR-IOV NICs (virtual functions of a physical
function), nested virtualization and its memory. ``Usage`` counts what the same plan has already placed on
each host, so two VMs never get the last free VF or vGPU slot; what runs already is in the inventory
(``in_use_by``, ``available``, ``vfs_free``).

A fact the host does not report (None) is not a "no": such a host can still be chosen, but hosts known to
have what the VM needs are preferred. When no host fits, the error says, host by host, why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from virtplane.errors import VirtplaneError
from virtplane.inventory import Host, PciDevice, SriovFunction, VgpuType
from virtplane.specs import GpuSpec, NicSpec, VirtualMachineSpec

VENDOR_IDS = {"nvidia": "0x10de", "amd": "0x1002", "intel": "0x8086"}


class PlacementError(VirtplaneError):
    """No host can serve a VM, or the host it names cannot."""


_SHORT_PCI = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def normalize_address(address: str) -> str:
    """A device name to compare: PCI ``3b:00.0`` -> ``0000:3b:00.0``; anything else (a Hyper-V location path
    ``PCIROOT(0)#PCI(0300)#PCI(0000)``, a partitionable GPU's name) as it is; lower case."""
    address = address.strip().lower()
    return f"0000:{address}" if _SHORT_PCI.match(address) else address


@dataclass
class Usage:
    """What this plan has already placed, per host."""

    memory_mib: Counter[str] = field(default_factory=Counter)  # all memory placed (orders the choice)
    reserved_mib: Counter[str] = field(default_factory=Counter)  # memory device VMs reserve (must fit)
    whole_gpus: dict[str, set[str]] = field(default_factory=dict)  # host -> GPU addresses taken
    vgpus: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (host, device, profile) -> taken
    vgpus_by_host: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)  # host -> (device, profile)

    def vgpus_on(self, host: str) -> Counter[tuple[str, str]]:
        """The vGPU instances this plan placed on ``host``, by (device, profile)."""
        return self.vgpus_by_host.get(host) or Counter()
    vfs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (host, PF address) -> VFs taken


@dataclass
class Assignment:
    """The devices chosen on one host for one VM: GPU addresses (or mappings) per GPU, PF per SR-IOV NIC."""

    host: str
    gpu_devices: list[str | None] = field(default_factory=list)
    vgpu_devices: list[tuple[str, str] | None] = field(default_factory=list)  # (device, profile) per GPU
    nic_devices: list[str | None] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)  # facts that could not be verified

    def apply_to(self, spec: VirtualMachineSpec) -> VirtualMachineSpec:
        """The spec a create gets: the host, and each device chosen where the stack named none."""
        update: dict[str, object] = {"node": self.host}
        if spec.gpus:
            gpus = []
            for gpu, device in zip(spec.gpus, self.gpu_devices, strict=True):
                gpus.append(gpu if gpu.device or device is None else gpu.model_copy(update={"device": device}))
            update["gpus"] = gpus
        if spec.nics:
            nics = []
            for nic, device in zip(spec.nics, self.nic_devices, strict=True):
                nics.append(nic if nic.device or device is None else nic.model_copy(update={"device": device}))
            update["nics"] = nics
        return spec.model_copy(update=update)


def reserves_memory(spec: VirtualMachineSpec) -> bool:
    """A VM with a PCI device (a GPU, a vGPU slice, an SR-IOV function) has all its memory reserved, so it must
    fit in the host's free memory; others may overcommit (the host's free memory only orders the choice)."""
    return bool(spec.gpus) or any(nic.adapter == "sriov" for nic in spec.nics or [])


def needs_hardware(spec: VirtualMachineSpec) -> bool:
    """True when placement must look at host facts (devices or nested virtualization)."""
    return bool(spec.gpus) or any(nic.adapter == "sriov" for nic in spec.nics or []) or bool(
        spec.nested_virtualization)


def _gpu_matches(device: PciDevice, gpu: GpuSpec, host: Host) -> bool:
    if gpu.device:
        wanted = gpu.device.strip().lower()
        mapped = {normalize_address(a) for m in host.pci_mappings if m.id.lower() == wanted for a in m.addresses}
        return normalize_address(device.address) in mapped or normalize_address(device.address) == normalize_address(
            wanted)
    return gpu.vendor is None or device.vendor_id.lower() == VENDOR_IDS[gpu.vendor]


def _free_whole_gpu(host: Host, gpu: GpuSpec, taken: set[str], usage: Usage) -> tuple[PciDevice | None, str]:
    candidates = [d for d in host.gpus() if _gpu_matches(d, gpu, host)]
    if not candidates:
        what = f"GPU {gpu.device}" if gpu.device else (f"{gpu.vendor} GPU" if gpu.vendor else "GPU")
        listed = host.sources.get("gpus")  # how the host's GPUs are found, where that explains a missing one
        return None, f"has no {what}" + (f" ({listed})" if listed else "")
    sliced = {device for (device, _), count in usage.vgpus_on(host.name).items() if count}
    reasons = []
    for device in candidates:
        if device.passthrough_capable is False:
            reasons.append(f"{device.address} is not passthrough-capable (IOMMU off or device unsupported)")
        elif device.passthrough_enabled is False:
            reasons.append(f"{device.address} is not enabled for passthrough")
        elif device.in_use_by:
            reasons.append(f"{device.address} is in use by {', '.join(device.in_use_by)}")
        elif device.address in taken or device.address in usage.whole_gpus.get(host.name, set()):
            reasons.append(f"{device.address} is already given to another VM of this plan")
        elif device.address in sliced:
            reasons.append(f"{device.address} already serves vGPU instances of this plan")
        elif "" in sliced and not _another_gpu_left(host, device.address, taken, usage):
            reasons.append(f"{device.address} is the last GPU left for this plan's vGPU instances")
        else:
            return device, ""
    return None, "; ".join(reasons)


def _free_vgpu(host: Host, gpu: GpuSpec, usage: Usage, extra: Counter[tuple[str, str]]
               ) -> tuple[VgpuType | None, str]:
    profile = (gpu.profile or "").lower()
    offered = [t for t in host.vgpu_types if t.profile.lower() == profile]
    if gpu.device:
        offered = [t for t in offered if t.device and normalize_address(t.device) == normalize_address(gpu.device)]
    if not offered:
        names = sorted({t.profile for t in host.vgpu_types})
        choices = f" (offered: {', '.join(names)})" if names else " (it offers no vGPU profiles)"
        return None, f"offers no vGPU profile '{gpu.profile}'{choices}"
    whole = usage.whole_gpus.get(host.name, set())
    for vgpu_type in offered:
        if vgpu_type.device and vgpu_type.device in whole:
            continue
        if not vgpu_type.device and host.gpus() and not _another_gpu_left(host, None, set(), usage):
            return None, "has no GPU left for vGPU profiles: every GPU is given whole"
        key = (host.name, vgpu_type.device or "", vgpu_type.profile)
        taken = usage.vgpus[key] + extra[(key[1], key[2])]
        if vgpu_type.available is None or vgpu_type.available > taken:
            return vgpu_type, ""
    return None, f"has no free instance of vGPU profile '{gpu.profile}' left"


def _another_gpu_left(host: Host, besides: str | None, taken: set[str], usage: Usage) -> bool:
    """Whether a GPU other than ``besides`` is not given whole (by this plan or to a running VM): where vGPU
    profiles name no device (vSphere lists them per host), some GPU must stay for the plan's vGPU instances."""
    whole = usage.whole_gpus.get(host.name, set()) | taken
    return any(d.address != besides and d.address not in whole and not d.in_use_by for d in host.gpus())


def _free_vf(host: Host, nic: NicSpec, usage: Usage, extra: Counter[str]) -> tuple[SriovFunction | None, str]:
    functions = host.sriov
    if nic.device:
        wanted = nic.device.strip().lower()
        mapped = {_bus(normalize_address(a)) for m in host.pci_mappings if m.id.lower() == wanted for a in m.addresses}
        # a mapping names the PF or (Proxmox) a pool of its VFs, which are on the PF's bus
        functions = [f for f in functions if f.address == normalize_address(wanted) or _bus(f.address) in mapped]
    if not functions:
        return None, (f"has no SR-IOV physical function {nic.device}" if nic.device
                      else "has no SR-IOV physical function")
    reasons = []
    for function in functions:
        taken = usage.vfs[(host.name, function.address)] + extra[function.address]
        if function.enabled is False:
            reasons.append(f"SR-IOV is not enabled on {function.address}")
        elif function.vfs_free is not None and function.vfs_free <= taken:
            reasons.append(f"{function.address} has no free virtual function left "
                           f"({function.vfs_free} free, {taken} taken by this plan)")
        else:
            return function, ""
    return None, "; ".join(reasons)


def _bus(address: str) -> str:
    """``0000:5e:02.1`` -> ``0000:5e``: a PF's VFs are on its bus."""
    return address.rsplit(":", 1)[0]


def fit(spec: VirtualMachineSpec, host: Host, usage: Usage) -> tuple[Assignment | None, list[str]]:
    """The devices ``host`` would give the VM, or None and why not (one reason per missing thing)."""
    reasons: list[str] = []
    assignment = Assignment(host.name)
    if host.online is False:
        return None, ["is offline"]
    if spec.nested_virtualization:
        if host.nested is False:
            reasons.append("does not support nested virtualization")
        elif host.nested is None:
            assignment.unknowns.append("nested virtualization")
    taken: set[str] = set()
    slices: Counter[tuple[str, str]] = Counter()
    for gpu in spec.gpus or []:
        if gpu.mode == "passthrough":
            device, why = _free_whole_gpu(host, gpu, taken, usage)
            if device is None:
                reasons.append(why)
                assignment.gpu_devices.append(None)
            else:
                taken.add(device.address)
                assignment.gpu_devices.append(device.address)
                if device.passthrough_capable is None or device.passthrough_enabled is None:
                    assignment.unknowns.append(f"passthrough state of {device.address}")
            assignment.vgpu_devices.append(None)
        else:
            vgpu_type, why = _free_vgpu(host, gpu, usage, slices)
            if vgpu_type is None:
                reasons.append(why)
                assignment.vgpu_devices.append(None)
            else:
                slices[(vgpu_type.device or "", vgpu_type.profile)] += 1
                assignment.vgpu_devices.append((vgpu_type.device or "", vgpu_type.profile))
                if vgpu_type.available is None:
                    assignment.unknowns.append(f"free instances of {vgpu_type.profile}")
            assignment.gpu_devices.append(None)
    vfs: Counter[str] = Counter()
    for nic in spec.nics or []:
        if nic.adapter != "sriov":
            assignment.nic_devices.append(None)
            continue
        function, why = _free_vf(host, nic, usage, vfs)
        if function is None:
            reasons.append(why)
            assignment.nic_devices.append(None)
        else:
            vfs[function.address] += 1
            assignment.nic_devices.append(function.address)
            if function.vfs_free is None:
                assignment.unknowns.append(f"free virtual functions of {function.address}")
    memory = (spec.memory or 0) if reserves_memory(spec) else 0
    if host.memory_free_mib is not None and memory and host.memory_free_mib - usage.reserved_mib[host.name] < memory:
        free = host.memory_free_mib - usage.reserved_mib[host.name]
        reasons.append(f"has {free} MiB of memory free, the VM needs {memory} MiB")
    reasons = list(dict.fromkeys(reasons))  # several NICs or GPUs a host cannot serve: say why once
    return (None, reasons) if reasons else (assignment, [])


def record(spec: VirtualMachineSpec, assignment: Assignment, usage: Usage) -> None:
    """Count what ``assignment`` takes on its host."""
    host = assignment.host
    usage.memory_mib[host] += spec.memory or 0
    if reserves_memory(spec):
        usage.reserved_mib[host] += spec.memory or 0
    for address in assignment.gpu_devices:
        if address is not None:
            usage.whole_gpus.setdefault(host, set()).add(address)
    for chosen in assignment.vgpu_devices:
        if chosen is not None:
            usage.vgpus[(host, chosen[0], chosen[1])] += 1
            usage.vgpus_by_host.setdefault(host, Counter())[chosen] += 1
    for address in assignment.nic_devices:
        if address is not None:
            usage.vfs[(host, address)] += 1


def place(name: str, endpoint: str, spec: VirtualMachineSpec, hosts: Sequence[Host], usage: Usage) -> Assignment:
    """Choose a host for VM ``name`` (its ``node`` when it names one) and record what it takes.

    Preference: hosts where every needed fact is known, then the most memory left after this plan."""
    candidates = [h for h in hosts if spec.node is None or h.name == spec.node]
    if spec.node is not None and not candidates:
        known = ", ".join(sorted(h.name for h in hosts)) or "none"
        raise PlacementError(f"VM {name}: field 'node': endpoint '{endpoint}' has no host '{spec.node}' "
                             f"(hosts: {known})")
    fitting: list[Assignment] = []
    why: dict[str, list[str]] = {}
    for host in candidates:
        assignment, reasons = fit(spec, host, usage)
        if assignment is None:
            why[host.name] = reasons
        else:
            fitting.append(assignment)
    if not fitting:
        field_name = "node" if spec.node is not None else _demand_field(spec)
        details = "; ".join(f"{host}: {', '.join(reasons)}" for host, reasons in sorted(why.items()))
        target = f"host '{spec.node}'" if spec.node is not None else f"no host of endpoint '{endpoint}'"
        verb = "cannot serve it" if spec.node is not None else "can serve it"
        choices = f"; {_other_choices(spec, hosts, usage)}" if spec.node is not None else ""
        raise PlacementError(f"VM {name}: field '{field_name}': {target} {verb} — {details}{choices}")
    free = {h.name: free_memory(h, usage) for h in candidates}
    best = min(fitting, key=lambda a: preference(a, free[a.host]))
    record(spec, best, usage)
    return best


def _other_choices(spec: VirtualMachineSpec, hosts: Sequence[Host], usage: Usage) -> str:
    """For a VM whose ``node`` cannot serve it: the endpoint's other hosts that could (nothing is recorded)."""
    unpinned = spec.model_copy(update={"node": None})
    able = sorted(h.name for h in hosts if h.name != spec.node and fit(unpinned, h, usage)[0] is not None)
    return f"hosts that can: {', '.join(able)}" if able else "no other host of the endpoint can either"


def free_memory(host: Host, usage: Usage) -> int:
    """MiB the host has left after what this plan placed there (unknown free memory counts as 0)."""
    return (host.memory_free_mib or 0) - usage.memory_mib[host.name]


def preference(assignment: Assignment, free_mib: int) -> tuple[int, int, str]:
    """Order of choice among hosts that fit: fewest unverifiable facts, then most memory left, then name."""
    return (len(assignment.unknowns), -free_mib, assignment.host)


def _demand_field(spec: VirtualMachineSpec) -> str:
    if spec.gpus:
        return "gpus"
    if any(nic.adapter == "sriov" for nic in spec.nics or []):
        return "nics"
    if spec.nested_virtualization:
        return "nested_virtualization"
    return "memory"
