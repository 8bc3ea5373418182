"""The VirtualMachine kind on libvirt: domains, their volumes and host devices.

- Observe: one ``listAllDomains`` and one ``getAllDomainStats`` (every domain's state), then the XML of every domain
  (a few calls in flight at once) to find our marker; the volume sizes of our domains' disks. A domain's live XML
  is read (a running domain's devices as they are, not as its next start would have them).
- Create: the domain is defined first, carrying our marker with ``complete='no'``; then its volumes are made (or
  cloned: ``createXMLFrom``, or a qcow2 overlay backed by the source volume for ``linked_clone``); then the marker
  is completed and the domain started. A domain found incomplete is finished by the next apply (the volumes it
  refers to that are missing are made), so a killed apply leaves neither a duplicate nor a volume no domain of
  ours refers to. A create that finds a domain of its name carrying its own marker adopts it.
- Update: the persistent XML is rewritten field by field and defined again under the same UUID (never undefined:
  NVRAM and TPM state stay). On a running domain, disks and NICs are hot-plugged (live and config) where QEMU can
  (the domain gets spare PCIe root ports at creation), disks grown with ``blockResize``, tags and guest OS set in
  the live metadata; what needs the domain off follows the shared power protocol (providers/power.py): ACPI
  shutdown, destroyed after ``shutdown_timeout``, started again when the change fails; a domain shut down that is
  to run again is recorded so in our metadata first (marker.py), so the next plan starts it should the run be killed.
- Delete: destroy, delete the volumes virtplane made for the domain (named after it and its UUID), undefine with
  its NVRAM, TPM state and snapshot metadata; never a domain without our marker.
"""

from __future__ import annotations

import threading
import uuid as uuids
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from virtplane.clones import after_clone, clone_disk_problems
from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError
from virtplane.providers.base import (
    Created,
    Declared,
    FieldChange,
    GuestState,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    RefusedChange,
    Rule,
    Volumes,
)
from virtplane.providers.claims import guard, sort_observed
from virtplane.providers.libvirt import cidata, client, devices, domain_xml, marker, rewrite, seed
from virtplane.providers.libvirt.devices import DeviceWriter, NetworkNames, Volume
from virtplane.providers.libvirt.domain_xml import DomainFacts, parse, to_xml
from virtplane.providers.libvirt.guest_state import read_states
from virtplane.providers.libvirt.host import HostReader
from virtplane.providers.libvirt.settings import LibvirtSettings
from virtplane.providers.libvirt.vm_check import vm_problems
from virtplane.providers.power import change_with_power
from virtplane.providers.vm_rules import VmRules, top_field
from virtplane.slots import resolve_vm
from virtplane.specs import CREATE_ONLY, CloudInitSpec, DiskSpec, NetworkSpec, Spec, VirtualMachineSpec

GiB = 1024**3
_RULES = VmRules(hypervisor="libvirt",
                 power_off=frozenset({"cpus", "sockets", "memory", "machine", "firmware", "secure_boot",
                                      "nested_virtualization"}))


@dataclass
class DomainHandle:
    uuid: str
    libvirt_name: str
    root: ET.Element  # the XML as read (live when running)
    running: bool


class DomainSwitch:
    """One domain's power, for the shared protocol."""

    def __init__(self, domain: Any, name: str) -> None:
        self.domain = domain
        self.name = name

    def start(self) -> None:
        """Start the domain; one running already is fine, any other refusal (a network not running) is an error."""
        try:
            self.domain.create()
        except Exception as error:
            if client.code(error) != client.OPERATION_INVALID or not self.domain.isActive():
                raise ProviderError(f"libvirt could not start VM {self.name}: {client.message(error)}") from None

    def request_shutdown(self) -> bool:
        try:
            self.domain.shutdown()
        except Exception as error:
            if not client.is_libvirt_error(error):
                raise
            return not self.domain.isActive()
        return True

    def is_off(self) -> bool:
        return not self.domain.isActive()

    def force_off(self) -> None:
        client.call(f"destroy (power off) VM {self.name}", self.domain.destroy, tolerate=[client.OPERATION_INVALID])


class VirtualMachineDriver(KindDriver):
    """Thread safety: create, update and delete of different domains run at once; each works on its own domain
    and its own volumes; the connection is thread-safe; the host reader's caches and device claims are locked;
    ``_declared`` and ``_networks`` are written by observe and check only, before apply."""

    kind = "VirtualMachine"
    replaceable = _RULES.replaceable
    delivers = frozenset({"cloud_init"})  # a NoCloud seed volume on a CD-ROM: providers/libvirt/cidata.py

    def __init__(self, conn: Any, host: HostReader, settings: LibvirtSettings) -> None:
        self._conn = conn
        self._host = host
        self._settings = settings
        self._declared: Mapping[str, Spec] = {}
        self._networks = NetworkNames()
        self._lock = threading.Lock()
        self._hotplug = not host.test_driver  # the test driver cannot attach or detach devices (libvirt 9)
        self.shutdown_seconds = settings.shutdown_timeout  # what the plan says a clean shutdown gets

    @property
    def where(self) -> str:
        return f"libvirt endpoint '{self._settings.endpoint_name}'"

    # ---- reading -------------------------------------------------------------------------------------

    def _learn(self, declared: Declared) -> None:
        self._declared = declared.get(self.kind, {})
        vlans = {name: cast(NetworkSpec, spec).vlan for name, spec in declared.get("Network", {}).items()}
        self._networks = NetworkNames(vlans)

    def _all_domains(self) -> list[tuple[Any, ET.Element, bool]]:
        """Every domain with its XML and whether it runs: one list call, one stats call, the XMLs a few at once."""
        domains = client.call("list the domains", self._conn.listAllDomains, 0) or []
        lib = client.module()
        stats = client.call("read the domains' states", self._conn.getAllDomainStats,
                            lib.VIR_DOMAIN_STATS_STATE, 0, tolerate=[client.NO_SUPPORT])
        states = {d.UUIDString(): s.get("state.state") for d, s in stats or []}
        xmls = client.each(domains, lambda d: client.call(f"read the XML of domain {d.name()}", d.XMLDesc, 0,
                                                          tolerate=[client.NO_DOMAIN]))
        found = []
        for domain, xml in zip(domains, xmls, strict=True):
            if xml is None:
                continue  # undefined meanwhile
            state = states.get(domain.UUIDString())
            if state is None:
                state = domain.state()[0]
            found.append((domain, parse(xml), state in domain_xml.RUNNING_STATES))
        return found

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._learn(declared)
        self._host.refresh()
        wanted = set(self._declared)
        rows = []
        for domain, root, running in self._all_domains():
            found = marker.read(root)
            ours = found is not None and found.owner.stack == stack
            if ours or domain.name() in wanted:
                rows.append((domain, root, running, found))
        return sort_observed(stack, wanted, self._observed_all(rows), self.where)

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        self._learn(declared)
        wanted = {i.lower(): i for i in ids}
        rows = [(d, root, running, marker.read(root)) for d, root, running in self._all_domains()
                if d.UUIDString().lower() in wanted]
        found = {}
        for observed in self._observed_all(rows):
            if observed.owner is not None and observed.owner.stack == stack:
                observed.name = observed.owner.resource
            found[wanted[str(observed.id).lower()]] = observed
        return found

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every domain by UUID, in observe's reads (``virtplane import``)."""
        self._learn(declared)
        rows = [(d, root, running, marker.read(root)) for d, root, running in self._all_domains()]
        return {str(observed.id): observed for observed in self._observed_all(rows)}

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """The marker in the domain's metadata, where a create writes it (its tags with it); nothing else changes."""
        if observed.owner is not None:
            raise OwnershipError(f"refusing to adopt VM {observed.name}: it already carries a virtplane ownership "
                                 "marker")
        domain = client.call(f"find VM {observed.name}", self._conn.lookupByUUIDString, str(observed.id))
        self._set_marker(domain, observed.name, marker.Marker(owner, tags=list(observed.state.get("tags") or [])))

    def _observed_all(self, rows: list[tuple[Any, ET.Element, bool, marker.Marker | None]]) -> list[Observed]:
        volumes = self._volumes([root for _, root, _, _ in rows])
        holds = any(devices.hostdev_addresses(r) or devices.mdev_uuids(r) for _, r, _, _ in rows)
        pci = self._host.pci_view() if holds else devices.PciView()  # node devices read only when needed
        node = self._host.name
        observed = []
        for domain, root, running, found in rows:
            declared = self._declared.get(found.owner.resource if found else domain.name())
            facts = DomainFacts(running, node, volumes, self._networks, pci)
            state = domain_xml.vm_state(root, facts, declared if isinstance(declared, VirtualMachineSpec) else None)
            state["cloud_init"] = cidata.digest(root, domain.name(), domain.UUIDString())
            handle = DomainHandle(domain.UUIDString(), domain.name(), root, running)
            observed.append(Observed(domain.name(), handle, found.owner if found else None, state,
                                     marker_complete=found.complete if found else True, id=domain.UUIDString(),
                                     restore_power=found.restore if found else None))
        return observed

    def _volumes(self, roots: list[ET.Element]) -> dict[tuple[str, str], Volume]:
        """Capacity and allocation of every volume these domains' disks name, a few calls at once."""
        wanted = sorted({(source.get("pool") or "", source.get("volume") or "")
                         for root in roots for source in root.findall("devices/disk/source")
                         if source.get("pool") and source.get("volume")})
        pools: dict[str, Any] = {}
        for pool_name in {pool for pool, _ in wanted}:
            pools[pool_name] = client.call(f"find storage pool {pool_name}", self._conn.storagePoolLookupByName,
                                           pool_name, tolerate=[client.NO_STORAGE_POOL])

        def info(key: tuple[str, str]) -> Volume | None:
            pool = pools.get(key[0])
            if pool is None:
                return None
            volume = client.call(f"find volume {key[1]}", pool.storageVolLookupByName, key[1],
                                 tolerate=[client.NO_STORAGE_VOL])
            if volume is None:
                return None
            _type, capacity, allocation = volume.info()
            return Volume(capacity, allocation)

        return {key: value for key, value in zip(wanted, client.each(wanted, info), strict=True) if value}

    def _read_one(self, domain: Any, owner: Owner) -> Observed:
        root = parse(str(client.call(f"read VM {owner.resource}", domain.XMLDesc, 0)))
        running = bool(domain.isActive())
        [observed] = self._observed_all([(domain, root, running, marker.read(root))])
        observed.name = owner.resource
        return observed

    # ---- slots, placement, rules, checks -------------------------------------------------------------

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        return devices.new_slot(collection, item, taken)

    def place(self, spec: Spec, placed: Mapping[str, int]) -> str | None:
        return self._host.name  # one host per endpoint

    def rule(self, change: FieldChange) -> Rule:
        field = top_field(change.path)
        if field == "node":
            raise RefusedChange(f"a libvirt endpoint is one host ({self._host.name}); VMs do not move between "
                                "endpoints")
        if field == "cloud_init" and change.old is None:
            return Rule.POWER_OFF  # a first delivery adds a SATA CD-ROM drive, which QEMU cannot hot-plug
        rule = _RULES(change)
        if rule is Rule.IN_PLACE and field in ("disks", "nics", "cloud_init") and not self._hotplug:
            return Rule.POWER_OFF  # the test driver cannot hot-plug: the domain is redefined and restarted
        return rule

    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        """The QEMU guest agent's users and address of each running domain (guest_state.py)."""
        domains = [(live.name, client.call(f"find VM {live.name}", self._conn.lookupByUUIDString, live.handle.uuid,
                                           tolerate=[client.NO_DOMAIN]), live.handle.running)
                   for live in observed if isinstance(live.handle, DomainHandle)]
        return read_states([(name, domain, running) for name, domain, running in domains if domain is not None])

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        self._learn(declared)
        return vm_problems(cast(VirtualMachineSpec, spec), declared, self._conn, self._host, self._settings)

    # ---- creating ------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        vm_spec = cast(VirtualMachineSpec, spec)
        name = owner.resource
        existing = client.call(f"look for VM {name}", self._conn.lookupByName, name, tolerate=[client.NO_DOMAIN])
        if existing is not None:
            observed = self._adopt(existing, owner)
            self.update(observed, vm_spec, diff(vm_spec.model_dump(), observed.state, CREATE_ONLY[self.kind]))
        elif vm_spec.clone_from:
            self._clone(owner, vm_spec)
        else:
            self._define_new(owner, vm_spec)
        domain = self._conn.lookupByName(name)
        observed = self._read_one(domain, owner)
        return Created(domain.UUIDString(), dict(observed.state))

    def _adopt(self, domain: Any, owner: Owner) -> Observed:
        """A domain of this name exists: ours (an earlier create of this resource whose answer was lost) is taken
        over; anyone else's is refused."""
        root = parse(domain.XMLDesc(0))
        found = marker.read(root)
        if found is None or found.owner != owner:
            raise OwnershipError(f"VM {owner.resource}: a domain of that name exists on {self.where} and is not "
                                 "this resource's (no matching virtplane.owner marker); rename the resource or "
                                 "remove that domain by hand")
        return self._read_one(domain, owner)

    def _writer(self, name: str, uuid: str, spec: VirtualMachineSpec) -> DeviceWriter:
        """Device choices made now: a free VF of each SR-IOV NIC's PF, the GPU each vGPU is made on (its mdev
        created where libvirt can)."""
        writer = DeviceWriter(name, uuid, self._settings.storage_pool, self._networks)
        for nic in spec.nics or []:
            if nic.adapter == "sriov" and nic.slot:
                if not nic.device:
                    raise ProviderError(f"VM {name}: field 'nics': an SR-IOV NIC needs the PF's address in device")
                writer.vfs[nic.slot] = self._host.claim_vf(nic.device, name)
        for index, gpu in enumerate(spec.gpus or []):
            if gpu.mode == "vgpu":
                parent = self._host.claim_mdev(gpu.profile or "", gpu.device, name)
                mdev = str(uuids.uuid4())
                self._make_mdev(name, parent, gpu.profile or "", mdev)
                writer.gpu_sources[index] = {"uuid": mdev, "profile": gpu.profile or "", "parent": parent}
            else:
                writer.gpu_sources[index] = {"address": gpu.device or ""}
        return writer

    def _make_mdev(self, vm: str, parent: str, profile: str, mdev: str) -> None:
        """Create the mediated device (``nodeDeviceCreateXML``). The test driver makes only vHBAs: there the domain
        refers to the mdev by UUID alone (documented in docs/providers/libvirt.md)."""
        if self._host.test_driver:
            return
        parent_name = "pci_" + parent.replace(":", "_").replace(".", "_")
        xml = (f"<device><parent>{parent_name}</parent><capability type='mdev'><type id='{profile}'/>"
               f"<uuid>{mdev}</uuid></capability></device>")
        client.call(f"create a vGPU of type {profile} on {parent} for VM {vm}", self._conn.nodeDeviceCreateXML, xml, 0)

    def _define_new(self, owner: Owner, spec: VirtualMachineSpec) -> None:
        name, uuid = owner.resource, str(uuids.uuid4())
        writer = self._writer(name, uuid, spec)
        root = domain_xml.new_domain(name, uuid, owner, spec, self._host.target(), writer)
        if spec.cloud_init is not None:
            volume = cidata.volume_name(name, uuid, spec.cloud_init.digest)
            root.find("devices").append(cidata.new_drive(root, self._settings.storage_pool, volume))  # type: ignore[union-attr]
        domain = client.call(f"define VM {name}", self._conn.defineXML, to_xml(root))
        self._finish(domain, name, root, seed_spec=spec.cloud_init)
        if spec.power == "on":
            DomainSwitch(domain, name).start()

    def _finish(self, domain: Any, name: str, root: ET.Element, sources: Mapping[str, Any] | None = None,
                linked: bool = False, seed_spec: CloudInitSpec | None = None) -> None:
        """Make every volume an incomplete domain's XML names that is missing (an interrupted create's: the marker
        holds their sizes) and write its cloud-init seed volume (``seed_spec``'s documents, when the domain's CD-ROM
        names them), then complete the marker. ``sources``: slot -> source volume to clone from."""
        found = marker.read(root)
        if found is None or found.complete:
            return
        uuid = root.findtext("uuid") or ""
        self._write_seed(name, root, uuid, seed_spec)
        for disk in root.findall("devices/disk"):
            source, target = disk.find("source"), disk.find("target")
            if source is None or target is None or not source.get("volume") or not source.get("pool"):
                continue
            slot, volume = target.get("dev") or "", source.get("volume") or ""
            if devices.made_by_us(volume, name, uuid):
                self._make_volume(name, source.get("pool") or "", volume, found.sizes.get(slot, 0),
                                  (sources or {}).get(slot), linked)
        found.complete = True
        self._set_marker(domain, name, found)

    def _make_volume(self, vm: str, pool_name: str, volume: str, size_gib: int, source: Any, linked: bool) -> None:
        """A thin qcow2 volume, or a raw one allocated in full (its name says which: devices.volume_name)."""
        pool = client.call(f"find storage pool {pool_name} for VM {vm}", self._conn.storagePoolLookupByName,
                           pool_name)
        if client.call(f"look for volume {volume}", pool.storageVolLookupByName, volume,
                       tolerate=[client.NO_STORAGE_VOL]) is not None:
            return  # made by the interrupted create this finishes (its name holds the domain's UUID)
        xml = ET.Element("volume")
        ET.SubElement(xml, "name").text = volume
        capacity = size_gib * GiB
        if source is not None:
            _kind, source_capacity, _allocation = source.info()
            capacity = max(capacity, source_capacity)
        ET.SubElement(xml, "capacity", {"unit": "bytes"}).text = str(capacity)
        thick = devices.is_raw(volume)
        ET.SubElement(xml, "allocation", {"unit": "bytes"}).text = str(capacity if thick else 0)
        ET.SubElement(ET.SubElement(xml, "target"), "format", {"type": "raw" if thick else "qcow2"})
        what = f"make volume {volume} in pool {pool_name} for VM {vm}"
        if source is None:
            client.call(what, pool.createXML, ET.tostring(xml, encoding="unicode"), 0)
        elif linked:
            source_format = ET.fromstring(source.XMLDesc(0)).find("target/format")
            backing = ET.SubElement(xml, "backingStore")
            ET.SubElement(backing, "path").text = source.path()
            ET.SubElement(backing, "format", {"type": source_format.get("type", "qcow2") if source_format is not None
                                              else "qcow2"})
            client.call(what, pool.createXML, ET.tostring(xml, encoding="unicode"), 0)
        else:
            client.call(what, pool.createXMLFrom, ET.tostring(xml, encoding="unicode"), source, 0)

    def _set_marker(self, domain: Any, name: str, found: marker.Marker) -> None:
        lib = client.module()
        flags = lib.VIR_DOMAIN_AFFECT_CONFIG | (lib.VIR_DOMAIN_AFFECT_LIVE if domain.isActive() else 0)
        client.call(f"write the ownership marker of VM {name}", domain.setMetadata, lib.VIR_DOMAIN_METADATA_ELEMENT,
                    found.xml(), marker.PREFIX, marker.NS, flags)

    def _clone(self, owner: Owner, spec: VirtualMachineSpec) -> None:
        """Copy the source domain's definition (new name, UUID, MACs; no NVRAM path, no marker of its own), clone
        its volumes, then apply the declared fields as an update (unset ones keep the source's values)."""
        name, uuid = owner.resource, str(uuids.uuid4())
        source_name = spec.clone_from or ""
        source = client.call(f"find the domain {source_name} that VM {name} clones", self._conn.lookupByName,
                             source_name, tolerate=[client.NO_DOMAIN])
        if source is None:
            raise ProviderError(f"VM {name} clones '{source_name}', but no domain of that name exists on {self.where}")
        lib = client.module()
        root = parse(source.XMLDesc(lib.VIR_DOMAIN_XML_INACTIVE))
        thick = frozenset() if spec.linked_clone else frozenset(
            disk["slot"] for disk in self._template_disks(source) if disk.get("thin") is False)
        sources = rewrite.as_clone(root, name, uuid, owner, spec.tags, thick)
        volumes = {}
        for slot, (pool_name, volume_name) in sources.items():
            pool = self._conn.storagePoolLookupByName(pool_name)
            volumes[slot] = client.call(f"find volume {volume_name} of {source_name}", pool.storageVolLookupByName,
                                        volume_name)
        domain = client.call(f"define VM {name} as a clone of {source_name}", self._conn.defineXML, to_xml(root))
        self._finish(domain, name, root, volumes, spec.linked_clone)
        observed = self._read_one(domain, owner)
        resolved = resolve_vm(spec, observed.state, self.new_slot)
        changes = after_clone(self.rule, resolved.model_dump(), observed.state, CREATE_ONLY[self.kind],
                              f"VM {name} clones '{source_name}'", lambda: self.delete(observed))
        self.update(observed, resolved, changes)

    def _template_disks(self, source: Any) -> list[dict[str, Any]]:
        """The disks of the domain a clone copies, as its state has them (slot, size, pool, thinness)."""
        root = parse(str(client.call(f"read the domain {source.name()}", source.XMLDesc, 0)))
        [observed] = self._observed_all([(source, root, bool(source.isActive()), marker.read(root))])
        return list(observed.state.get("disks") or [])

    def creation_problems(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """A clone's disks: a full clone copies each volume (``createXMLFrom``) in the source volume's pool, thin
        (qcow2) from a thin one, raw allocated in full from a thick one (libvirt's copy to raw from qcow2 is sparse,
        so thinness cannot be chosen); a linked clone's disks are qcow2 overlays, thin. Their bus, pool, thinness or
        a smaller size cannot differ (virtplane/clones.py)."""
        vm_spec = cast(VirtualMachineSpec, spec)
        if not vm_spec.clone_from or not vm_spec.disks:
            return []
        source = client.call(f"look for the domain {vm_spec.clone_from}", self._conn.lookupByName,
                             vm_spec.clone_from, tolerate=[client.NO_DOMAIN])
        if source is None:
            return []  # check() names the missing source
        theirs = self._template_disks(source)
        if not vm_spec.linked_clone:
            return clone_disk_problems(vm_spec, vm_spec.clone_from, theirs, frozenset(), self.new_slot, "libvirt")
        overlays = [{**disk, "thin": True} for disk in theirs]  # what a linked clone's disks are
        return clone_disk_problems(vm_spec, vm_spec.clone_from, overlays, frozenset(), self.new_slot,
                                   "libvirt linked")

    # ---- updating ------------------------------------------------------------------------------------

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        guard(observed, "update")
        handle = cast(DomainHandle, observed.handle)
        vm_spec = cast(VirtualMachineSpec, spec)
        name = observed.name
        domain = client.call(f"find VM {name}", self._conn.lookupByUUIDString, handle.uuid)
        lib = client.module()
        if not observed.marker_complete:  # an interrupted create: make what it did not
            self._finish(domain, name, parse(domain.XMLDesc(lib.VIR_DOMAIN_XML_INACTIVE)), seed_spec=vm_spec.cloud_init)
        if not changes:
            if vm_spec.power == "on" and not domain.isActive():
                DomainSwitch(domain, name).start()
            if observed.restore_power is not None:
                self._record_power(domain, name, None)
            return
        needs_off = any(self.rule(change) is Rule.POWER_OFF for change in changes)
        running = bool(domain.isActive())
        switch = DomainSwitch(domain, name)

        def apply() -> None:
            self._apply(domain, name, observed, vm_spec, changes, live=bool(domain.isActive()))

        change_with_power(switch, running=running, wanted=vm_spec.power, needs_off=needs_off, change=apply,
                          timeout=self._settings.shutdown_timeout,
                          record=lambda power: self._record_power(domain, name, power),
                          recorded=observed.restore_power is not None)

    def _record_power(self, domain: Any, name: str, power: str | None) -> None:
        """Keep (or, with None, clear) the power state to restore in our metadata element (providers/marker.py), in
        the persistent definition (and the live one of a running domain)."""
        found = marker.read(parse(domain.XMLDesc(client.module().VIR_DOMAIN_XML_INACTIVE)))
        if found is not None and found.restore != power:
            found.restore = power
            self._set_marker(domain, name, found)

    def _apply(self, domain: Any, name: str, observed: Observed, spec: VirtualMachineSpec,
               changes: list[FieldChange], live: bool) -> None:
        lib = client.module()
        handle = cast(DomainHandle, observed.handle)
        root = parse(domain.XMLDesc(lib.VIR_DOMAIN_XML_INACTIVE))
        writer = self._writer(name, handle.uuid, _only_new_devices(spec, changes))
        plan = rewrite.rewrite(root, spec, changes, self._host.target(), writer)
        for disk in plan.new_disks:
            pool, volume = writer.volume(disk)
            self._make_volume(name, pool, volume, disk.size, None, False)
        reseeded = None
        if any(change.path == "cloud_init" for change in changes) and spec.cloud_init is not None:
            reseeded = self._reseed(name, handle, root, spec.cloud_init)
        client.call(f"define the new configuration of VM {name}", self._conn.defineXML, to_xml(root))
        if live:
            self._hotplug_changes(domain, name, plan)
        if reseeded is not None:
            drive, pool_name, volume, swapped = reseeded
            if live and swapped:
                client.call(f"change the cloud-init CD-ROM of VM {name}", domain.updateDeviceFlags,
                            ET.tostring(drive, encoding="unicode"), lib.VIR_DOMAIN_AFFECT_LIVE)
            seed.delete_others(self._conn, name, pool_name, handle.libvirt_name, handle.uuid, keep=volume)
        for slot, size in plan.grown.items():
            self._grow(domain, name, root, slot, size, live)
        for pool_name, volume in plan.removed_volumes:
            if devices.made_by_us(volume, handle.libvirt_name, handle.uuid):
                self._delete_volume(name, pool_name, volume)

    def _write_seed(self, name: str, root: ET.Element, uuid: str, spec: CloudInitSpec | None) -> None:
        """The seed volume the domain's CD-ROM names, when it holds ``spec``'s documents (an interrupted create's
        documents that the stack has changed since are replaced by the update that follows)."""
        drive = cidata.drive(root, root.findtext("name") or name, uuid)
        if spec is None or drive is None or cidata.digest(root, root.findtext("name") or name, uuid) != spec.digest:
            return
        source = drive.find("source")
        assert source is not None
        seed.write(self._conn, name, source.get("pool") or "", source.get("volume") or "", spec)

    def _reseed(self, name: str, handle: DomainHandle, root: ET.Element,
                spec: CloudInitSpec) -> tuple[ET.Element, str, str, bool]:
        """The new documents written to a seed volume of their own and the domain's CD-ROM pointed at it (a CD-ROM
        added when it has none). Returns the drive, the pool, the volume and whether a drive it had changed media."""
        drive = cidata.drive(root, handle.libvirt_name, handle.uuid)
        source = drive.find("source") if drive is not None else None
        pool_name = (source.get("pool") if source is not None else None) or self._settings.storage_pool
        volume = cidata.volume_name(handle.libvirt_name, handle.uuid, spec.digest)
        seed.write(self._conn, name, pool_name, volume, spec)
        if drive is None or source is None:
            drive = cidata.new_drive(root, pool_name, volume)
            root.find("devices").append(drive)  # type: ignore[union-attr]
            return drive, pool_name, volume, False
        source.set("pool", pool_name)
        source.set("volume", volume)
        return drive, pool_name, volume, True

    def _hotplug_changes(self, domain: Any, name: str, plan: rewrite.Rewrite) -> None:
        lib = client.module()
        live = lib.VIR_DOMAIN_AFFECT_LIVE
        for element in plan.detached:
            client.call(f"hot-unplug a device of VM {name}", domain.detachDeviceFlags,
                        ET.tostring(element, encoding="unicode"), live)
        for element in plan.attached:
            client.call(f"hot-plug a device into VM {name}", domain.attachDeviceFlags,
                        ET.tostring(element, encoding="unicode"), live)
        for element in plan.changed:
            client.call(f"change a NIC of VM {name}", domain.updateDeviceFlags,
                        ET.tostring(element, encoding="unicode"), live)
        for key, element in plan.metadata.items():
            client.call(f"update the metadata of VM {name}", domain.setMetadata, lib.VIR_DOMAIN_METADATA_ELEMENT,
                        marker.without_namespace(element), key[0], key[1], live)

    def _grow(self, domain: Any, name: str, root: ET.Element, slot: str, size_gib: int, live: bool) -> None:
        lib = client.module()
        what = f"grow disk {slot} of VM {name} to {size_gib} GiB"
        if live:
            client.call(what, domain.blockResize, slot, size_gib * GiB, lib.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            return
        source = next((d.find("source") for d in root.findall("devices/disk")
                       if d.find("target") is not None and d.find("target").get("dev") == slot), None)
        if source is None or not source.get("volume"):
            raise ProviderError(f"libvirt could not {what}: the disk is not a volume of a storage pool")
        pool = client.call(what, self._conn.storagePoolLookupByName, source.get("pool"))
        volume = client.call(what, pool.storageVolLookupByName, source.get("volume"))
        if volume.info()[1] >= size_gib * GiB:
            return  # made at this size by the create this update finishes
        client.call(what, volume.resize, size_gib * GiB, 0)

    def _delete_volume(self, vm: str, pool_name: str, volume_name: str) -> None:
        pool = client.call(f"find storage pool {pool_name}", self._conn.storagePoolLookupByName, pool_name,
                           tolerate=[client.NO_STORAGE_POOL])
        volume = pool and client.call(f"find volume {volume_name}", pool.storageVolLookupByName, volume_name,
                                      tolerate=[client.NO_STORAGE_VOL])
        if volume is not None:
            client.call(f"delete volume {volume_name} of VM {vm}", volume.delete, 0, tolerate=[client.NO_STORAGE_VOL])

    # ---- deleting ------------------------------------------------------------------------------------

    def volumes(self, observed: Observed) -> Volumes:
        """What a delete destroys: the volumes virtplane made for the domain (named after it and its UUID), its UEFI
        variables (NVRAM: boot entries, enrolled keys) and its emulated TPM's state (vTPM keys); a volume it did not
        make stays in its pool when the domain is undefined."""
        handle = cast(DomainHandle, observed.handle)
        found = Volumes()
        sizes = {disk.get("slot"): disk.get("size") for disk in observed.state.get("disks") or []}
        for disk in handle.root.findall("devices/disk"):
            source, target = disk.find("source"), disk.find("target")
            if disk.get("device", "disk") != "disk" or target is None:
                continue
            slot = target.get("dev") or "?"
            volume = (source.get("volume") or source.get("file")) if source is not None else None
            named = f"{slot} ({volume or '?'}, {sizes.get(slot, '?')} GiB)"
            if volume and devices.made_by_us(volume, handle.libvirt_name, handle.uuid):
                found.destroyed.append(named)
            else:
                found.kept.append(f"{named}, not made by virtplane for this VM")
        if domain_xml.is_uefi(handle.root):  # the NVRAM file, named in the XML once libvirt has chosen it
            nvram = domain_xml.nvram_path(handle.root)
            found.destroyed.append(f"UEFI variables{f' {nvram}' if nvram else ''} (boot entries, enrolled keys)")
        if any(tpm.find("backend") is not None and tpm.find("backend").get("type") == "emulator"
               for tpm in handle.root.findall("devices/tpm")):
            found.destroyed.append("emulated TPM state (vTPM keys, BitLocker/LUKS secrets sealed to it)")
        return found

    def delete(self, observed: Observed) -> None:
        guard(observed, "delete")
        handle = cast(DomainHandle, observed.handle)
        name = observed.name
        domain = client.call(f"find VM {name}", self._conn.lookupByUUIDString, handle.uuid,
                             tolerate=[client.NO_DOMAIN])
        if domain is None:
            return
        lib = client.module()
        DomainSwitch(domain, name).force_off()
        root = parse(domain.XMLDesc(lib.VIR_DOMAIN_XML_INACTIVE))
        for source in root.findall("devices/disk/source"):
            pool, volume = source.get("pool"), source.get("volume")
            if pool and volume and devices.made_by_us(volume, handle.libvirt_name, handle.uuid):
                self._delete_volume(name, pool, volume)
        for pool_name in sorted({self._settings.storage_pool} | {s.get("pool") or "" for s in root.findall(
                "devices/disk/source") if cidata.ours(s.get("volume") or "", handle.libvirt_name, handle.uuid)}):
            seed.delete_others(self._conn, name, pool_name, handle.libvirt_name, handle.uuid)
        for mdev in devices.mdev_uuids(root):
            self._remove_mdev(name, mdev)
        everything = (lib.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lib.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                      | lib.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | lib.VIR_DOMAIN_UNDEFINE_NVRAM
                      | lib.VIR_DOMAIN_UNDEFINE_TPM)
        try:
            domain.undefineFlags(everything)
        except Exception as error:
            if client.code(error) == client.NO_DOMAIN:
                return
            if client.code(error) != lib.VIR_ERR_INVALID_ARG:
                raise ProviderError(f"libvirt could not undefine VM {name}: {client.message(error)}") from None
            # a driver without NVRAM/TPM/checkpoints (the test driver) refuses those flags: it has none to remove
            client.call(f"undefine VM {name}", domain.undefineFlags,
                        lib.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | lib.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
                        tolerate=[client.NO_DOMAIN])

    def _remove_mdev(self, vm: str, mdev: str) -> None:
        if self._host.test_driver:
            return
        device = client.call(f"find the vGPU {mdev} of VM {vm}", self._conn.nodeDeviceLookupByName,
                             "mdev_" + mdev.replace("-", "_"), tolerate=[client.NO_NODE_DEVICE])
        if device is not None:
            client.call(f"remove the vGPU {mdev} of VM {vm}", device.destroy, tolerate=[client.NO_NODE_DEVICE])


def _only_new_devices(spec: VirtualMachineSpec, changes: list[FieldChange]) -> VirtualMachineSpec:
    """The spec with only the NICs and GPUs this update adds or changes, so device choices are made for those."""
    new_nics = {c.path[len("nics["):c.path.index("]")] for c in changes
                if c.path.startswith("nics[") and (c.old is None or c.path.endswith(("adapter", "device")))}
    gpus_changed = any(top_field(c.path) == "gpus" for c in changes)
    return spec.model_copy(update={"nics": [n for n in spec.nics or [] if n.slot in new_nics],
                                   "gpus": spec.gpus if gpus_changed else [],
                                   "disks": [d for d in spec.disks or [] if isinstance(d, DiskSpec)]})
