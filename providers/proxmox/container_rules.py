"""How each changed Container field can be applied on Proxmox VE (pve-container's hot-plug rules, LXC/Config.pm).

- In place: ``cpus`` (cores), ``memory``, ``swap``, ``hostname``, ``tags``, ``power``; NICs added, removed or moved to
  another network (PVE hot-plugs ``netN``); a mount point added (a new ``mpN`` is hot-plugged); the root filesystem
  or a mount point grown (``resize`` works on a running container).
- Power off: ``features`` (applied at the next start), ``devices`` (``devN``), a mount point removed or mounted at
  another path (PVE applies that at the next start), and ``node``: a container migrates stopped (restart mode).
- Replace: ``unprivileged`` (PVE cannot change it: "unable to modify read-only option"), the storage of the root
  filesystem or of a mount point.
- Refused: shrinking the root filesystem or a mount point ("unable to shrink disk size").
"""

from __future__ import annotations

import re

from virtplane.providers.base import FieldChange, RefusedChange, Rule

_MOUNT = re.compile(r"^mounts\[(?P<slot>[^\]]+)\](?:\.(?P<attribute>\w+))?$")
IN_PLACE = frozenset({"cpus", "memory", "swap", "hostname", "tags", "power"})
POWER_OFF = frozenset({"devices", "node"})
REPLACE = frozenset({"unprivileged", "rootfs.storage"})
REPLACEABLE = frozenset({"unprivileged", "rootfs", "mounts"})  # the fields some change of which replaces it


def container_rule(change: FieldChange) -> Rule:
    path = change.path
    if path in IN_PLACE:
        return Rule.IN_PLACE
    if path in REPLACE:
        return Rule.REPLACE
    if path in POWER_OFF or path.startswith("features."):
        return Rule.POWER_OFF
    if path == "rootfs.size":
        _refuse_shrink("the root filesystem", change)
        return Rule.IN_PLACE
    found = _MOUNT.match(path)
    if found is not None:
        attribute = found["attribute"]
        if attribute is None:
            return Rule.POWER_OFF if change.new is None else Rule.IN_PLACE
        if attribute == "storage":
            return Rule.REPLACE
        if attribute == "size":
            _refuse_shrink(f"mount point {found['slot']}", change)
            return Rule.IN_PLACE
        return Rule.POWER_OFF  # its path
    return Rule.IN_PLACE  # NICs


def _refuse_shrink(what: str, change: FieldChange) -> None:
    if change.old is not None and change.new is not None and change.new < change.old:
        raise RefusedChange(f"shrinking {what} from {change.old} GiB to {change.new} GiB is not possible on Proxmox "
                            "(PVE: \"unable to shrink disk size\"); grow it, or declare a new container and move the "
                            "data")
