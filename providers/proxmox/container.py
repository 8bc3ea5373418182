"""The Container kind on Proxmox VE (LXC, ``/nodes/{node}/lxc``): observe in one batched pass, create from an OS
template (or clone), update and delete. Only API calls here: the mapping is lxc_config.py, the rules
container_rules.py, the plan-time checks container_check.py.

- Observe: the same ``GET /cluster/resources?type=vm`` listing as VMs (rows of type ``lxc``); the candidates are the
  containers tagged ``virtplane`` and those listed under a declared name (a container is listed by its hostname);
  their configurations are read concurrently from ``…/pending``. The ownership marker is the VM's: the tag plus a
  ``virtplane.owner:`` line in the description; a declared name held by a container without it is foreign.
- Create: ``POST /nodes/{node}/lxc`` with the template's volume id as ``ostemplate``, the hostname, the marker (tag
  and description), the whole configuration and the secrets (``password``, ``ssh-public-keys``), under a fresh
  VMID (guest_create.py: shared with VMs, so an interrupted create is found by its marker, never made twice). The
  template is looked up on the node (templates.py); placement picks among the nodes that have it.
- Clone: ``POST …/clone`` of the named container or template (full, or linked from a template; the hostname and the
  description go with it, the tag with the update that follows), then the declared fields as an update. A clone
  cannot change ``unprivileged``: declaring another value than the source's is refused before anything is made.
- Update: one ``PUT …/config`` (synchronous), volumes grown with ``PUT …/resize``, removed mount points' volumes
  destroyed (config_writer.py); power-off rules shut the container down first (``shutdown`` with ``forceStop``) and
  the declared power state is restored at the end, or, when a change fails, it is started again before the error is
  reported.
- Delete: stop, then ``DELETE`` with ``purge`` (out of backup, replication and HA jobs) and
  ``destroy-unreferenced-disks=0``: PVE destroys the volumes the container's configuration references (root
  filesystem, mount points, unused volumes) and nothing else. Never a container without our marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from virtplane.container_specs import CONTAINER_CREATE_ONLY, ContainerSpec
from virtplane.errors import OwnershipError, ProviderError
from virtplane.providers.base import (
    Created,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Rule,
    description_marker,
    owner_from_description,
)
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.config import NetworkNames, network_names
from virtplane.providers.proxmox.config_writer import ConfigWriter
from virtplane.providers.proxmox.container_check import ROOTDIR, container_problems
from virtplane.providers.proxmox.container_rules import REPLACEABLE, container_rule
from virtplane.providers.proxmox.guest_create import GuestCreator
from virtplane.providers.proxmox.guests import Guests, finish_clone
from virtplane.providers.proxmox.lxc_config import container_state, create_config, new_slot, reconfigure_container
from virtplane.providers.proxmox.ownership import has_marker_tag
from virtplane.providers.proxmox.reconfigure import NoFreeSlot
from virtplane.providers.proxmox.settings import ProxmoxSettings
from virtplane.providers.proxmox.templates import Templates
from virtplane.providers.proxmox.vm_check import find_sources
from virtplane.providers.proxmox.vm_power import Power
from virtplane.providers.proxmox.vm_reader import VmReader, VmRow
from virtplane.providers.proxmox.vmids import VmidAllocator
from virtplane.providers.vm_rules import top_field
from virtplane.slots import resolve_slots
from virtplane.specs import Spec

NOUN = "container"


@dataclass
class ContainerHandle:
    """The driver's reference to a live container: where it is, its configuration as read, and whether it is ours."""

    row: VmRow
    config: dict[str, Any]
    ours: bool


class ContainerDriver(KindDriver):
    """**Thread safety.** As the VM driver's: each call works on its own container and keeps its state in locals; the
    HTTP client pools connections, the VMID allocator (shared with the VM driver), the cluster facts and the template
    lists are guarded by locks; ``_names``, ``_declared`` and ``_rows`` are written only by ``observe``/``check``."""

    kind = "Container"
    replaceable = REPLACEABLE

    def __init__(self, client: PveClient, cluster: Cluster, settings: ProxmoxSettings, vmids: VmidAllocator):
        self._client = client
        self._cluster = cluster
        self._settings = settings
        self._reader = VmReader(client, "lxc", NOUN)
        self._power = Power(client, NOUN, {"forceStop": 1})
        self._vmids = vmids
        self._creator = GuestCreator(client, self._reader, vmids, settings)
        self._writer = ConfigWriter(client, NOUN, "PUT")
        self._templates = Templates(client, cluster)
        self._guests = Guests(client, self._reader, self._power, settings.endpoint_name)
        self._names = NetworkNames(settings.bridge, {})
        self._rows: list[VmRow] = []

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._cluster.refresh()
        self._templates.refresh()
        self._names = network_names(self._settings.bridge, declared)
        listed_as = _listed_names(declared.get(self.kind, {}))
        self._rows = self._reader.rows()
        self._vmids.note_taken(row.vmid for row in self._rows)
        candidates = [row for row in self._rows
                      if not row.template and (has_marker_tag(row.tags) or row.name in listed_as)]
        configs = self._reader.configs(candidates, set(listed_as))
        return self._guests.sort(stack, candidates, configs, listed_as, self._observed)

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """One listing and the configurations of the VMIDs asked for; a container whose marker names ``stack`` is ours
        (named by its resource), any other is read as it is, by its hostname."""
        self._names = network_names(self._settings.bridge, declared)
        wanted = {int(vmid) for vmid in ids if str(vmid).isdigit()}
        rows = [row for row in self._reader.rows(f"to read {NOUN}s by VMID") if row.vmid in wanted and not row.template]
        configs = self._reader.configs(rows, ())
        found: dict[str, Observed] = {}
        for row in rows:
            if (config := configs.get(row.vmid)) is None:
                continue
            owner = owner_from_description(config.get("description"))
            found[str(row.vmid)] = self._observed(row, config, owner, ours=owner is not None and owner.stack == stack)
        return found

    def _observed(self, row: VmRow, config: dict[str, Any], owner: Owner | None, ours: bool) -> Observed:
        name = owner.resource if ours and owner is not None else row.name
        state = container_state(config, row.node, row.running, self._names)
        complete = not ours or has_marker_tag(config.get("tags"))
        return Observed(name, ContainerHandle(row, config, ours), owner, state, marker_complete=complete,
                        id=str(row.vmid))

    # ---- placement and slots -------------------------------------------------------------------------

    def place(self, spec: Spec, placed: Mapping[str, int]) -> str | None:
        """The endpoint's ``node`` setting, else the online node with the most free memory minus ``placed`` among those
        that have the template and every storage the volumes name; None for a clone (its source's node)."""
        ct = cast(ContainerSpec, spec)
        if ct.clone_from:
            return None
        if self._settings.node:
            return self._settings.node
        try:
            return self._place(ct, placed, remember=False)
        except ProviderError:
            return None  # no node fits: check() names the field (the template, a storage, no node online)

    def _place(self, ct: ContainerSpec, placed: Mapping[str, int] | None, remember: bool) -> str:
        among = self._templates.nodes_with(ct.template, self._cluster.online_nodes()) if ct.template else None
        named = {storage for storage in [ct.rootfs.storage if ct.rootfs else None,
                                         *(mount.storage for mount in ct.mounts or [])] if storage}
        return self._cluster.place(ct.memory or 0, named, placed, remember=remember, content=ROOTDIR, among=among)

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        return new_slot(collection, item, taken)

    # ---- creating ------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        """Returns the VMID (as a string) and the new container read back, with its node."""
        ct = cast(ContainerSpec, spec)
        if ct.clone_from:  # its slots are resolved against the clone, once it exists
            row = self._clone(owner, ct)
        else:
            row = self._create(owner, resolve_slots(ct, None, self.new_slot).with_creation_defaults())
        state = container_state(self._reader.config(row), row.node, row.running, self._names)
        return Created(str(row.vmid), {**state, "node": row.node})

    def _create(self, owner: Owner, ct: ContainerSpec) -> VmRow:
        name = owner.resource
        node = ct.node or self._settings.node or self._place(ct, None, remember=True)
        assert ct.template is not None
        template, problem = self._templates.resolve(ct.template, node)
        if template is None:
            raise ProviderError(f"Proxmox cannot create container {name} on node {node}: {problem}")
        rootfs = (ct.rootfs.storage if ct.rootfs else None) or self._cluster.default_storage(node, ROOTDIR)
        mounts = [mount.storage or self._cluster.default_storage(node, ROOTDIR) for mount in ct.mounts or []]
        try:
            config = create_config(ct, rootfs, mounts, self._names)
        except ValueError as exc:
            raise ProviderError(f"Proxmox cannot create container {name}: its {exc}") from None
        hostname = ct.hostname or name
        config.update(ostemplate=template, hostname=hostname, description=description_marker(owner))
        if ct.password is not None:
            config["password"] = ct.password.get_secret_value()
        if ct.ssh_keys:
            config["ssh-public-keys"] = "\n".join(key.get_secret_value() for key in ct.ssh_keys)
        row = self._creator.allocate(owner, node, f"/nodes/{node}/lxc", "vmid", config,
                                     f"create {NOUN} {name} with VMID <vmid> on node {node}", listed_as=hostname)
        if ct.power == "on":
            self._power.start(row.path, name)
            row = replace(row, status="running")
        return row

    def _clone(self, owner: Owner, ct: ContainerSpec) -> VmRow:
        name, source_name = owner.resource, str(ct.clone_from)
        sources = find_sources(source_name, self._reader.rows(f"to find '{source_name}', the source of {NOUN} "
                                                                 f"{name}"))
        if len(sources) != 1:
            found = f"{len(sources)} containers" if sources else "no container or container template"
            raise ProviderError(f"{NOUN} {name} clones '{source_name}', but {found} of that name exist on Proxmox "
                                f"endpoint '{self._settings.endpoint_name}' (exactly one is needed)")
        source = sources[0]
        live = container_state(self._reader.config(source), source.node, source.running, self._names)
        if ct.unprivileged is not None and ct.unprivileged != live["unprivileged"]:
            kind = "unprivileged" if live["unprivileged"] else "privileged"
            raise ProviderError(f"{NOUN} {name} clones '{source_name}', which is {kind}, but declares "
                                f"unprivileged={ct.unprivileged}: a clone keeps its source's; clone another source "
                                "or make the container from a template")
        node = ct.node or source.node
        hostname = ct.hostname or name
        data: dict[str, Any] = {"hostname": hostname, "description": description_marker(owner),
                                "full": 0 if ct.linked_clone else 1}
        if node != source.node:
            data["target"] = node
        storage = (ct.rootfs.storage if ct.rootfs else None) or self._settings.storage
        if storage and not ct.linked_clone:
            data["storage"] = storage
        kind = "linked clone" if ct.linked_clone else "full clone"
        row = self._creator.allocate(owner, node, f"{source.path}/clone", "newid", data,
                                     f"make {NOUN} {name} with VMID <vmid> as a {kind} of {source_name} (VMID "
                                     f"{source.vmid})", listed_as=hostname)
        observed = self._observed(row, self._reader.config(row), owner, ours=True)
        observed.marker_complete = False  # the tag is written by the update below
        finish_clone(self, observed, ct, CONTAINER_CREATE_ONLY, f"{NOUN} {name} clones '{source_name}'")
        return self._reader.row_at(row.node, row.vmid, name) or row

    # ---- updating ------------------------------------------------------------------------------------

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        handle = self._guard(observed, "update")
        ct = cast(ContainerSpec, spec)
        name, row = observed.name, handle.row
        fields = {top_field(change.path) for change in changes}
        try:
            plan = reconfigure_container(ct, handle.config, changes, self._names,
                                         lambda mount: mount.storage or self._cluster.default_storage(row.node,
                                                                                                       ROOTDIR),
                                         finish_marker=not observed.marker_complete)
        except NoFreeSlot as exc:
            raise ProviderError(f"Proxmox cannot update {NOUN} {name}: {exc}") from None
        power_off = any(self.rule(change) is Rule.POWER_OFF for change in changes)
        with self._power.change(row.path, name, row.running, ct.power, power_off) as guest:
            if "node" in fields and ct.node and ct.node != row.node:
                guest.path = f"/nodes/{self._guests.migrate(row, ct.node, name)}/lxc/{row.vmid}"
            self._writer.apply(guest.path, name, plan)

    # ---- deleting ------------------------------------------------------------------------------------

    def delete(self, observed: Observed) -> None:
        handle = self._guard(observed, "delete")
        self._guests.delete(handle.row, observed.name, {"purge": 1, "destroy-unreferenced-disks": 0})

    # ---- rules and checks ----------------------------------------------------------------------------

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        ct = cast(ContainerSpec, spec)
        self._names = network_names(self._settings.bridge, declared)
        if ct.clone_from and not self._rows:
            self._rows = self._reader.rows()
        root = self._settings.api_token_id is None and self._settings.username == "root@pam"
        return container_problems(ct, self._names, self._cluster, self._templates, self._rows, self._settings.node,
                                  root)

    def rule(self, change: FieldChange) -> Rule:
        return container_rule(change)

    @staticmethod
    def _guard(observed: Observed, action: str) -> ContainerHandle:
        handle = observed.handle
        if not isinstance(handle, ContainerHandle) or not handle.ours:
            raise OwnershipError(f"refusing to {action} {NOUN} {observed.name}: it carries no virtplane ownership "
                                 "marker of this stack, so it was not created by it")
        return handle


def _listed_names(declared: Mapping[str, Spec]) -> dict[str, str]:
    """The name PVE lists each declared container by (its hostname, else its resource name) -> the resource."""
    listed = {}
    for resource, spec in declared.items():
        listed[getattr(spec, "hostname", None) or resource] = resource
    return listed
