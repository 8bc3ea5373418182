"""Hyper-V clones of a golden image: a new VM with the source's generation, configuration version, processors,
memory, firmware, adapters (switch and VLAN) and disks, each disk a differencing VHDX whose parent is the source's
VHDX (linked) or an independent copy of it (``Convert-VHD``, full). Hyper-V has no clone operation of its own;
this is what its documentation has an administrator do for a "golden image" (Microsoft Learn, "New-VHD"
-Differencing -ParentPath; "Convert-VHD"). The source must not run while it is copied, and its disks must stay
where they are while linked clones use them (a differencing disk names its parent by path).

Pure mapping: which VM is the source, and the spec the clone starts from (the declared fields over the source's)."""

from __future__ import annotations

from typing import Any

from virtplane.errors import ProviderError
from virtplane.specs import VirtualMachineSpec

INHERITED = ("cpus", "memory", "machine", "firmware", "secure_boot", "nested_virtualization")


def find_source(rows: list[tuple[Any, dict[str, Any]]], name: str, vm: str, endpoint: str
                ) -> tuple[Any, dict[str, Any]]:
    """The one VM named ``name`` (exactly, never a wildcard); a clear error for none or several."""
    found = [(obj, parts) for obj, parts in rows if (obj.text("Name") or "") == name]
    if len(found) != 1:
        what = f"{len(found)} VMs" if found else "no VM"
        raise ProviderError(f"VM {vm} clones '{name}', but {what} of that name exist on Hyper-V endpoint "
                            f"'{endpoint}' (exactly one is needed)")
    return found[0]


def clone_basis(spec: VirtualMachineSpec, source: dict[str, Any]) -> VirtualMachineSpec:
    """The clone's spec as made: the source's value for each field the stack leaves unset; disks and NICs are
    the source's, and it is made powered off (the declared ones and the power state are applied afterwards)."""
    values = {field: source.get(field) for field in INHERITED if getattr(spec, field) is None}
    return spec.model_copy(update={**values, "disks": [], "nics": [], "power": None})
