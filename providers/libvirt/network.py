"""The Network kind on libvirt: a libvirt network of its own per declared network (https://libvirt.org/formatnetwork.html).

A declared network becomes an isolated network (no ``<forward>``, no IP: libvirt makes a bridge, no dnsmasq), named
as declared, carrying our marker in its ``<metadata>`` with the declared VLAN id. On a Linux bridge a libvirt
network is one layer-2 segment of its own, which is what the VLAN gives the VMs on it: libvirt refuses VLAN tags
on Linux-bridge networks and on interfaces connected to them (only Open vSwitch and hostdev networks take
``<vlan>``), so the id is kept in the marker; an SR-IOV NIC on the network gets it as a real tag on its virtual
function. A create defines the network, starts it and marks it to start with the host; one of ours found not
running or not so marked (a create killed in between) is finished by the next apply. Delete destroys and undefines
only networks with our marker.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, cast

from virtplane.providers.base import Created, Declared, FieldChange, KindDriver, Observed, ObserveResult, Owner
from virtplane.providers.claims import guard, sort_observed
from virtplane.providers.libvirt import client, marker
from virtplane.providers.libvirt.settings import LibvirtSettings
from virtplane.specs import NetworkSpec, Spec


class NetworkDriver(KindDriver):
    """Thread safety: each call works on its own network over the thread-safe connection."""

    kind = "Network"

    def __init__(self, conn: Any, settings: LibvirtSettings) -> None:
        self._conn = conn
        self._settings = settings
        self._unfinished: set[str] = set()  # UUIDs of networks not running or not started with the host

    def _read(self) -> list[tuple[Any, ET.Element]]:
        networks = client.call("list the networks", self._conn.listAllNetworks, 0) or []
        lib = client.module()
        # A create defines, starts and marks a network to start with the host: one not running or not marked is an
        # interrupted create (or stopped behind our back), finished by the next apply. Two list calls say which.
        self._unfinished = {n.UUIDString() for flag in (lib.VIR_CONNECT_LIST_NETWORKS_INACTIVE,
                                                         lib.VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART)
                            for n in client.call("list the networks", self._conn.listAllNetworks, flag) or []}
        xmls = client.each(networks, lambda n: client.call(f"read network {n.name()}", n.XMLDesc, 0,
                                                           tolerate=[client.NO_NETWORK]))
        return [(n, ET.fromstring(x)) for n, x in zip(networks, xmls, strict=True) if x]

    def _observed(self, network: Any, root: ET.Element) -> Observed:
        found = marker.read(root)
        return Observed(network.name(), network, found.owner if found else None,
                        {"vlan": found.vlan or 0 if found else 0}, id=network.UUIDString(),
                        marker_complete=found is None or network.UUIDString() not in self._unfinished)

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        wanted = set(declared.get(self.kind, {}))
        candidates = [self._observed(n, root) for n, root in self._read()]
        return sort_observed(stack, wanted, candidates, f"libvirt endpoint '{self._settings.endpoint_name}'",
                             noun="network")

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        wanted = {i.lower(): i for i in ids}
        found = {}
        for network, root in self._read():
            if network.UUIDString().lower() in wanted:
                observed = self._observed(network, root)
                if observed.owner is not None and observed.owner.stack == stack:
                    observed.name = observed.owner.resource
                found[wanted[network.UUIDString().lower()]] = observed
        return found

    def create(self, owner: Owner, spec: Spec) -> Created:
        vlan = cast(NetworkSpec, spec).vlan
        root = ET.Element("network")
        ET.SubElement(root, "name").text = owner.resource
        marker.write(root, marker.Marker(owner, vlan=vlan))
        network = client.call(f"define network {owner.resource}", self._conn.networkDefineXML,
                              ET.tostring(root, encoding="unicode"))
        self._start(network, owner.resource)
        return Created(network.UUIDString(), {"vlan": vlan})

    def _start(self, network: Any, name: str) -> None:
        """Start the network (one running already is fine) and mark it to start with the host."""
        if not network.isActive():
            client.call(f"start network {name}", network.create, tolerate=[client.OPERATION_INVALID])
        if not network.autostart():
            client.call(f"mark network {name} to start with the host", network.setAutostart, 1)

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        guard(observed, "update", noun="network")
        network = observed.handle
        lib = client.module()
        root = ET.fromstring(network.XMLDesc(lib.VIR_NETWORK_XML_INACTIVE))
        found = marker.read(root) or marker.Marker(observed.owner)  # type: ignore[arg-type]
        found.vlan = cast(NetworkSpec, spec).vlan
        marker.write(root, found)
        client.call(f"define network {observed.name} again", self._conn.networkDefineXML,
                    ET.tostring(root, encoding="unicode"))
        if not observed.marker_complete:  # an interrupted create: start it as the create would have
            self._start(network, observed.name)

    def delete(self, observed: Observed) -> None:
        guard(observed, "delete", noun="network")
        network = observed.handle
        client.call(f"stop network {observed.name}", network.destroy, tolerate=[client.OPERATION_INVALID,
                                                                                client.NO_NETWORK])
        client.call(f"undefine network {observed.name}", network.undefine, tolerate=[client.NO_NETWORK])
