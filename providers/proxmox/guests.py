"""What VMs and containers do alike on Proxmox VE, given the reader and power control of one guest type: sorting a
batch of read guests into ours and foreign ones by the ownership marker, finishing a clone, offline migration, and
deletion.

- Sort: a guest whose description marker names the stack is ours, by the resource the marker names (two with one
  marker are an error naming both VMIDs); one listed under a declared name without it is foreign.
- Migrate: ``POST …/migrate`` of a stopped guest (its local volumes move with it); the node it is on after is read
  back.
- Delete: a running guest is stopped (hard: it is being deleted), then ``DELETE`` with the caller's parameters; a
  delete whose outcome is unknown is sent again only while the guest is still listed, and one gone already is fine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from virtplane.clones import after_clone
from virtplane.errors import ProviderError
from virtplane.providers.base import (
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    owner_from_description,
)
from virtplane.providers.marker import made_by_create
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import OutcomeUnknown, PveError
from virtplane.providers.proxmox.ownership import has_marker_tag
from virtplane.providers.proxmox.tasks import run
from virtplane.providers.proxmox.vm_power import Power
from virtplane.providers.proxmox.vm_reader import VmReader, VmRow
from virtplane.slots import resolve_slots
from virtplane.specs import Spec

MakeObserved = Callable[[VmRow, dict[str, Any], Owner | None, bool], Observed]
"""(row, configuration, owner, ours) -> the guest as the driver reports it."""


class Guests:
    def __init__(self, client: PveClient, reader: VmReader, power: Power, endpoint_name: str):
        self._client = client
        self._reader = reader
        self._power = power
        self._endpoint = endpoint_name

    def sort(self, stack: str, rows: Iterable[VmRow], configs: Mapping[int, dict[str, Any]],
             listed: Mapping[str, str], observed: MakeObserved) -> ObserveResult:
        """``listed`` maps the name PVE lists a declared guest by to its resource."""
        noun = self._reader.noun
        result = ObserveResult()
        for row in rows:
            config = configs.get(row.vmid)
            if config is None:
                continue
            owner = owner_from_description(config.get("description"))
            if owner is not None and not has_marker_tag(config.get("tags")) and not made_by_create(row.name, owner):
                owner = None  # the description line alone, on a guest its create did not name: a copy, never ours
            if owner is not None and owner.stack == stack:
                if owner.resource in result.owned:
                    other = result.owned[owner.resource].handle.row.vmid
                    raise ProviderError(f"two {noun}s on Proxmox endpoint '{self._endpoint}' carry the ownership "
                                        f"marker of {noun} {owner.resource} of stack {stack} (VMIDs {other} and "
                                        f"{row.vmid}); delete the one that should not exist")
                result.owned[owner.resource] = observed(row, config, owner, True)
            elif row.name in listed:
                result.foreign[listed[row.name]] = observed(row, config, owner, False)
        return result

    def migrate(self, row: VmRow, target: str, name: str) -> str:
        """Offline migration; returns the node the guest is on after."""
        run(self._client, "POST", f"{row.path}/migrate", f"migrate {self._reader.noun} {name} from node {row.node} to "
            f"node {target}", {"target": target})
        moved = self._reader.row(row.vmid, name)
        return moved.node if moved else target

    def delete(self, row: VmRow, name: str, params: Mapping[str, int]) -> None:
        what = f"delete {self._reader.noun} {name} ({row.vmid}) on node {row.node}"
        try:
            if row.running:
                self._power.stop(row.path, name)
            try:
                run(self._client, "DELETE", row.path, what, params)
            except OutcomeUnknown:
                if self._reader.row(row.vmid, name) is not None:
                    run(self._client, "DELETE", row.path, what, params)
        except PveError as error:
            if not error.missing:
                raise


def finish_clone(driver: KindDriver, observed: Observed, spec: Spec, create_only: frozenset[str], what: str) -> None:
    """Give a fresh clone the declared fields, as an update: slots resolved against the clone, every change the driver
    can make (``what``: "VM web clones 'tpl'"). A change that would replace the clone means it is not what was
    declared (creation_problems refuses at plan time what the clone call cannot do; a hypervisor may still ignore
    part of the call): it is deleted again and the apply stops, naming the field (virtplane/clones.py)."""
    resolved = resolve_slots(spec, observed.state, driver.new_slot)
    changes = after_clone(driver.rule, resolved.model_dump(), observed.state, create_only, what,
                          lambda: driver.delete(observed))
    driver.update(observed, resolved, changes)
