"""Sending a planned reconfiguration (reconfigure.py's ``Reconfiguration``) to a VM or a container, safely retried.

The same for both guest types but for the verb: a VM's configuration is written with ``POST …/config`` (a task), a
container's with ``PUT …/config`` (synchronous). Order: ``first_delete`` in its own write (PVE refuses to delete and
set one key in the same request), then ``settings`` and ``delete`` together, then one ``PUT …/resize`` (absolute
size) per grown volume, then the removed volumes, which PVE keeps as ``unusedN`` entries, are destroyed by deleting
those entries.

A write whose outcome is unknown (the connection dropped after it was sent) is never blindly repeated: the
configuration is read again and only what is still missing is sent (a new volume ``storage:size`` that is there now
was made by the lost call, so it is not allocated twice; a volume already at its size is not resized again).
"""

from __future__ import annotations

from typing import Any

from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.config import DiskSlot, split_options
from virtplane.providers.proxmox.faults import OutcomeUnknown
from virtplane.providers.proxmox.reconfigure import Reconfiguration
from virtplane.providers.proxmox.tasks import run
from virtplane.providers.proxmox.vm_reader import merge_pending


class ConfigWriter:
    """``noun`` names the guest in messages ("VM", "container"); ``method`` writes its configuration."""

    def __init__(self, client: PveClient, noun: str = "VM", method: str = "POST"):
        self._client = client
        self._noun = noun
        self._method = method

    def apply(self, path: str, name: str, plan: Reconfiguration) -> None:
        what = f"reconfigure {self._noun} {name}"
        if plan.first_delete:
            self.configure(path, what, {}, plan.first_delete)
        if plan.settings or plan.delete:
            self.configure(path, what, plan.settings, plan.delete)
        for key, size in plan.resize:
            self.resize(path, name, key, size)
        if plan.removed_volumes:
            self.destroy_unused(path, name, plan.removed_volumes)

    def configure(self, path: str, what: str, settings: dict[str, Any], deletes: list[str]) -> None:
        """One config write. If its outcome is unknown, re-read and send what is still missing."""
        data = dict(settings, **({"delete": ",".join(deletes)} if deletes else {}))
        try:
            run(self._client, self._method, f"{path}/config", what, data)
        except OutcomeUnknown:
            current = self.read_config(path, what)
            # A new volume ("storage:size") that is there now was made by the lost call: do not allocate it twice.
            again = {key: value for key, value in settings.items()
                     if not (key in current and is_new_volume(value))}
            gone = [key for key in deletes if key in current]
            if again or gone:
                run(self._client, self._method, f"{path}/config", what,
                    dict(again, **({"delete": ",".join(gone)} if gone else {})))

    def resize(self, path: str, name: str, key: str, size: int) -> None:
        what = f"grow {_VOLUME.get(key, 'disk')} {key} of {self._noun} {name} to {size} GiB"
        data = {"disk": key, "size": f"{size}G"}  # absolute
        try:
            run(self._client, "PUT", f"{path}/resize", what, data)
        except OutcomeUnknown:
            current = self.read_config(path, what).get(key)
            volume, options = split_options(str(current or ""))
            if current is None or DiskSlot(key, volume or "", options).size < size:
                run(self._client, "PUT", f"{path}/resize", what, data)

    def destroy_unused(self, path: str, name: str, volumes: list[str]) -> None:
        """PVE keeps a removed volume as ``unusedN``; destroy those of the volumes we removed."""
        config = self.read_config(path, f"reconfigure {self._noun} {name}")
        unused = [key for key, value in config.items()
                  if key.startswith("unused") and split_options(str(value))[0] in volumes]
        if unused:
            self.configure(path, f"destroy the removed {_REMOVED[self._noun]} of {self._noun} {name}", {}, unused)

    def read_config(self, path: str, what: str) -> dict[str, Any]:
        return merge_pending(self._client.get(f"{path}/pending", f"re-read the configuration to {what}"))


_VOLUME = {"rootfs": "the root filesystem"}
_REMOVED = {"VM": "disks", "container": "mount points"}


def is_new_volume(value: Any) -> bool:
    """``local-lvm:32`` or ``local-lvm:8,mp=/srv`` (a volume to allocate), as opposed to an existing volume or another
    setting."""
    volume = split_options(str(value))[0] or ""
    return ":" in volume and volume.split(":", 1)[1].replace(".", "", 1).isdigit()
