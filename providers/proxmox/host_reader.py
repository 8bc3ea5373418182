"""Reading every node's hardware in one batched pass, for ``ProxmoxProvider.hosts()`` (``host_facts`` maps it).

Requests, all over the client's pooled session and concurrent:

1. ``/cluster/resources`` (which nodes, online or not, and which VMs, running or stopped);
2. at once: ``/cluster/mapping/pci``, per online node ``/nodes/{node}/status``, ``/nodes/{node}/hardware/pci``,
   ``/nodes/{node}/capabilities/qemu/cpu-flags?accel=kvm`` and ``…/capabilities/qemu/machines``, and per VM
   ``/nodes/{node}/qemu/{vmid}/config`` (its ``hostpciN``: what it holds, device_use.py);
3. at once: ``/nodes/{node}/hardware/pci/{id}/mdev`` per device that can create mediated devices (GPUs).

So a fixed number of reads per node, one per VM and one per vGPU-capable GPU, however many devices the nodes hold:
PVE has no call that lists the devices VMs hold, and "in use" must never be guessed.

A refusal for lack of privileges (403), and any refusal of the CPU flags (older releases have no nested-virt
there), of the machine list, of the mappings (PVE < 8 has none), of a GPU's mdev types or of a VM's configuration,
leaves those facts unknown instead of failing the inventory; other errors are raised as one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from virtplane.inventory import Host
from virtplane.providers.proxmox import host_facts
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.device_use import GuestConfig, node_use, with_use
from virtplane.providers.proxmox.faults import PveError
from virtplane.providers.proxmox.host_facts import CPU_FLAGS, MACHINES, MAPPINGS, MDEV, PCI, STATUS, NodeAnswers
from virtplane.providers.proxmox.vm_reader import CONCURRENT_READS

NODE_READS = (STATUS, PCI, CPU_FLAGS, MACHINES)  # per online node


class HostReader:
    def __init__(self, client: PveClient, endpoint: str):
        self._client = client
        self._endpoint = endpoint

    def hosts(self) -> list[Host]:
        rows = self._client.get("/cluster/resources", "list the cluster's nodes and VMs")
        answers = {str(row["node"]): NodeAnswers(str(row["node"]), _online(row.get("status")))
                   for row in rows if row.get("type") == "node" and row.get("node")}
        vms = [row for row in rows if row.get("type") == "qemu" and "vmid" in row and row.get("node")]
        for node in answers.values():
            if not node.online:
                for path in NODE_READS:
                    node.missing[path] = f"node {node.name} is {'offline' if node.online is False else 'not online'}"
        reads: list[Callable[[], None]] = [partial(self._read_node, node, path)
                                           for node in answers.values() if node.online for path in NODE_READS]
        mappings: list[list[Mapping[str, Any]] | None] = [None]
        configs: list[Mapping[str, Any] | None] = [None] * len(vms)

        def read_mappings() -> None:
            mappings[0] = self._get(MAPPINGS, "list the cluster's PCI mappings", tolerate=True)[0]

        def read_config(index: int) -> None:
            vm = vms[index]
            configs[index] = self._get(f"/nodes/{vm['node']}/qemu/{vm['vmid']}/config",
                                       f"read the configuration of VM {vm.get('name') or vm['vmid']}",
                                       tolerate=True)[0]

        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(reads) + len(vms) + 1)) as pool:
            _run(pool, [read_mappings, *reads, *(partial(read_config, index) for index in range(len(vms)))])
            gpus: list[Callable[[], None]] = [partial(self._read_mdev, node, device) for node in answers.values()
                                              for device in host_facts.mdev_devices(node.pci or [])]
            _run(pool, gpus)
        if mappings[0] is None:
            for node in answers.values():
                node.missing[MAPPINGS] = f"{MAPPINGS} could not be read"
        guests = [GuestConfig(str(vm.get("name") or vm["vmid"]), str(vm["node"]), vm.get("status") == "running",
                              config) for vm, config in zip(vms, configs, strict=True)]
        return [with_use(host_facts.host(self._endpoint, answers[name], mappings[0]),
                         node_use(name, guests, mappings[0]), answers[name].pci)
                for name in sorted(answers)]

    def _read_node(self, node: NodeAnswers, path: str) -> None:
        where = path.format(node=node.name)
        if path == STATUS:
            node.status, why = self._get(where, f"read the status of node {node.name}")
        elif path == PCI:
            node.pci, why = self._get(where, f"list the PCI devices of node {node.name}")
        elif path == MACHINES:
            node.machines, why = self._get(where, f"list the QEMU machine versions of node {node.name}",
                                           tolerate=True)
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
