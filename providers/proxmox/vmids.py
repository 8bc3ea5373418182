"""VMIDs for new VMs, handed out so that the creates of one run never race each other for the same one.

PVE's ``/cluster/nextid`` answers with the lowest free VMID, so creates asking at the same time get the same
answer and all but one fail with "VM N already exists". Each endpoint's driver therefore keeps the VMIDs it
has handed out this run (and those it saw listed): a create takes PVE's answer, or the first VMID above it that
is neither. A VMID some other client takes between the answer and the create is marked taken and the create
asks again (vm.py), so the next answer moves past it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from virtplane.providers.proxmox.client import PveClient


class VmidAllocator:
    """Thread-safe: one per endpoint, shared by every create and clone of a run."""

    def __init__(self, client: PveClient):
        self._client = client
        self._lock = threading.Lock()
        self._taken: set[int] = set()  # handed out this run, or seen in use

    def note_taken(self, vmids: Iterable[int]) -> None:
        """VMIDs known to be in use (a listing of the cluster's guests)."""
        with self._lock:
            self._taken.update(vmids)

    def reserve(self, why: str) -> int:
        """A VMID for one create: PVE's next free one, moved past every one this endpoint has handed out or seen
        in use; ``why`` (``pick a free VM id for VM web1``) goes into the error when PVE cannot answer."""
        offered = int(self._client.get("/cluster/nextid", why))
        with self._lock:
            vmid = offered
            while vmid in self._taken:
                vmid += 1
            self._taken.add(vmid)
        return vmid
