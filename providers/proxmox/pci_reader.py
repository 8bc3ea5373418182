"""Reading what VMs' PCI devices are: each node's ``/nodes/{node}/hardware/pci`` and the cluster's
``/cluster/mapping/pci``, read only when a VM has or asks for a ``hostpciN``, and kept until ``refresh()`` (every
observe). Free virtual functions are picked here too, for SR-IOV NICs given a physical function.

Thread-safe: one per endpoint. The caches are guarded by a lock, and ``pick_vf``/``pick_gpu`` hand out each
device once per plan (until the next observe): two VMs created at once never get the same VF or GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.devices import VENDORS, PciView, used_addresses, vfs_of
from virtplane.providers.proxmox.host_facts import hex_id, pci_address, truthy


class PciReader:
    def __init__(self, client: PveClient):
        self._client = client
        self._lock = threading.Lock()
        self._rows: dict[str, list[Mapping[str, Any]]] = {}
        self._mappings: list[Mapping[str, Any]] | None = None
        self._handed_out: set[tuple[str, str]] = set()  # (node, VF address) given to a VM this run

    def refresh(self) -> None:
        """Forget what was read and handed out: the next plan sees the devices VMs use now."""
        with self._lock:
            self._rows, self._mappings, self._handed_out = {}, None, set()

    def rows(self, node: str) -> list[Mapping[str, Any]]:
        with self._lock:
            if node in self._rows:
                return self._rows[node]
        rows = self._client.get(f"/nodes/{node}/hardware/pci", f"list the PCI devices of node {node}")
        with self._lock:
            self._rows[node] = list(rows)
            return self._rows[node]

    def mappings(self) -> list[Mapping[str, Any]]:
        with self._lock:
            if self._mappings is not None:
                return self._mappings
        rows = self._client.get("/cluster/mapping/pci", "list the cluster's PCI resource mappings")
        with self._lock:
            self._mappings = list(rows)
            return self._mappings

    def view(self, nodes: Iterable[str]) -> PciView:
        """What the VMs on ``nodes`` may pass through, with the cluster's mappings."""
        return PciView({node: self.rows(node) for node in sorted(set(nodes))}, self.mappings())

    def pick_gpu(self, node: str, vendor: str | None, vgpu: bool,
                 configs: Callable[[], Iterable[Mapping[str, Any]]]) -> str:
        """A GPU on ``node`` for a GPU declared without a device that an update adds back (creates get theirs from
        placement): for a vGPU the first mdev-capable display device (of ``vendor``), for passthrough the first
        display device no VM on the node passes through and none handed out this run. Raises ValueError."""
        rows = self._client.get(f"/nodes/{node}/hardware/pci", f"list the PCI devices of node {node}")
        wanted = next((vid for vid, name in VENDORS.items() if name == vendor), None)
        gpus = sorted(pci_address(str(row["id"])) for row in rows if hex_id(row.get("class", "")).startswith("0x03")
                      and (wanted is None or hex_id(row.get("vendor", "")) == wanted)
                      and (not vgpu or truthy(row.get("mdev", 0))))
        if vgpu and gpus:
            return gpus[0]
        used = used_addresses(configs()) if gpus else set()
        with self._lock:
            free = [gpu for gpu in gpus if gpu not in used and (node, gpu) not in self._handed_out]
            if not free:
                kind = "mdev-capable GPU" if vgpu else "free GPU"
                raise ValueError(f"names no device, and node {node} has no {kind}{f' of {vendor}' if vendor else ''} "
                                 "to give it")
            self._handed_out.add((node, free[0]))
            return free[0]

    def pick_vf(self, node: str, pf: str, configs: Callable[[], Iterable[Mapping[str, Any]]]) -> str:
        """A free virtual function of ``pf`` on ``node``: one no VM there passes through (``configs()`` gives their
        configurations, read only now) and none handed out this run. Raises ValueError when there is none."""
        vfs = vfs_of(pf, self._client.get(f"/nodes/{node}/hardware/pci", f"list the PCI devices of node {node}"))
        if not vfs:
            raise ValueError(f"names {pf}, which is not an SR-IOV physical function with virtual functions on node "
                             f"{node} (PVE lists none of its vendor named 'Virtual Function' on its bus)")
        used = used_addresses(configs())
        with self._lock:
            free = [vf for vf in vfs if vf not in used and (node, vf) not in self._handed_out]
            if not free:
                raise ValueError(f"has no free virtual function of {pci_address(pf)} on node {node} (all {len(vfs)} "
                                 "are passed through to VMs)")
            self._handed_out.add((node, free[0]))
            return free[0]
