"""How each changed VirtualMachine field can be applied on Proxmox VE.

- In place: ``power``, ``tags``; disks added, removed or grown and NICs added, removed or moved to another
  network (PVE's default ``hotplug`` is ``network,disk,usb``).
- Power off: ``cpus``, ``sockets`` and ``memory`` (CPU and memory hotplug need NUMA and the ``hotplug``
  option, which virtplane does not set), ``firmware``, ``secure_boot`` (the EFI vars disk is re-made),
  ``guest_os``, ``machine``, ``nested_virtualization``, a NIC's ``adapter``, and ``node``: the VM migrates
  offline, because disks on local storage (local-lvm, the usual case) cannot move with a running VM.
- Replace: a disk's ``storage``, ``thin`` or ``bus``.
- Refused: shrinking a disk.
"""

from __future__ import annotations

from virtplane.providers.vm_rules import VmRules

vm_rule = VmRules(
    hypervisor="Proxmox",
    power_off=frozenset({"cpus", "sockets", "memory", "firmware", "secure_boot", "guest_os", "machine",
                         "nested_virtualization", "node"}),
)
