"""Making a guest (a VM or a container) under a fresh VMID, so that a create is never done twice.

VMs and containers share PVE's VMID space and its create protocol, so both drivers make theirs here:

- a VMID from ``/cluster/nextid``, moved past those this endpoint handed out or saw listed (vmids.py, one allocator
  per endpoint shared by both kinds, so parallel creates never race each other for one), then one create (or clone)
  call carrying the name, the ownership marker and the configuration;
- when another client takes the VMID first (any "already exists" answer, synchronous or from the task), it stays
  marked taken and a new one is fetched (a few times);
- when the call's outcome is unknown (the connection dropped after it was sent), the guests are searched for our
  marker before anything is made again, and one found is waited for until its create lock is gone.
"""

from __future__ import annotations

import time
from typing import Any

from virtplane.errors import ProviderError
from virtplane.providers.base import Owner, owner_from_description
from virtplane.providers.marker import made_by_create
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import (
    OutcomeUnknown,
    PveError,
    TaskFailed,
    is_bare_permission_failure,
    permission_denied,
)
from virtplane.providers.proxmox.settings import ProxmoxSettings
from virtplane.providers.proxmox.tasks import run
from virtplane.providers.proxmox.vm_reader import VmReader, VmRow
from virtplane.providers.proxmox.vmids import VmidAllocator

VMID_ATTEMPTS = 5  # fresh VMIDs tried when other clients keep taking the one we were given
_BUSY_LOCKS = ("create", "clone")


class GuestCreator:
    """Thread-safe: the allocator is, and each call keeps its state in locals."""

    def __init__(self, client: PveClient, reader: VmReader, vmids: VmidAllocator, settings: ProxmoxSettings):
        self._client = client
        self._reader = reader
        self._vmids = vmids
        self._settings = settings

    def allocate(self, owner: Owner, node: str, path: str, id_key: str, data: dict[str, Any], what: str,
                 listed_as: str | None = None) -> VmRow:
        """Run a create or clone (``what`` holds ``<vmid>``) of a guest on ``node`` under a fresh VMID; returns the new
        guest as PVE shows it (its own status, not a listing of every guest: parallel creates would each list them
        all). ``listed_as`` is the name PVE lists it by (a container's hostname), when not the resource's."""
        noun = self._reader.noun
        for attempt in range(1, VMID_ATTEMPTS + 1):
            vmid = self._vmids.reserve(f"pick a free VM id for {noun} {owner.resource}")
            doing = what.replace("<vmid>", str(vmid))
            try:
                run(self._client, "POST", path, doing, {id_key: vmid, **data})
            except (PveError, TaskFailed) as error:
                if vmid_taken(error) and attempt < VMID_ATTEMPTS:
                    continue  # another client took the VMID between nextid and our call; it stays marked taken
                if isinstance(error, PveError) and is_bare_permission_failure(error):
                    # The first check of a create or clone is VM.Allocate on the new id; name it.
                    raise permission_denied(self._settings.endpoint_name, self._settings.principal, doing,
                                            "VM.Allocate", f"/vms/{vmid}", error.pve_text) from None
                raise
            except OutcomeUnknown:
                found = self.find_own(owner, listed_as)
                if found is not None:
                    return self._wait_until_made(found, doing)
                if attempt == VMID_ATTEMPTS:
                    raise  # the last answer was lost too (and made nothing): say that, not that VMIDs ran out
                continue  # it did not happen: try again
            row = self._reader.row_at(node, vmid, owner.resource)
            if row is None:
                raise ProviderError(f"Proxmox reported success but {noun} {owner.resource} (VMID {vmid}) is not "
                                    "listed")
            return row
        raise AssertionError("unreachable: the last attempt returns or raises")

    def find_own(self, owner: Owner, listed_as: str | None = None) -> VmRow | None:
        """The guest carrying ``owner``'s marker, if a create whose answer was lost made it. Every guest listed by that
        name must be read (an unreadable one may be ours): the answer decides whether a second create is safe."""
        name = listed_as or owner.resource
        rows = [row for row in self._reader.rows(f"to look for {self._reader.noun} {owner.resource} by its ownership "
                                                 "marker")
                if (row.name == name or made_by_create(row.name, owner)) and not row.template]
        configs = self._reader.configs(rows, (name,))
        return next((row for row in rows
                     if owner_from_description(configs.get(row.vmid, {}).get("description")) == owner), None)

    def _wait_until_made(self, row: VmRow, what: str) -> VmRow:
        """A guest found by its marker may still be locked by the create or clone that makes it: wait for it."""
        timeout = self._settings.task_timeout
        deadline = time.monotonic() + timeout
        while row.lock in _BUSY_LOCKS:
            if time.monotonic() > deadline:
                raise ProviderError(f"Proxmox did not {what} within {timeout:g} s ({self._reader.noun} {row.vmid} is "
                                    f"still locked: {row.lock})")
            time.sleep(0.5)
            row = self._reader.row(row.vmid, row.name) or row
        return row


def vmid_taken(error: PveError | TaskFailed) -> bool:
    """PVE refused the VMID as in use, in any of its wordings: the synchronous "unable to create VM N - VM N already
    exists on node …" (or "CT N"), a clone's "unable to create VM N: config file already exists", or the same
    from the task's exit status."""
    text = error.pve_text if isinstance(error, PveError) else error.exitstatus
    return "already exists" in text
