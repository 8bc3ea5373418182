"""Finding the objects a cmdlet acts on: PowerShell wildcards, and VMs by -VM (pipeline), -VMName or -Id."""

from __future__ import annotations

import re

from .engine import Invocation
from .errors import binding_error, not_found
from .model import Vm


def wildcard(pattern: str) -> re.Pattern[str]:
    """A PowerShell wildcard (``*``, ``?``, ``[abc]``, `` ` `` escapes) as a case-insensitive regex."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                out.append("[" + pattern[i + 1:end].replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def vms_by_name(inv: Invocation, names: list[str]) -> list[Vm]:
    found: list[Vm] = []
    for name in names:
        regex = wildcard(name)
        matched = [vm for vm in inv.host.vms if regex.match(vm.name)]
        if not matched and not has_wildcard(name):
            inv.error(not_found(f"Hyper-V was unable to find a virtual machine with name \"{name}\".", name))
        found.extend(vm for vm in matched if vm not in found)
    return found


def target_vms(inv: Invocation, name_param: str = "VMName") -> list[Vm]:
    """The VMs a cmdlet acts on: the piped/bound VM, or every VM matching -VMName (duplicates included)."""
    if inv.has("VM"):
        vm = inv.get("VM")
        if not isinstance(vm, Vm):
            raise binding_error("Cannot bind parameter 'VM': only VirtualMachine objects from the pipeline are "
                                "accepted.", "CannotConvertArgument")
        return [vm]
    if inv.has(name_param):
        return vms_by_name(inv, inv.get(name_param))
    raise binding_error(f"Cannot process command because of one or more missing mandatory parameters: "
                        f"{name_param}.", "MissingMandatoryParameter")
