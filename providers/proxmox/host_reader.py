"""Reading every node's hardware in one batched pass, for ``ProxmoxProvider.hosts()`` (``host_facts`` maps it).

Requests, all over the client's pooled session and concurrent:

1. ``/cluster/resources?type=node`` (which nodes, online or not);
2. at once: ``/cluster/mapping/pci``, and per online node ``/nodes/{node}/status``, ``/nodes/{node}/hardware/pci``
   and ``/nodes/{node}/capabilities/qemu/cpu-flags?accel=kvm``;
3. at once: ``/nodes/{node}/hardware/pci/{id}/mdev`` per device that can create mediated devices (GPUs).

So a fixed number of reads per node plus one per vGPU-capable GPU, however many devices the nodes hold.

A refusal for lack of privileges (403), and any refusal of the CPU flags (older releases have no nested-virt
there), of the mappings (PVE < 8 has none) or of a GPU's mdev types, leaves those facts unknown instead of failing
the inventory; other errors are raised as one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from virtplane.inventory import Host
from virtplane.providers.proxmox import host_facts
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.faults import PveError
from virtplane.providers.proxmox.host_facts import CPU_FLAGS, MAPPINGS, MDEV, PCI, STATUS, NodeAnswers
from virtplane.providers.proxmox.vm_reader import CONCURRENT_READS

NODE_READS = (STATUS, PCI, CPU_FLAGS)  # per online node


class HostReader:
    def __init__(self, client: PveClient, endpoint: str):
        self._client = client
        self._endpoint = endpoint

    def hosts(self) -> list[Host]:
        rows = self._client.get("/cluster/resources", "list the cluster's nodes", {"type": "node"})
        answers = {str(row["node"]): NodeAnswers(str(row["node"]), _online(row.get("status")))
                   for row in rows if row.get("node")}
        for node in answers.values():
            if not node.online:
                for path in NODE_READS:
                    node.missing[path] = f"node {node.name} is {'offline' if node.online is False else 'not online'}"
        reads: list[Callable[[], None]] = [partial(self._read_node, node, path)
                                           for node in answers.values() if node.online for path in NODE_READS]
        mappings: list[list[Mapping[str, Any]] | None] = [None]

        def read_mappings() -> None:
            mappings[0] = self._get(MAPPINGS, "list the cluster's PCI mappings", tolerate=True)[0]

        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(reads) + 1)) as pool:
            _run(pool, [read_mappings, *reads])
            gpus: list[Callable[[], None]] = [partial(self._read_mdev, node, device) for node in answers.values()
                                              for device in host_facts.mdev_devices(node.pci or [])]
            _run(pool, gpus)
        if mappings[0] is None:
            for node in answers.values():
                node.missing[MAPPINGS] = f"{MAPPINGS} could not be read"
        return [host_facts.host(self._endpoint, answers[name], mappings[0]) for name in sorted(answers)]

    def _read_node(self, node: NodeAnswers, path: str) -> None:
        where = path.format(node=node.name)
        if path == STATUS:
            node.status, why = self._get(where, f"read the status of node {node.name}")
        elif path == PCI:
            node.pci, why = self._get(where, f"list the PCI devices of node {node.name}")
        else:
            node.cpu_flags, why = self._get(where, f"read the CPU flags QEMU offers on node {node.name}",
                                            {"accel": "kvm"}, tolerate=True)
        if why:
            node.missing[path] = why

    def _read_mdev(self, node: NodeAnswers, device: str) -> None:
        node.mdev[device], why = self._get(MDEV.format(node=node.name, id=device),
                                           f"list the mediated device types of PCI device {device} on node "
                                           f"{node.name}", tolerate=True)
        if why:
            node.missing[MDEV] = why

    def _get(self, path: str, what: str, params: Mapping[str, Any] | None = None,
             tolerate: bool = False) -> tuple[Any, str | None]:
        """(answer, None), or (None, why) when PVE refused and the refusal is tolerated."""
        try:
            return self._client.get(path, what, params), None
        except PveError as refused:
            if tolerate or refused.status == 403:
                return None, f"{path} was refused: {refused.pve_text}"
            raise


def _online(status: Any) -> bool | None:
    return True if status == "online" else False if status == "offline" else None


def _run(pool: ThreadPoolExecutor, calls: list[Callable[[], None]]) -> None:
    """Run the calls concurrently and wait for them; the first error (in the order given) is raised."""
    for future in [pool.submit(call) for call in calls]:
        future.result()
