"""hw.numa (advisory): NUMA locality of passthrough GPUs and SR-IOV NICs cannot be verified.

A device serves DMA fastest to the memory of the NUMA node (socket) it hangs off; a VM spread over the other node
pays a cross-socket hop. No hypervisor's inventory read by virtplane reports a device's NUMA node, so the rule
says so for every VM with such devices, and suggests pinning.

Sources: NVIDIA "Virtual GPU Software User Guide" (pinning VMs to the CPU socket of their GPU); Proxmox VE
Administration Guide "QEMU/KVM Virtual Machines" (NUMA, PCI(e) passthrough).

Links:
- https://docs.nvidia.com/grid/latest/grid-vgpu-user-guide/index.html
- https://pve.proxmox.com/pve-docs/chapter-qm.html#qm_pci_passthrough
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.model import ADVISORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.numa", ADVISORY, "NUMA locality of passthrough devices",
            "A passthrough device is fastest to the memory and CPUs of its own NUMA node; the inventory does not "
            "report device NUMA nodes, so locality cannot be verified.",
            (sources.NVIDIA_VGPU_GUIDE, sources.PVE_QM),
            applies=lambda vm: bool(vm.passthrough_gpus or vm.sriov_nics))


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if not (vm.passthrough_gpus or vm.sriov_nics):
        return []
    return [unknown(vm, RULE, "the NUMA node of the VM's passthrough devices", level=ADVISORY,
                    remediation="pin the VM's vCPUs and memory to the device's NUMA node (vSphere "
                                "numa.nodeAffinity, Proxmox numa/affinity) if latency matters")]
