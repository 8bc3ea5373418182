"""How each changed VirtualMachine field can be applied on vSphere.

- In place: ``cpus`` and ``memory`` raised (hot add is enabled on VMs we create), ``node`` (vMotion; refused for a
  VM holding a passthrough GPU, a vGPU or an SR-IOV NIC: vSphere cannot vMotion those, see ``moving_device_vm``),
  ``power``, ``tags``, disks added, removed or grown, NICs added, removed or moved.
- Power off: ``cpus`` or ``memory`` lowered, ``firmware``, ``secure_boot``, ``guest_os``,
  ``nested_virtualization``, ``sockets``, a NIC's ``adapter`` or SR-IOV physical function (``device``), any
  GPU change, and ``machine`` raised (UpgradeVM).
- Replace: ``machine`` lowered (vSphere can only upgrade a hardware version) and a disk's ``storage``,
  ``thin`` or ``bus``.
"""

from __future__ import annotations

import re

from virtplane.providers.base import FieldChange, Rule
from virtplane.providers.vm_rules import VmRules

HARDWARE_VERSION = re.compile(r"^vmx-(\d+)$")

_table = VmRules(
    hypervisor="vSphere",
    hot_add=frozenset({"cpus", "memory"}),
    power_off=frozenset({"firmware", "secure_boot", "guest_os", "nested_virtualization", "sockets"}),
)

REPLACEABLE = _table.replaceable | {"machine"}  # the fields some change of which replaces the VM (machine lowered)

_NIC_FUNCTION = re.compile(r"^nics\[[^\]]+\]\.device$")


def vm_rule(change: FieldChange) -> Rule:
    if change.path == "machine":
        return machine_rule(change.old, change.new)
    if _NIC_FUNCTION.match(change.path):
        return Rule.POWER_OFF  # another physical function: the SR-IOV NIC is a new PCI device
    return _table(change)


def machine_rule(old: str | None, new: str | None) -> Rule:
    """An upgrade (``vmx-13`` -> ``vmx-19``) is made in place with the VM off; anything else replaces it."""
    if new is None:
        return Rule.IN_PLACE  # unset: vSphere's choice is kept, nothing to do
    if version_number(old) and version_number(new) > version_number(old):
        return Rule.POWER_OFF
    return Rule.REPLACE


def version_number(version: str | None) -> int:
    """``vmx-19`` -> 19; anything else (unset, unknown) -> 0."""
    match = HARDWARE_VERSION.match(version or "")
    return int(match.group(1)) if match else 0


def moving_device_vm(host: str | None, to: str | None) -> str:
    """Why a VM holding PCI devices does not move: vSphere vMotions no VM with DirectPath I/O, SR-IOV or (without
    the vGPU manager's migration support) vGPU devices, and its devices' backings name its host's devices (VMware
    vSphere VM Administration, "PCI devices"). Moving it is the user's decision, in steps virtplane can apply."""
    return (f"the VM holds PCI devices (a passthrough GPU, a vGPU or an SR-IOV NIC), which vSphere cannot vMotion "
            f"from {host or 'its host'} to {to}, and which belong to that host: remove them from the VM (gpus=[], no "
            "SR-IOV NICs) and apply, then change node and apply, then declare the devices again")
