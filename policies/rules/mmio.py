"""hw.mmio: a GPU that maps more than 16 GB (a large BAR) needs UEFI firmware and 64-bit MMIO in the VM, and "above
4G decoding" in the host firmware; with BIOS firmware the VM fails to power on ("Module 'DevicePowerOn' power on
failed"). This holds for passthrough and for C-series (compute) vGPUs on such boards.

On vSphere and Proxmox VE, mandatory for BIOS firmware with a large-BAR GPU: A100, H100, L4, A10, A30, A40, L40,
V100 and every GPU whose reported frame buffer (vSphere ``graphicsInfo[].memorySizeInKB``) is over 16 GB
(virtplane/gpus.py lists the boards' BAR sizes). Placement gives a BIOS VM another GPU where one is free. Advisory for
BIOS with any other passthrough GPU, and a clone that does not declare its firmware cannot be verified. Hyper-V DDA
sizes the VM's MMIO space instead (``HighMemoryMappedIoSpace``) and works for Generation 1 VMs, and libvirt's
documents say nothing of it: no finding there.

What virtplane does with UEFI: on vSphere, whenever it gives a VM a large-BAR device it writes
``pciPassthru.use64bitMMIO = "TRUE"`` and ``pciPassthru.64bitMMIOSizeGB`` = the VM's large BARs added up, rounded up
to a power of two (VMware's guidance); on Proxmox VE, OVMF maps 64-bit BARs itself.

Sources: VMware KB 2142307 "VMware vSphere VMDirectPath I/O: Requirements for Platforms and Devices"; VMware blog
"How to Enable Nvidia V100 GPU in Passthrough mode on vSphere" (devices mapping more than 16 GB, EFI,
pciPassthru.use64bitMMIO and 64bitMMIOSizeGB); Dell KB 000199172 "PCI Passthrough 'Module DevicePowerOn power on
failed'"; Proxmox VE wiki "PCI(e) Passthrough" (GPU passthrough: OVMF, q35).

Links:
- https://kb.vmware.com/s/article/2142307
- https://blogs.vmware.com/apps/2018/10/how-to-enable-nvidia-v100-gpu-in-passthrough-mode-on-vsphere-for-machine-learning-and-other-hpc-workloads.html
- https://www.dell.com/support/kbdoc/en-us/000199172/pci-passthrough-module-devicepoweron-power-on-failed
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
"""

from __future__ import annotations

from virtplane import gpus as boards
from virtplane.device_choice import LARGE_BAR_BIOS_REFUSED
from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.facts import chosen_gpu
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, judged, unknown
from virtplane.verdicts import MMIO

RULE = Rule(MMIO, MANDATORY, "UEFI firmware and 64-bit MMIO for large-BAR GPUs",
            "GPUs that map more than 16 GB of memory (data-centre boards) need UEFI firmware and 64-bit MMIO in the "
            "VM, for passthrough and C-series vGPU; BIOS firmware fails at power-on. Advisory for other passthrough "
            "GPUs.",
            (sources.VSPHERE_LARGE_BAR, sources.VMWARE_V100_PASSTHROUGH, sources.DELL_LARGE_BAR,
             sources.PVE_PASSTHROUGH),
            applies=lambda vm: bool(vm.spec.gpus))
REMEDY = ("set firmware='uefi': virtplane then writes pciPassthru.use64bitMMIO=TRUE and pciPassthru.64bitMMIOSizeGB "
          "(the VM's large BARs added up, rounded up to a power of two) on vSphere, and OVMF maps the BAR on Proxmox; "
          "enable 'above 4G decoding' in the host firmware")


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    found = judged(vm, RULE, remediation=REMEDY)
    if found or not vm.passthrough_gpus or vm.spec.firmware == "uefi" or vm.hypervisor not in LARGE_BAR_BIOS_REFUSED:
        return found
    if vm.spec.firmware is None:
        return [unknown(vm, RULE, "the firmware of this clone (large-BAR GPUs need UEFI)", field="firmware")]
    chosen = [device for index in vm.passthrough_gpus if (device := chosen_gpu(vm, index)) is not None]
    if any(boards.large_bar(d.vendor_id, d.device_id, d.memory_mib, d.device_name) is None for d in chosen):
        return [unknown(vm, RULE, "the BAR size of the VM's passthrough GPU (a large BAR needs UEFI)",
                        field="firmware")]
    return [vm.finding(RULE, "passthrough GPU with BIOS firmware: GPUs with large BARs need UEFI and 64-bit MMIO",
                       field="firmware", level=ADVISORY, remediation="set firmware='uefi'")]
