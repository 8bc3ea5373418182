"""What a clone keeps from its template: the values the stack leaves unset, and the template's disk and
NIC slots for declared items the clone does not have yet."""

from __future__ import annotations

from typing import Any

from virtplane.providers.vsphere.vm_config import NEUTRAL_GUEST
from virtplane.specs import VirtualMachineSpec

LINKED_CLONE_DISKS = "createNewChildDiskBacking"
TEMPLATE_PATHS = ["config.firmware", "config.bootOptions", "config.nestedHVEnabled", "config.guestId"]


def inherited(spec: VirtualMachineSpec, template: dict[str, Any]) -> VirtualMachineSpec:
    """A clone's spec with the template's firmware, secure boot, nested virtualization and guest OS for
    what the stack leaves unset. vCenter's clone copies them already; the simulator's does not, and a clone
    must keep its template's values."""
    boot = template.get("config.bootOptions")
    guest_id = template.get("config.guestId")
    values = {
        "firmware": None if template.get("config.firmware") is None else (
            "uefi" if template["config.firmware"] == "efi" else "bios"),
        "secure_boot": None if boot is None else bool(getattr(boot, "efiSecureBootEnabled", False)),
        "nested_virtualization": template.get("config.nestedHVEnabled"),
        "guest_os": None if not guest_id else NEUTRAL_GUEST.get(guest_id, guest_id),
    }
    return spec.model_copy(update={field: value for field, value in values.items()
                                   if getattr(spec, field) is None and value is not None})
