"""Facts about one Proxmox VE cluster that placement and checks need: nodes, storages, bridges.

Read lazily, each in one call (``/cluster/resources?type=node``, ``?type=storage``, and one
``/nodes/{node}/network`` per online node, concurrently), and kept until ``refresh()``; the drivers refresh at
the start of every observe, so each plan sees the cluster as it is.

Placement: a VM that names no node goes to the online node with the most free memory (node memory minus
what is used, minus what the plan already placed there, or, for creates placed without a plan, what this
process placed during the run, so parallel creates spread out); ties go to the first node by name.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from virtplane.errors import ProviderError
from virtplane.providers.proxmox.client import PveClient

MIB = 1024 * 1024
_HOLDS = {"images": "VM disks", "rootdir": "container volumes"}
_OWNER = {"images": "Disk", "rootdir": "Container's rootfs or Mount"}


@dataclass(frozen=True)
class NodeFacts:
    name: str
    online: bool
    free_memory: int  # bytes


@dataclass(frozen=True)
class StorageFacts:
    name: str
    content: frozenset[str]
    nodes: frozenset[str]  # where it is enabled
    shared: bool

    @property
    def holds_disks(self) -> bool:
        return "images" in self.content


@dataclass(frozen=True)
class BridgeFacts:
    name: str
    vlan_aware: bool | None  # None: the node does not report bridge_vlan_aware for any bridge


class Cluster:
    def __init__(self, client: PveClient, default_storage: str | None = None):
        self._client = client
        self._default_storage = default_storage
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeFacts] | None = None
        self._storages: dict[str, StorageFacts] | None = None
        self._bridges: dict[str, dict[str, BridgeFacts]] = {}
        self._placed: dict[str, int] = {}

    def refresh(self) -> None:
        """Forget what was read; the next question reads the cluster again."""
        with self._lock:
            self._nodes, self._storages, self._bridges, self._placed = None, None, {}, {}

    # ---- nodes ---------------------------------------------------------------------------------------

    def nodes(self) -> dict[str, NodeFacts]:
        with self._lock:
            if self._nodes is None:
                rows = self._client.get("/cluster/resources", "list the cluster's nodes", {"type": "node"})
                self._nodes = {}
                for row in rows:
                    name = str(row.get("node") or "")
                    free = int(row.get("maxmem") or 0) - int(row.get("mem") or 0)
                    self._nodes[name] = NodeFacts(name, row.get("status") == "online", free)
            return self._nodes

    def online_nodes(self) -> list[str]:
        return sorted(name for name, facts in self.nodes().items() if facts.online)

    def node_problem(self, node: str) -> str | None:
        """Why a VM cannot be placed on ``node``; None when it can."""
        known = self.nodes()
        if node not in known:
            return f"node '{node}' is not in the cluster (choices: {', '.join(sorted(known))})"
        if not known[node].online:
            return f"node '{node}' is offline (online nodes: {', '.join(self.online_nodes()) or 'none'})"
        return None

    def place(self, memory_mib: int, storages: Collection[str] = (), placed: Mapping[str, int] | None = None,
              remember: bool = False, content: str = "images", among: Collection[str] | None = None) -> str:
        """The node for a new VM (a container: ``content`` ``rootdir``) with ``memory_mib`` that names none, among the
        online nodes (of ``among``, when given) that have every storage in ``storages``: the most free memory minus
        ``placed`` (MiB a plan already put on each node) and minus what earlier ``remember``-ed choices of this run
        took (creates placed without a plan)."""
        nodes = [facts for facts in self.nodes().values()
                 if facts.online and (among is None or facts.name in among)
                 and all(self.storage_problem(storage, facts.name, content) is None for storage in storages)]
        if not nodes:
            needs = f" with storage {', '.join(sorted(storages))}" if storages else ""
            raise ProviderError(f"Proxmox has no online node{needs} to place a VM on")
        placed = placed or {}
        with self._lock:
            def free(node: NodeFacts) -> int:
                return node.free_memory - self._placed.get(node.name, 0) - placed.get(node.name, 0) * MIB

            best = min(nodes, key=lambda n: (-free(n), n.name))
            if remember:
                self._placed[best.name] = self._placed.get(best.name, 0) + memory_mib * MIB
        return best.name

    # ---- storages ------------------------------------------------------------------------------------

    def storages(self) -> dict[str, StorageFacts]:
        with self._lock:
            if self._storages is None:
                rows = self._client.get("/cluster/resources", "list the cluster's storages", {"type": "storage"})
                content: dict[str, set[str]] = {}
                nodes: dict[str, set[str]] = {}
                shared: dict[str, bool] = {}
                for row in rows:  # one row per storage and node it is enabled on
                    name = str(row.get("storage"))
                    content.setdefault(name, set()).update(c for c in str(row.get("content") or "").split(",") if c)
                    nodes.setdefault(name, set()).add(str(row.get("node")))
                    shared[name] = bool(row.get("shared"))
                self._storages = {name: StorageFacts(name, frozenset(content[name]), frozenset(nodes[name]),
                                                     shared[name]) for name in content}
            return self._storages

    def disk_storages(self, node: str, content: str = "images") -> list[str]:
        """Storages on ``node`` that hold VM disks (content ``images``; containers' volumes: ``rootdir``)."""
        return sorted(s.name for s in self.storages().values() if content in s.content and node in s.nodes)

    def storage_problem(self, storage: str, node: str, content: str = "images") -> str | None:
        """Why disks (``content`` ``rootdir``: container volumes) cannot go on ``storage`` on ``node``; None when they
        can."""
        choices = ", ".join(self.disk_storages(node, content)) or "none"
        facts = self.storages().get(storage)
        if facts is None or node not in facts.nodes:
            return f"storage '{storage}' does not exist on node {node} (choices: {choices})"
        if content not in facts.content:
            return (f"storage '{storage}' does not hold {_HOLDS[content]} (its content is "
                    f"{','.join(sorted(facts.content))}; choices: {choices})")
        return None

    def default_storage(self, node: str, content: str = "images") -> str:
        """The endpoint's storage, or the only disk storage on ``node``; raises ProviderError otherwise."""
        problem, storage = self.default_storage_problem(node, content)
        if problem:
            raise ProviderError(problem)
        assert storage is not None
        return storage

    def default_storage_problem(self, node: str, content: str = "images") -> tuple[str | None, str | None]:
        if self._default_storage:
            problem = self.storage_problem(self._default_storage, node, content)
            return (f"the endpoint's {problem}" if problem else None), self._default_storage
        choices = self.disk_storages(node, content)
        if len(choices) == 1:
            return None, choices[0]
        if not choices:
            return f"node {node} has no storage that holds {_HOLDS[content]} (content '{content}')", None
        return (f"no storage is given and node {node} has several that hold {_HOLDS[content]} (choices: "
                f"{', '.join(choices)}): set storage= on the {_OWNER[content]} or the Endpoint (PROXMOX_VE_STORAGE)"
                ), None

    # ---- bridges -------------------------------------------------------------------------------------

    def bridges(self) -> dict[str, dict[str, BridgeFacts]]:
        """Online node -> its bridges; the nodes are read concurrently."""
        nodes = self.online_nodes()
        missing = [node for node in nodes if node not in self._bridges]
        if missing:
            with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
                read = dict(zip(missing, pool.map(self._read_bridges, missing), strict=True))
            with self._lock:
                self._bridges.update(read)
        return {node: self._bridges[node] for node in nodes}

    def _read_bridges(self, node: str) -> dict[str, BridgeFacts]:
        rows = self._client.get(f"/nodes/{node}/network", f"list the network interfaces of node {node}")
        bridges = [row for row in rows if row.get("type") in ("bridge", "OVSBridge")]
        reported = any("bridge_vlan_aware" in row for row in bridges)
        return {str(row["iface"]): BridgeFacts(str(row["iface"]),
                                               bool(row.get("bridge_vlan_aware")) if reported else None)
                for row in bridges}

    def bridge_problem(self, bridge: str, vlan: int) -> str | None:
        """Why NICs cannot use ``bridge`` with ``vlan`` on every online node; None when they can."""
        lacking, unaware = [], []
        for node, bridges in self.bridges().items():
            facts = bridges.get(bridge)
            if facts is None:
                lacking.append(node)
            elif vlan and facts.vlan_aware is False:
                unaware.append(node)
        if lacking:
            return f"bridge '{bridge}' does not exist on node(s) {', '.join(lacking)}"
        if unaware:
            return (f"bridge '{bridge}' is not VLAN-aware on node(s) {', '.join(unaware)}, so VLAN {vlan} cannot be "
                    "tagged on it (enable 'VLAN aware' on the bridge)")
        return None

    def bridge_names(self) -> list[str]:
        return sorted({name for bridges in self.bridges().values() for name in bridges})
