"""The OS templates a node can make containers from: the ``vztmpl`` volumes on the storages it has that hold them.

Read lazily, one ``GET /nodes/{node}/storage/{storage}/content?content=vztmpl`` per template storage and node, and
kept until ``refresh()`` (the container driver refreshes at the start of every observe). A stack names a template
by its volume id (``local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst``) or by its file name alone, which must
then be on exactly one of the node's template storages.
"""

from __future__ import annotations

import threading

from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.cluster import Cluster

CONTENT = "vztmpl"


class Templates:
    def __init__(self, client: PveClient, cluster: Cluster):
        self._client = client
        self._cluster = cluster
        self._lock = threading.Lock()
        self._on: dict[str, list[str]] = {}

    def refresh(self) -> None:
        with self._lock:
            self._on = {}

    def on(self, node: str) -> list[str]:
        """The volume ids of every OS template ``node`` can use, sorted."""
        with self._lock:
            if node in self._on:
                return self._on[node]
        storages = sorted(s.name for s in self._cluster.storages().values()
                          if CONTENT in s.content and node in s.nodes)
        found: list[str] = []
        for storage in storages:
            rows = self._client.get(f"/nodes/{node}/storage/{storage}/content",
                                    f"list the container templates on storage {storage} of node {node}",
                                    {"content": CONTENT})
            found += [str(row["volid"]) for row in rows if row.get("content", CONTENT) == CONTENT and "volid" in row]
        with self._lock:
            self._on[node] = sorted(found)
        return self._on[node]

    def resolve(self, template: str, node: str) -> tuple[str | None, str | None]:
        """(the template's volume id on ``node``, None) or (None, why it cannot be used there)."""
        known = self.on(node)
        if ":" in template:
            matches = [template] if template in known else []
        else:
            matches = [volid for volid in known if volid.rsplit("/", 1)[-1] == template]
        if len(matches) == 1:
            return matches[0], None
        if matches:
            return None, (f"template '{template}' is on several storages of node {node} ({', '.join(matches)}); "
                          "name it by its volume id")
        listed = ", ".join(known) or f"none: upload one with `pveam download <storage> <template>` on {node}"
        return None, f"template '{template}' does not exist on node {node} (templates there: {listed})"

    def nodes_with(self, template: str, nodes: list[str]) -> list[str]:
        """Those of ``nodes`` where ``template`` resolves."""
        return [node for node in nodes if self.resolve(template, node)[0] is not None]
