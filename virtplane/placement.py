"""Plan-time placement on capable hosts: which host can give a VM the devices and hardware assist it asks for.

Pure functions over the inventory (virtplane/inventory.py) and the specs; no I/O. A VM's demand is its
GPUs (whole devices or vGPU/mdev/partition profiles), its SR-IOV NICs (virtual functions of a physical
function), nested virtualization, its hardware version and its memory. ``Usage`` counts what the same plan has
already placed on each host, so two VMs never get the last free VF or vGPU slot; what runs already is in the
inventory (``in_use_by``, ``device_claims``, ``available``, ``vfs_free``).

A host is judged (``judge``) by every host-level check (virtplane/host_checks.py) and the device choice
(virtplane/device_choice.py); each refusal belongs to the policy rule that reports it, so a host placement accepts
is one no mandatory rule refuses, and a host a rule refuses is one placement does not choose.

A fact the host does not report (None) is not a "no": such a host can still be chosen, but hosts known to
have what the VM needs are preferred. When no host fits, the error says, host by host, why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from virtplane.device_choice import VENDOR_IDS, choose_gpu, choose_vf, choose_vgpu, normalize_address
from virtplane.errors import VirtplaneError
from virtplane.fact_verdicts import FactVerdicts
from virtplane.host_checks import CAPACITY_CHECKS, HOST_FACT_CHECKS, reserves_memory
from virtplane.inventory import Host
from virtplane.specs import VirtualMachineSpec
from virtplane.verdicts import PLACEMENT, Judgement

__all__ = ["VENDOR_IDS", "Assignment", "PlacementError", "Usage", "fit", "judge", "normalize_address", "place",
           "record"]


class PlacementError(VirtplaneError):
    """No host can serve a VM, or the host it names cannot."""


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


def needs_hardware(spec: VirtualMachineSpec) -> bool:
    """True when placement must look at host facts (devices or nested virtualization)."""
    return reserves_memory(spec) or bool(spec.nested_virtualization)


def judge(spec: VirtualMachineSpec, host: Host, usage: Usage, facts: FactVerdicts | None = None
          ) -> tuple[Assignment | None, Judgement]:
    """Everything ``host`` says to the VM: the devices it would give (None when it refuses anything), and every
    refusal and unknown fact, each owned by the policy rule that reports it (virtplane/verdicts.py). With ``facts``
    the checks of the host's facts alone are judged once per request shape and host (virtplane/fact_verdicts.py);
    the answer is the same."""
    judgement = Judgement()
    assignment = Assignment(host.name)
    if host.online is False:
        judgement.refuse(PLACEMENT, "node", "is offline")
        return None, judgement
    if facts is None:
        for check in HOST_FACT_CHECKS:
            check(spec, host, usage, judgement)
    else:
        facts.judge(spec, host, usage, judgement)
    for check in CAPACITY_CHECKS:
        check(spec, host, usage, judgement)
    taken: set[str] = set()
    slices: Counter[tuple[str, str]] = Counter()
    for index, gpu in enumerate(spec.gpus or []):
        if gpu.mode == "passthrough":
            device = choose_gpu(spec, index, host, taken, usage, judgement)
            if device is not None:
                taken.add(device.address)
            assignment.gpu_devices.append(None if device is None else device.address)
            assignment.vgpu_devices.append(None)
        else:
            vgpu_type = choose_vgpu(spec, index, host, usage, slices, judgement)
            chosen = None if vgpu_type is None else (vgpu_type.device or "", vgpu_type.profile)
            if chosen is not None:
                slices[chosen] += 1
            assignment.vgpu_devices.append(chosen)
            assignment.gpu_devices.append(None)
    vfs: Counter[str] = Counter()
    for index, nic in enumerate(spec.nics or []):
        function = choose_vf(nic, index, host, usage, vfs, judgement) if nic.adapter == "sriov" else None
        if function is not None:
            vfs[function.address] += 1
        assignment.nic_devices.append(None if function is None else function.address)
    assignment.unknowns = list(dict.fromkeys(unknown.fact for unknown in judgement.unknowns))
    return (None if refused(judgement) else assignment), judgement


def refused(judgement: Judgement) -> bool:
    """A refusal, or a fact that must be known (a mandatory unknown: the inventory is incomplete) and is not."""
    return bool(judgement.refusals) or any(unknown.level == "mandatory" for unknown in judgement.unknowns)


def fit(spec: VirtualMachineSpec, host: Host, usage: Usage, facts: FactVerdicts | None = None
        ) -> tuple[Assignment | None, list[str]]:
    """The devices ``host`` would give the VM, or None and why not (each reason once)."""
    assignment, judgement = judge(spec, host, usage, facts)
    reasons = [refusal.why for refusal in judgement.refusals]
    reasons += [f"cannot verify {u.fact}" for u in judgement.unknowns if u.level == "mandatory"]
    return assignment, list(dict.fromkeys(reasons))


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
