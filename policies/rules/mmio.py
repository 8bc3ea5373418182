"""hw.mmio: a passthrough GPU with a large BAR needs UEFI firmware and 64-bit MMIO in the VM, and "above 4G
decoding" in the host firmware.

VMware: devices mapping more than 16 GB of MMIO need the VM to boot EFI (with ``pciPassthru.use64bitMMIO`` and
``pciPassthru.64bitMMIOSizeGB``); with BIOS firmware the VM fails to power on ("Module 'DevicePowerOn' power on
failed"). Proxmox recommends OVMF (UEFI) for GPU passthrough. The inventory has no BAR sizes, so boards whose frame
buffer (and with it BAR1) is 40 GB or more are recognised by name (A100, A800, H100, H200, H800, A40, L40, L40S,
B200): BIOS firmware with them is mandatory; with any other passthrough GPU it is an advisory. A clone that does
not declare its firmware cannot be verified (advisory).

Sources: VMware KB 2142307 "VMware vSphere VMDirectPath I/O: Requirements for Platforms and Devices"; Dell KB
000199172 "PCI Passthrough 'Module DevicePowerOn power on failed' when using GPUs with Virtual Machines on
vSphere"; Proxmox VE wiki "PCI(e) Passthrough" (GPU passthrough: OVMF, q35).

Links:
- https://kb.vmware.com/s/article/2142307
- https://www.dell.com/support/kbdoc/en-us/000199172/pci-passthrough-module-devicepoweron-power-on-failed
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
"""

from __future__ import annotations

import re

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.facts import chosen_gpu
from virtplane.policies.model import ADVISORY, MANDATORY, Finding, Rule, StackUnderCheck, VmUnderCheck, unknown

RULE = Rule("hw.mmio", MANDATORY, "UEFI firmware and 64-bit MMIO for large-BAR passthrough GPUs",
            "GPUs that map more than 16 GB of memory (data-centre boards) need UEFI firmware and 64-bit MMIO in the "
            "VM; BIOS firmware fails at power-on. Advisory for other passthrough GPUs.",
            (sources.VSPHERE_LARGE_BAR, sources.DELL_LARGE_BAR, sources.PVE_PASSTHROUGH),
            applies=lambda vm: bool(vm.passthrough_gpus))
LARGE_BAR = re.compile(r"\b(A100|A800|H100|H200|H800|A40|L40S?|B200)\b", re.IGNORECASE)


def check(vm: VmUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if not vm.passthrough_gpus or vm.spec.firmware == "uefi":
        return []
    if vm.spec.firmware is None:
        return [unknown(vm, RULE, "the firmware of this clone (large-BAR GPUs need UEFI)", field="firmware")]
    large = [device.device_name for index in vm.passthrough_gpus
             if (device := chosen_gpu(vm, index)) is not None and LARGE_BAR.search(device.device_name or "")]
    if large:
        return [vm.finding(RULE, f"passthrough GPU {large[0]} maps more than 16 GB of memory and needs UEFI "
                                 "firmware with 64-bit MMIO; the VM boots BIOS", field="firmware", level=MANDATORY,
                           remediation="set firmware='uefi' (virtplane then enables 64-bit MMIO) and enable "
                                       "'above 4G decoding' in the host firmware")]
    return [vm.finding(RULE, "passthrough GPU with BIOS firmware: GPUs with large BARs need UEFI and 64-bit MMIO",
                       field="firmware", level=ADVISORY, remediation="set firmware='uefi'")]
