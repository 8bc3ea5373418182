"""How each changed VirtualMachine field can be applied on Proxmox VE.

- In place: ``power``, ``tags``; disks added, removed or grown and NICs added, removed or moved to another
  network (PVE's default ``hotplug`` is ``network,disk,usb``).
- Power off: ``cpus``, ``sockets`` and ``memory`` (CPU and memory hotplug need NUMA and the ``hotplug``
  option, which virtplane does not set), ``firmware``, ``secure_boot`` (the EFI vars disk is re-made),
  ``guest_os``, ``machine``, ``nested_virtualization``, a NIC's ``adapter``, and ``node``: the VM migrates
  offline, because disks on local storage (local-lvm, the usual case) cannot move with a running VM. PCI devices
  (``hostpciN``): any change to ``gpus`` and SR-IOV NICs added, removed or given another device.
- Replace: a disk's ``storage``, ``thin`` or ``bus``.
- Refused: shrinking a disk; turning a NIC into an SR-IOV one or back (a ``netN`` and a ``hostpciN`` are different
  devices: remove the one and add the other).
"""

from __future__ import annotations

import re

from virtplane.providers.base import FieldChange, RefusedChange, Rule
from virtplane.providers.vm_rules import VmRules

_NIC_ATTRIBUTE = re.compile(r"^nics\[(?P<slot>[^\]]+)\]\.(?P<attribute>\w+)$")

_table = VmRules(
    hypervisor="Proxmox",
    power_off=frozenset({"cpus", "sockets", "memory", "firmware", "secure_boot", "guest_os", "machine",
                         "nested_virtualization", "node"}),
)

REPLACEABLE = _table.replaceable  # the fields some change of which replaces the VM


def vm_rule(change: FieldChange) -> Rule:
    found = _NIC_ATTRIBUTE.match(change.path)
    if found is not None and found["attribute"] == "adapter" and "sriov" in (change.old, change.new):
        raise RefusedChange(f"NIC {found['slot']} cannot change between adapter '{change.old}' and '{change.new}' on "
                            "Proxmox: an SR-IOV NIC is a PCI device (hostpciN), not a netN; declare the new NIC "
                            "without a slot (or with a free one) so the old one is removed and the new one added")
    if found is not None and found["slot"].startswith("hostpci"):
        # a VF's network is a label (PVE cannot set a VF's VLAN in a VM's configuration); its device needs power off
        return Rule.IN_PLACE if found["attribute"] == "network" else Rule.POWER_OFF
    return _table(change)
