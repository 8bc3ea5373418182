"""The Network kind on vSphere: a distributed port group, or standard port groups on every host."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from pyVmomi import vim, vmodl

from virtplane.errors import OwnershipError, VirtplaneError
from virtplane.providers.base import (
    MARKER_KEY,
    Created,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    description_marker,
)
from virtplane.providers.marker import made_by_create, owner_from_description
from virtplane.providers.vsphere.claims import claim
from virtplane.providers.vsphere.collector import retrieve, retrieve_objects
from virtplane.providers.vsphere.faults import provider_error
from virtplane.providers.vsphere.inventory import Inventory, SwitchRef
from virtplane.providers.vsphere.names import unescaped
from virtplane.providers.vsphere.ownership import CustomAttributes
from virtplane.providers.vsphere.tasks import TaskFailed, wait_for_task
from virtplane.specs import NetworkSpec, Spec

_VMW = vim.dvs.VmwareDistributedVirtualSwitch
STANDARD_SWITCH = "vSwitch0"


@dataclass
class NetworkHandle:
    ref: Any  # the port group / network entity
    config_version: str | None = None
    description: str | None = None


class NetworkDriver(KindDriver):
    """Port groups on one endpoint.

    **Thread safety.** Concurrent calls work on their own port groups and tasks over pyVmomi's pooled
    connections; the custom attribute keys are cached under a lock and the inventory is replaced whole."""

    kind = "Network"

    def __init__(self, si: Any, inventory: Inventory):
        self._si = si
        self._content = si.RetrieveContent()
        self._inventory = inventory
        self._portgroup_attributes = CustomAttributes(si, vim.dvs.DistributedVirtualPortgroup)
        self._network_attributes = CustomAttributes(si, vim.Network)

    @property
    def _attributes(self) -> CustomAttributes:
        """Distributed port groups and standard networks carry attributes of their own type."""
        return self._portgroup_attributes if self._switch() is not None else self._network_attributes

    def _switch(self) -> SwitchRef | None:
        """The datacenter's distributed switch; None when it has none (standard port groups then)."""
        switches = self._inventory.placement.switches
        if len(switches) > 1:
            names = ", ".join(sorted(s.name for s in switches))
            raise VirtplaneError(f"vSphere datacenter {self._inventory.placement.datacenter_name} has several "
                                 f"distributed switches ({names}); virtplane needs exactly one or none")
        return switches[0] if switches else None

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        names = set(declared.get(self.kind, {}))
        result = ObserveResult()
        for observed in self._read_all():
            _sort(result, observed, stack, names)
        return result

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """Port groups by id (a distributed port group's key, a standard network's moref), in one pass."""
        wanted = set(ids)
        return {observed.id: observed for observed in self._read_all() if observed.id in wanted}

    def _read_all(self) -> list[Observed]:
        self._attributes.keys()
        if self._switch() is None:
            return self._read_standard()
        found = []
        rows = retrieve(self._content, self._inventory.placement.network_folder, vim.dvs.DistributedVirtualPortgroup,
                        ["name", "config.defaultPortConfig", "config.description", "config.configVersion",
                         "customValue", "key"])
        for ref, props in rows:
            # Our custom attribute makes a port group ours. The description line, written by AddDVPortgroup itself,
            # is trusted only on a port group bearing the name its create gave it and no attribute yet: an apply
            # killed between the two writes (providers/marker.py); a copy of the text elsewhere is never ours.
            owner = Owner.decode(self._attributes.parse(props.get("customValue")).get(MARKER_KEY))
            noted = owner_from_description(props.get("config.description"))
            complete = owner is not None or noted is None or not made_by_create(unescaped(props["name"]), noted)
            handle = NetworkHandle(ref, props.get("config.configVersion"), props.get("config.description"))
            found.append(Observed(unescaped(props["name"]), handle, owner if complete else noted,
                                  {"vlan": _vlan(props.get("config.defaultPortConfig"))},
                                  marker_complete=complete, id=props.get("key") or ref._moId))
        return found

    def _read_standard(self) -> list[Observed]:
        placement = self._inventory.placement
        vlans: dict[str, int] = {}
        for _, props in retrieve_objects(self._content, placement.hosts, vim.HostSystem,
                                         ["config.network.portgroup"]):
            for group in props.get("config.network.portgroup") or []:
                vlans.setdefault(group.spec.name, group.spec.vlanId or 0)
        found = []
        for ref, props in retrieve(self._content, placement.network_folder, vim.Network, ["name", "customValue"]):
            name = unescaped(props.get("name") or "")  # the managed entity's name is escaped, the host's is not
            if isinstance(ref, vim.dvs.DistributedVirtualPortgroup) or name not in vlans:
                continue
            owner = Owner.decode(self._attributes.parse(props.get("customValue")).get(MARKER_KEY))
            found.append(Observed(name, NetworkHandle(ref), owner, {"vlan": vlans[name]},
                                  id=ref._moId))
        return found

    # ---- writing -------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        """Create the port group; its id is the distributed port group's key, or the standard network's moref."""
        net_spec = cast(NetworkSpec, spec)
        name = owner.resource
        switch = self._switch()
        if switch is None:
            self._each_host(f"create port group {name}",
                            lambda system: system.AddPortGroup(portgrp=_host_portgroup(name, net_spec.vlan)))
        else:
            config = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                name=name, type="earlyBinding", numPorts=8, autoExpand=True,
                description=description_marker(owner), defaultPortConfig=_port_setting(net_spec.vlan))
            self._run(lambda: switch.ref.AddDVPortgroup_Task(spec=[config]), f"create port group {name}")
        network = self._inventory.network(name)  # re-reads the inventory: the new port group is in it
        self._attributes.write_owner(network.ref, owner)
        return Created(network.portgroup_key or network.ref._moId, {"vlan": net_spec.vlan})

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        _guard(observed, "update")
        net_spec = cast(NetworkSpec, spec)
        handle: NetworkHandle = observed.handle
        if any(change.path == "vlan" for change in changes):
            if self._switch() is None:
                self._each_host(f"change the VLAN of port group {observed.name}", lambda system: (
                    system.UpdatePortGroup(pgName=observed.name,
                                           portgrp=_host_portgroup(observed.name, net_spec.vlan))))
            else:
                config = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                    configVersion=handle.config_version, name=observed.name, type="earlyBinding",
                    description=handle.description, defaultPortConfig=_port_setting(net_spec.vlan))
                self._run(lambda: handle.ref.ReconfigureDVPortgroup_Task(spec=config),
                          f"change the VLAN of port group {observed.name}")
        if not observed.marker_complete and observed.owner is not None:
            self._attributes.write_owner(handle.ref, observed.owner)

    def delete(self, observed: Observed) -> None:
        _guard(observed, "delete")
        handle: NetworkHandle = observed.handle
        try:
            if isinstance(handle.ref, vim.dvs.DistributedVirtualPortgroup):
                self._run(handle.ref.Destroy_Task, f"delete port group {observed.name}")
            else:
                self._each_host(f"delete port group {observed.name}",
                                lambda system: system.RemovePortGroup(pgName=observed.name), missing_ok=True)
        except vmodl.fault.ManagedObjectNotFound:
            return
        except TaskFailed as failure:
            if not isinstance(failure.fault, vmodl.fault.ManagedObjectNotFound):
                raise
        self._inventory.refresh()

    # ---- helpers -------------------------------------------------------------------------------------

    def _each_host(self, what: str, call: Any, missing_ok: bool = False) -> None:
        systems = retrieve_objects(self._content, self._inventory.placement.hosts, vim.HostSystem,
                                   ["name", "configManager.networkSystem"])
        for _, props in systems:
            try:
                call(props["configManager.networkSystem"])
            except vim.fault.NotFound:
                if not missing_ok:
                    raise provider_error(f"{what} on host {props.get('name')}", "not found") from None
            except vmodl.MethodFault as fault:
                raise provider_error(f"{what} on host {props.get('name')}", fault) from None

    @staticmethod
    def _run(start: Any, what: str) -> Any:
        try:
            task = start()
        except vmodl.fault.ManagedObjectNotFound:
            raise
        except vmodl.MethodFault as fault:
            raise provider_error(what, fault) from None
        return wait_for_task(task, what=what)


def _sort(result: ObserveResult, observed: Observed, stack: str, names: Collection[str]) -> None:
    if observed.owner is not None and observed.owner.stack == stack:
        claim(result, observed.owner.resource, observed, "network")
    elif observed.name in names:
        result.foreign[observed.name] = observed


def _guard(observed: Observed, action: str) -> None:
    if observed.owner is None and observed.marker_complete:
        raise OwnershipError(f"refusing to {action} network {observed.name}: it carries no virtplane "
                             "ownership marker, so it was not created by virtplane")


def _vlan(setting: Any) -> int:
    vlan = getattr(setting, "vlan", None)
    if isinstance(vlan, _VMW.VlanIdSpec):
        return int(vlan.vlanId or 0)
    return 0


def _port_setting(vlan: int) -> Any:
    return _VMW.VmwarePortConfigPolicy(vlan=_VMW.VlanIdSpec(vlanId=vlan, inherited=False))


def _host_portgroup(name: str, vlan: int) -> Any:
    return vim.host.PortGroup.Specification(name=name, vlanId=vlan, vswitchName=STANDARD_SWITCH,
                                            policy=vim.host.NetworkPolicy())
