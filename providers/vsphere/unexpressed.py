"""What a vSphere VM has that no VirtualMachine field can say: devices beyond disks, NICs, GPUs, their controllers and
the devices every VM has (IDE/PS2/PCI/SIO controllers, keyboard, pointing device, video card, VMCI). They are left as
they are; ``virtplane import`` lists them in a comment on the VM. Device types: vSphere API reference,
vim.vm.device."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from virtplane.providers.vsphere.pci import is_pci_gpu

_D = vim.vm.device
_NAMES: tuple[tuple[Any, str], ...] = (
    (_D.VirtualFloppy, "a floppy drive"), (_D.VirtualSerialPort, "a serial port"),
    (_D.VirtualParallelPort, "a parallel port"), (_D.VirtualUSBController, "a USB controller"),
    (_D.VirtualUSB, "a USB device"), (_D.VirtualSoundCard, "a sound card"), (_D.VirtualTPM, "a virtual TPM"),
    (_D.VirtualNVDIMM, "an NVDIMM"), (_D.VirtualWDT, "a watchdog timer"),
)


def unexpressed(devices: list[Any] | None) -> list[str]:
    """One description per device the spec cannot express, in device order (``CD/DVD drive 3000 with
    [ds] iso/x.iso``)."""
    found = []
    for device in sorted(devices or [], key=lambda d: d.key):
        label = getattr(getattr(device, "deviceInfo", None), "label", None) or f"device {device.key}"
        if isinstance(device, _D.VirtualCdrom):
            iso = getattr(getattr(device, "backing", None), "fileName", None)
            if iso:
                found.append(f"{label} (a CD/DVD drive holding {iso})")
            continue
        if isinstance(device, _D.VirtualPCIPassthrough) and not is_pci_gpu(device):
            found.append(f"{label} (a PCI device passed through that is not a GPU)")
            continue
        for kind, words in _NAMES:
            if isinstance(device, kind):
                found.append(f"{label} ({words})")
                break
    return found
