"""Reading VMs (and containers) in batches: one ``/cluster/resources`` listing, then the candidates' configurations
concurrently. One reader reads one guest type: ``qemu`` (VMs) or ``lxc`` (containers), which share the listing, the
VMID space and the ``/pending`` view.

A VM's configuration is read from ``/nodes/{node}/qemu/{vmid}/pending``, merged: the value each key will have
at the VM's next start, which is what ``qm config`` (and PVE's default ``GET …/config``) shows. A change PVE
could not hot-plug into a running VM therefore reads back as made, as PVE itself presents it; it takes effect
when the VM next starts (a power-off rule restarts it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from virtplane.errors import ProviderError
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import PveError

# Reads in flight. A PVE node serves its API with 3 pveproxy workers; a read holds one for its service time only,
# so about workers x (1 + latency / service time) reads keep them busy: 15 at 20 ms of latency and 5 ms of service.
# Measured against the lab's PVE API served by 3 workers (bench/drift_proxmox.py --workers 3, 1,000 VMs): 8 in flight
# 4.3 s, 16 3.2 s, 32 3.2 s, 64 3.2 s; more than 16 only queues at the server. At most client.POOL_SIZE.
CONCURRENT_READS = 16


@dataclass(frozen=True)
class VmRow:
    """A VM (or, with ``type`` ``lxc``, a container) as ``/cluster/resources?type=vm`` lists it. A container's
    ``name`` is its hostname."""

    vmid: int
    name: str
    node: str
    status: str
    tags: str
    template: bool
    lock: str | None
    type: str = "qemu"

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def path(self) -> str:
        return f"/nodes/{self.node}/{self.type}/{self.vmid}"

    @classmethod
    def parse(cls, row: Mapping[str, Any], guest_type: str = "qemu") -> VmRow:
        return cls(vmid=int(row["vmid"]), name=str(row.get("name") or ""), node=str(row.get("node") or ""),
                   status=str(row.get("status") or ""), tags=str(row.get("tags") or ""),
                   template=bool(row.get("template")), lock=row.get("lock"), type=guest_type)


class VmReader:
    """Reads guests of one type: ``qemu`` (``noun`` "VM") or ``lxc`` ("container")."""

    def __init__(self, client: PveClient, guest_type: str = "qemu", noun: str = "VM"):
        self._client = client
        self.type = guest_type
        self.noun = noun

    def rows(self, why: str = "") -> list[VmRow]:
        """Every guest of this reader's type of the cluster, templates included. ``why`` ("to find VM web1") goes into
        the error, so that one met while working on a VM names it."""
        what = f"list the cluster's {self.noun}s {why}".rstrip()
        rows = self._client.get("/cluster/resources", what, {"type": "vm"})
        return [VmRow.parse(row, self.type) for row in rows if row.get("type", "qemu") == self.type and "vmid" in row]

    def row(self, vmid: int, name: str) -> VmRow | None:
        return next((row for row in self.rows(f"to find {self.noun} {name} ({vmid})") if row.vmid == vmid), None)

    def row_at(self, node: str, vmid: int, name: str) -> VmRow | None:
        """One VM as listed, from its own ``status/current`` (cheaper than listing the cluster's VMs, which a create
        that has just made it would otherwise do); None when PVE says it does not exist."""
        try:
            status = self._client.get(f"/nodes/{node}/{self.type}/{vmid}/status/current",
                                      f"read the state of {self.noun} {name} ({vmid}) on node {node}")
        except PveError as error:
            if error.missing:
                return None
            raise
        return VmRow.parse({**status, "vmid": vmid, "node": node}, self.type)

    def config(self, row: VmRow) -> dict[str, Any]:
        items = self._client.get(f"{row.path}/pending", f"read the configuration of {self.noun} {row.name} "
                                 f"({row.vmid}) on node {row.node}")
        return merge_pending(items)

    def configs(self, rows: Iterable[VmRow], required: Collection[str]) -> dict[int, dict[str, Any]]:
        """vmid -> configuration, read concurrently. A VM that cannot be read is left out unless its name is in
        ``required``: then the error is raised, except that one whose configuration PVE says does not exist is
        looked up again, and left out only when it is no longer listed (it was deleted meanwhile). One that is
        still listed (the answer was wrong for a moment, or it moved to another node) is read where it is now:
        taking it for gone would have the plan create a second VM with its name and marker."""
        rows = list(rows)
        if not rows:
            return {}
        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(rows))) as pool:
            outcomes = list(pool.map(self._try_config, rows))
        configs: dict[int, dict[str, Any]] = {}
        listed: dict[int, VmRow] | None = None
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, dict):
                configs[row.vmid] = outcome
            elif row.name not in required:
                continue
            elif not (isinstance(outcome, PveError) and outcome.missing):
                raise outcome
            else:
                if listed is None:
                    listed = {again.vmid: again for again in
                              self.rows(f"to find {self.noun} {row.name} ({row.vmid}) again")}
                if row.vmid in listed:
                    configs[row.vmid] = self.config(listed[row.vmid])
        return configs

    def _try_config(self, row: VmRow) -> dict[str, Any] | ProviderError:
        try:
            return self.config(row)
        except ProviderError as exc:
            return exc


def merge_pending(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``/pending`` items into one configuration: pending values win, pending deletes remove the key."""
    config: dict[str, Any] = {}
    for item in items:
        key = item.get("key")
        if not key or item.get("delete"):
            continue
        if "pending" in item:
            config[key] = item["pending"]
        elif "value" in item:
            config[key] = item["value"]
    return config
