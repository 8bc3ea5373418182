"""Placement: which datacenter, cluster, datastore and networks an endpoint uses, read in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim

from virtplane.errors import VirtplaneError
from virtplane.providers.vsphere.collector import retrieve_types
from virtplane.providers.vsphere.settings import ENV, VsphereSettings

_WANTED: dict[type, list[str]] = {
    vim.Datacenter: ["name", "parent", "vmFolder", "hostFolder", "networkFolder", "datastoreFolder"],
    vim.Folder: ["name", "parent"],
    vim.ComputeResource: ["name", "parent", "resourcePool", "host"],
    vim.Datastore: ["name", "parent"],
    vim.Network: ["name", "parent"],
    vim.dvs.DistributedVirtualPortgroup: ["key", "config.distributedVirtualSwitch", "config.uplink"],
    vim.DistributedVirtualSwitch: ["name", "parent", "uuid"],
    vim.HostSystem: ["name", "parent"],
}


@dataclass(frozen=True)
class NetworkRef:
    """A network a NIC can attach to: a standard network, or a distributed port group."""

    name: str
    ref: Any
    portgroup_key: str | None = None
    switch_uuid: str | None = None

    @property
    def distributed(self) -> bool:
        return self.portgroup_key is not None


@dataclass(frozen=True)
class SwitchRef:
    name: str
    ref: Any
    uuid: str


@dataclass
class Placement:
    """Where this endpoint puts things, and name lookups inside its datacenter."""

    datacenter_name: str
    datacenter: Any
    vm_folder: Any
    network_folder: Any
    cluster_name: str
    cluster: Any
    resource_pool: Any
    hosts: list[Any]
    datastore_name: str
    datastore: Any
    datastores: dict[str, Any] = field(default_factory=dict)  # name -> moref
    datastore_names: dict[str, str] = field(default_factory=dict)  # moId -> name
    networks: dict[str, NetworkRef] = field(default_factory=dict)  # name -> ref
    portgroup_names: dict[str, str] = field(default_factory=dict)  # portgroup key -> name
    switches: list[SwitchRef] = field(default_factory=list)
    host_names: dict[str, str] = field(default_factory=dict)  # host moId -> name (whole datacenter)
    cluster_hosts: dict[str, Any] = field(default_factory=dict)  # name -> moref (the cluster's hosts)
    # Standalone hosts of the datacenter (each its own compute resource): name -> (moref, resource pool).
    standalone_hosts: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def knows_host(self, name: str) -> bool:
        """True for a host a VM can be placed on: one of the cluster's, or a standalone host."""
        return name in self.cluster_hosts or name in self.standalone_hosts


class Inventory:
    """Reads the inventory once per refresh and resolves the endpoint's placement from settings."""

    def __init__(self, si: Any, settings: VsphereSettings):
        self._si = si
        self._content = si.RetrieveContent()
        self._settings = settings
        self.placement = self._load()

    def refresh(self) -> Placement:
        self.placement = self._load()
        return self.placement

    def network(self, name: str) -> NetworkRef:
        """The network named ``name``; re-reads the inventory once on a miss (it may be new)."""
        found = self.placement.networks.get(name)
        if found is None:
            found = self.refresh().networks.get(name)
        if found is None:
            known = ", ".join(sorted(self.placement.networks)) or "none"
            raise VirtplaneError(f"network '{name}' does not exist in vSphere datacenter "
                                 f"{self.placement.datacenter_name} (known networks: {known})")
        return found

    def portgroup_name(self, key: str) -> str | None:
        """The name of the distributed port group with ``key``; re-reads once on a miss."""
        name = self.placement.portgroup_names.get(key)
        if name is None:
            name = self.refresh().portgroup_names.get(key)
        return name

    def datastore(self, name: str | None) -> Any:
        """The datastore moref for ``name`` (the endpoint's datastore when None)."""
        if name is None:
            return self.placement.datastore
        if name not in self.placement.datastores:
            self.refresh()
        if name not in self.placement.datastores:
            known = ", ".join(sorted(self.placement.datastores))
            raise VirtplaneError(f"datastore '{name}' does not exist in vSphere datacenter "
                                 f"{self.placement.datacenter_name} (choices: {known})")
        return self.placement.datastores[name]

    def host_and_pool(self, name: str | None) -> tuple[Any, Any]:
        """Where a VM for node ``name`` goes: (host moref, resource pool). No node: (None, the cluster's
        pool), so vSphere picks a host of the cluster. A standalone host brings its own pool. Re-reads the
        inventory once on a miss."""
        placement = self.placement
        if name is None:
            return None, placement.resource_pool
        if not placement.knows_host(name):
            placement = self.refresh()
        if name in placement.cluster_hosts:
            return placement.cluster_hosts[name], placement.resource_pool
        if name in placement.standalone_hosts:
            return placement.standalone_hosts[name]
        raise VirtplaneError(self.unknown_host(name))

    def unknown_host(self, name: str) -> str:
        placement = self.placement
        known = ", ".join(sorted([*placement.cluster_hosts, *placement.standalone_hosts])) or "none"
        where = f"cluster {placement.cluster_name}"
        if placement.standalone_hosts:
            where += f" nor a standalone host of datacenter {placement.datacenter_name}"
            return f"host '{name}' is neither in {where} (choices: {known})"
        return f"host '{name}' is not in {where} (choices: {known})"

    def _load(self) -> Placement:
        rows = retrieve_types(self._content, self._content.rootFolder, _WANTED)
        parents = {obj._moId: props.get("parent") for obj, props in rows}

        def datacenter_of(obj: Any) -> str | None:
            current, seen = obj, 0
            while current is not None and seen < 64:
                if isinstance(current, vim.Datacenter):
                    return current._moId
                current, seen = parents.get(current._moId), seen + 1
            return None

        datacenters = [(obj, props) for obj, props in rows if isinstance(obj, vim.Datacenter)]
        dc, dc_props = self._choose("datacenter", "datacenters", datacenters, self._settings.datacenter)
        dc_name = dc_props["name"]
        mine = [(obj, props) for obj, props in rows if datacenter_of(obj) == dc._moId]

        cluster, cluster_props = self._choose_cluster(mine, dc_name)
        stores = [(o, p) for o, p in mine if isinstance(o, vim.Datastore)]
        store, store_props = self._choose("datastore", "datastores", stores, self._settings.datastore,
                                          where=f" in datacenter {dc_name}")

        switches = [SwitchRef(p["name"], o, p.get("uuid", "")) for o, p in mine
                    if isinstance(o, vim.DistributedVirtualSwitch)]
        uuids = {s.ref._moId: s.uuid for s in switches}
        networks: dict[str, NetworkRef] = {}
        portgroup_names: dict[str, str] = {}
        for obj, props in mine:
            if isinstance(obj, vim.dvs.DistributedVirtualPortgroup):
                switch = props.get("config.distributedVirtualSwitch")
                key = props.get("key") or obj._moId
                portgroup_names[key] = props["name"]
                if props.get("config.uplink"):
                    continue
                networks[props["name"]] = NetworkRef(props["name"], obj, key,
                                                     uuids.get(switch._moId) if switch else None)
            elif isinstance(obj, vim.Network):
                networks.setdefault(props["name"], NetworkRef(props["name"], obj))
        host_names = {o._moId: p["name"] for o, p in mine if isinstance(o, vim.HostSystem) and "name" in p}
        hosts = list(cluster_props.get("host") or [])
        standalone = {host_names[h._moId]: (h, p.get("resourcePool")) for o, p in mine
                      if isinstance(o, vim.ComputeResource) and not isinstance(o, vim.ClusterComputeResource)
                      and o._moId != cluster._moId for h in p.get("host") or [] if h._moId in host_names}
        return Placement(
            datacenter_name=dc_name, datacenter=dc, vm_folder=dc_props["vmFolder"],
            network_folder=dc_props["networkFolder"], cluster_name=cluster_props["name"], cluster=cluster,
            resource_pool=cluster_props["resourcePool"], hosts=hosts,
            datastore_name=store_props["name"], datastore=store,
            datastores={p["name"]: o for o, p in stores},
            datastore_names={o._moId: p["name"] for o, p in stores},
            networks=networks, portgroup_names=portgroup_names, switches=switches, host_names=host_names,
            cluster_hosts={host_names[h._moId]: h for h in hosts if h._moId in host_names},
            standalone_hosts=standalone)

    def _choose_cluster(self, mine: list[tuple[Any, dict[str, Any]]], dc_name: str
                        ) -> tuple[Any, dict[str, Any]]:
        """The named cluster (or standalone host's compute resource); unnamed, the datacenter's only
        cluster, standalone hosts aside (each is a compute resource of its own, used when a VM names it as
        its node); with no cluster at all, the only standalone host."""
        resources = [(o, p) for o, p in mine if isinstance(o, vim.ComputeResource)]
        clusters = [(o, p) for o, p in resources if isinstance(o, vim.ClusterComputeResource)]
        where = f" in datacenter {dc_name}"
        if self._settings.cluster is None and clusters:
            return self._choose("cluster", "clusters", clusters, None, where=where)
        return self._choose("cluster", "clusters", resources, self._settings.cluster, where=where)

    def _choose(self, what: str, plural: str, candidates: list[tuple[Any, dict[str, Any]]],
                wanted: str | None, where: str = "") -> tuple[Any, dict[str, Any]]:
        names = sorted(props["name"] for _, props in candidates)
        endpoint = f"vsphere endpoint at {self._settings.server}"
        if wanted is not None:
            for obj, props in candidates:
                if props["name"] == wanted:
                    return obj, props
            raise VirtplaneError(f"{endpoint} has no {what} named '{wanted}'{where} "
                                 f"(choices: {', '.join(names) or 'none'})")
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise VirtplaneError(f"{endpoint} has no {what}{where}")
        raise VirtplaneError(f"{endpoint} has several {plural}{where} ({', '.join(names)}): set {what}= "
                             f"or {ENV[what]}")
