"""How each changed VirtualMachine field can be applied on vSphere.

- In place: ``cpus`` and ``memory`` raised (hot add is enabled on VMs we create), ``node`` (vMotion),
  ``power``, ``tags``, disks added, removed or grown, NICs added, removed or moved.
- Power off: ``cpus`` or ``memory`` lowered, ``firmware``, ``secure_boot``, ``guest_os``,
  ``nested_virtualization``, ``sockets``, a NIC's ``adapter``.
- Replace: ``machine`` (a hardware version is set at creation and vSphere can only upgrade it) and a
  disk's ``storage``, ``thin`` or ``bus``.
"""

from __future__ import annotations

from virtplane.providers.vm_rules import VmRules

vm_rule = VmRules(
    hypervisor="vSphere",
    hot_add=frozenset({"cpus", "memory"}),
    power_off=frozenset({"firmware", "secure_boot", "guest_os", "nested_virtualization", "sockets"}),
    replace=frozenset({"machine"}),
)
