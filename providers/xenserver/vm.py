"""The VirtualMachine kind on XenServer / XCP-ng: observe in one batched read, create from a template, update,
delete; ids are VM uuids.

- Observe: one ``VM.get_all_records_where`` for every VM, then one ``get_all_records`` per class the VMs' parts
  need (pool_reader.py); never one round trip per VM. Ours are the VMs whose marker names this stack (claims.py
  sorts them); a declared name held by another VM is foreign.
- Create: ``VM.clone`` of the template (``clone_from``, or the endpoint's ``template``, by default ``Other install
  media``) — or ``VM.copy`` to the disks' SR for a full copy (``clone_from`` without ``linked_clone``) — under a
  pending name that carries the marker (base.pending_name; neither call takes other_config). Then ``VM.provision``
  (it turns the clone into a VM and makes the disks a template describes in ``other_config:disks``, on the SR
  virtplane fills in where the template leaves it empty, as xe vm-install does), the declared fields as an update
  computed with the generic diff against the new VM (unset fields keep the template's values), and last the marker
  in ``other_config``, the ``virtplane`` tag and the real name. A VM still pending on the next run was interrupted
  before it was finished: it holds no data yet, so it is removed with its disks and made again. A clone whose answer
  was lost is looked for by its pending name before anything is cloned again.
- Settings: ``VCPUs_max`` and ``VCPUs_at_startup`` (in the order XAPI accepts), ``platform:cores-per-socket``,
  ``VM.set_memory_limits`` with static = dynamic, ``HVM_boot_params:firmware``, ``platform:secureboot``,
  ``platform:nested-virt`` (and ``exp-nested-hvm``), ``affinity`` for the node. All of them need the VM halted (XAPI
  refuses VCPU and memory changes on a running VM; platform and firmware take effect at boot), so they are
  power-off rules, applied with the shared power protocol (providers/power.py): clean shutdown, hard shutdown after
  ``shutdown_timeout``, started again when the change fails.
- Disks: a VDI on an SR (``DiskSpec.storage`` names the SR; default the endpoint's ``sr`` or the pool's default
  SR) plugged through a VBD whose ``userdevice`` is the slot; each VDI made carries ``other_config:virtplane.disk =
  <VM uuid>/<slot>`` so one made before its VBD is found and used again. Growing a disk is ``VDI.resize`` on the
  halted VM (XAPI refuses to resize an attached VDI). Removing one destroys its VDI (data: the plan says so).
- NICs: VIFs with ``device`` = the slot on the network the NIC names (vlans.py); added and removed live (plug and
  unplug on a running VM), moved with ``VIF.move``.
- GPUs: ``VGPU.create(vm, group, "0", {}, type)`` with the type named by the profile (``model_name``) or the
  passthrough type, in the GPU group of the GPU placement chose (or any group that has the type enabled and
  capacity left); changed with the VM halted, by removing the VM's vGPUs and creating the declared ones.
- Delete: hard shutdown, destroy the VM's disks (``VDI.destroy``) and then the VM, so an interrupted delete leaves a
  VM with its marker, never disks nobody owns; never a VM without our marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from virtplane.clones import after_clone, clone_disk_problems
from virtplane.errors import ProviderError
from virtplane.providers import nocloud
from virtplane.providers.base import (
    MARKER_KEY,
    Created,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Rule,
    pending_name,
)
from virtplane.providers.claims import guard, sort_observed
from virtplane.providers.marker import RESTORE_KEY, RESTORE_PREFIX, restore_from
from virtplane.providers.power import change_with_power
from virtplane.providers.vm_rules import VmRules, top_field
from virtplane.providers.xenserver.client import OutcomeUnknown, XapiClient, XapiFailure
from virtplane.providers.xenserver.pool_facts import PoolFacts
from virtplane.providers.xenserver.pool_reader import PoolReader
from virtplane.providers.xenserver.records import (
    CLOUD_INIT_KEY,
    DISK_KEY,
    MARKER_TAG,
    NULL,
    THIN_SR_TYPES,
    GiB,
    MiB,
    PoolView,
    disk_vbds,
    marker_complete,
    owner_of,
    platform_changes,
    vcpu_steps,
    vm_state,
)
from virtplane.providers.xenserver.settings import ENV, XenserverSettings
from virtplane.providers.xenserver.vlans import Vlans, declared_vlans, vlans_for
from virtplane.providers.xenserver.vm_check import PoolNames, vm_problems
from virtplane.providers.xenserver.vm_power import XapiPower
from virtplane.slots import next_numbered, resolve_vm
from virtplane.specs import CREATE_ONLY, DiskSpec, GpuSpec, NicSpec, Spec, VirtualMachineSpec

_table = VmRules(hypervisor="XenServer",
                 power_off=frozenset({"cpus", "sockets", "memory", "firmware", "secure_boot",
                                      "nested_virtualization", "node"}))
_DISK_SIZE = re.compile(r"^disks\[[^\]]+\]\.size$")
_IGNORED = frozenset({"guest_os", "machine", "power"})  # no XenServer setting (check refuses them) / power protocol
CONFIG_DRIVE_DEVICES = 16  # the VBD devices of an HVM guest (0-15): the config drive takes the last free one


def vm_rule(change: FieldChange) -> Rule:
    """As the shared table, except that a disk grows with the VM off (XAPI resizes detached VDIs only)."""
    rule = _table(change)
    if rule is Rule.IN_PLACE and _DISK_SIZE.match(change.path):
        return Rule.POWER_OFF
    return rule


@dataclass
class VmHandle:
    ref: str
    record: dict[str, Any]
    pending: bool


class VirtualMachineDriver(KindDriver):
    """**Thread safety.** creates, updates and deletes of different VMs run at once: the client lends each thread
    its own session, each call works on its own VM's refs, and the shared view of the pool (networks, SRs,
    templates) is read by ``observe``/``check`` before apply starts and only read afterwards."""

    kind = "VirtualMachine"
    replaceable = _table.replaceable  # a disk's SR, thin or bus replaces the VM
    delivers = frozenset({"cloud_init"})  # cloud-init: docs/cloud-init.md

    def __init__(self, client: XapiClient, settings: XenserverSettings, facts: PoolFacts) -> None:
        self._client = client
        self._settings = settings
        self._facts = facts
        self._reader = PoolReader(client)
        self._view = PoolView()
        self._sources: dict[str, list[str]] | None = None  # template and VM names -> refs
        self._declared_vlans: dict[str, int] = {}
        self._vlans = Vlans("", {})

    @property
    def _where(self) -> str:
        return f"XenServer endpoint '{self._settings.endpoint_name}'"

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._facts.refresh()
        self._sources = None
        wanted = set(declared.get(self.kind, {}))
        vms = self._reader.vms()
        candidates = {ref: record for ref, record in vms.items() if _relevant(record, stack, wanted)}
        self._view = self._reader.vm_view(candidates)
        self._learn(declared, vms)
        return sort_observed(stack, wanted, [self._observed(ref, record) for ref, record in candidates.items()],
                             self._where)

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        uuids = [str(i) for i in ids if re.fullmatch(r"[0-9a-fA-F-]{36}", str(i))]
        if not uuids:
            return {}
        where = " or ".join(f'field "uuid" = "{uuid.lower()}"' for uuid in uuids)
        vms = {ref: r for ref, r in self._reader.vms(where).items() if not r["is_control_domain"]}
        view = self._reader.vm_view(vms)
        vlans = vlans_for(self._facts.device(view.pifs), declared)
        found = {}
        for ref, record in vms.items():
            observed = self._observed(ref, record, view, vlans)
            if observed.owner is not None and observed.owner.stack == stack:
                observed.name = observed.owner.resource
            found[str(record["uuid"])] = observed
        return {str(i): found[str(i).lower()] for i in ids if str(i).lower() in found}

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every VM (templates and the control domain not) by uuid, in observe's batched reads."""
        vms = {ref: r for ref, r in self._reader.vms().items()
               if not r["is_control_domain"] and not r["is_a_template"]}
        view = self._reader.vm_view(vms)
        vlans = vlans_for(self._facts.device(view.pifs), declared)
        return {str(record["uuid"]): self._observed(ref, record, view, vlans) for ref, record in vms.items()}

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """The marker in other_config and the ``virtplane`` tag, where a create writes them (the name stays)."""
        handle: VmHandle = observed.handle
        if observed.owner is not None:
            raise ProviderError(f"refusing to adopt VM {observed.name}: it already carries a virtplane ownership "
                                "marker")
        what = f"adopt VM {observed.name}"
        self._client.call("VM.add_to_other_config", handle.ref, MARKER_KEY, owner.encode(), what=what)
        tags = sorted({*(handle.record.get("tags") or []), MARKER_TAG})
        self._client.call("VM.set_tags", handle.ref, tags, what=what)

    def _learn(self, declared: Declared, vms: dict[str, dict[str, Any]]) -> None:
        self._declared_vlans = declared_vlans(declared)
        self._vlans = vlans_for(self._facts.device(self._view.pifs), declared)
        self._sources = _sources(vms)

    def _observed(self, ref: str, record: dict[str, Any], view: PoolView | None = None,
                  vlans: Vlans | None = None) -> Observed:
        view = view or self._view
        vlans = vlans or self._vlans
        owner, pending = owner_of(record)
        state = vm_state(ref, record, view, lambda network: vlans.name_of(network, view.networks, view.pifs))
        restore = (record.get("other_config") or {}).get(RESTORE_KEY)
        return Observed(str(record["name_label"]), VmHandle(ref, record, pending), owner, state,
                        marker_complete=owner is None or marker_complete(record), id=str(record["uuid"]),
                        restore_power=restore_from(RESTORE_PREFIX + restore) if restore else None)

    def _read_one(self, ref: str, what: str) -> Observed:
        record = self._client.get("VM.get_record", ref, what=what)
        view = self._reader.one_vm_view(ref, record)
        return self._observed(ref, record, view, Vlans(self._vlans.device or self._facts.device(view.pifs),
                                                       self._vlans.declared))

    # ---- slots and placement -------------------------------------------------------------------------

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        """The next free VBD userdevice or VIF device: "0", "1"…"""
        return next_numbered("", taken)

    # ---- creating ------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        vm_spec = cast(VirtualMachineSpec, spec)
        name = owner.resource
        source_name = vm_spec.clone_from or self._settings.template
        source = self._source(source_name, name)
        sr = self._sr(vm_spec.disks[0].storage if vm_spec.disks else None)
        ref = self._clone(owner, source, source_name, sr, full=bool(vm_spec.clone_from and not vm_spec.linked_clone))
        record = self._client.get("VM.get_record", ref, what=f"read the new VM {name}")
        if record["is_a_template"]:
            self._provision(ref, record, sr, name)
        observed = self._read_one(ref, f"read the new VM {name}")
        resolved = resolve_vm(vm_spec, observed.state, self.new_slot)
        changes = after_clone(self.rule, resolved.model_dump(), observed.state, CREATE_ONLY[self.kind],
                              f"VM {name} is made from '{source_name}'", lambda: self.delete(observed))
        handle = cast(VmHandle, observed.handle)
        self._apply(handle, owner, resolved, changes, finish_marker=True, running=False)
        if vm_spec.power == "on":
            self._power(handle, name, resolved.node).start()
        created = self._read_one(ref, f"read the new VM {name}")
        return Created(created.id or "", {**created.state, "node": created.state.get("node")})

    def _source(self, source_name: str, name: str) -> str:
        sources = self._sources if self._sources is not None else _sources(self._reader.vms())
        found = sources.get(source_name, [])
        if len(found) != 1:
            what = "no template or VM" if not found else f"{len(found)} templates or VMs"
            raise ProviderError(f"VM {name} is made from '{source_name}', but {what} of that name exist on "
                                f"{self._where} (exactly one is needed)")
        return found[0]

    def _sr(self, storage: str | None) -> str:
        name = storage or self._settings.sr
        if name is None:
            default = self._facts.default_sr()
            if default is None:
                raise ProviderError(f"{self._where} has no default SR: name one with {ENV['sr']} or Disk(storage=…)")
            return default
        found = self._client.get("SR.get_by_name_label", name, what=f"find SR '{name}'")
        if len(found) != 1:
            raise ProviderError(f"{self._where} has {len(found) or 'no'} SRs named '{name}' (exactly one is needed)")
        return str(found[0])

    def _clone(self, owner: Owner, source: str, source_name: str, sr: str, *, full: bool) -> str:
        pending = pending_name(owner)
        verb = f"copy '{source_name}' to a new VM" if full else f"clone '{source_name}' into a new VM"
        what = f"{verb} for VM {owner.resource}"
        for attempt in range(2):
            try:
                if full:
                    return self._client.run("VM.copy", source, pending, sr, what=what)
                return self._client.run("VM.clone", source, pending, what=what)
            except OutcomeUnknown:
                self._client.settle("VM.copy" if full else "VM.clone", what=f"{what} (its answer was lost)")
                made = self._client.get("VM.get_by_name_label", pending, what=f"look for VM {owner.resource} "
                                        "after a lost answer")
                if made:
                    for extra in made[1:]:  # a second copy made by a repeated request: it holds nothing yet
                        self._destroy(str(extra), owner.resource)
                    return str(made[0])
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _provision(self, ref: str, record: dict[str, Any], sr: str, name: str) -> None:
        """``VM.provision``; a template's ``other_config:disks`` without an SR gets the one chosen here first."""
        disks = (record.get("other_config") or {}).get("disks")
        if disks and 'sr=""' in disks:
            sr_uuid = self._client.get("SR.get_uuid", sr, what="read the SR's uuid")
            what = f"choose the SR of the disks of VM {name}"
            self._client.call("VM.remove_from_other_config", ref, "disks", what=what)
            self._client.call("VM.add_to_other_config", ref, "disks", disks.replace('sr=""', f'sr="{sr_uuid}"'),
                              what=what)
        self._client.run("VM.provision", ref, what=f"provision VM {name}")

    # ---- updating ------------------------------------------------------------------------------------

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        guard(observed, "update")
        handle = cast(VmHandle, observed.handle)
        vm_spec = cast(VirtualMachineSpec, spec)
        owner = cast(Owner, observed.owner)
        if handle.pending:  # an interrupted create: it holds nothing yet; remove it and make it again
            self._remove(handle, observed.name)
            self.create(owner, vm_spec.with_creation_defaults())
            return
        running = observed.state["power"] == "on"
        needs_off = any(self.rule(change) is Rule.POWER_OFF for change in changes)
        node = vm_spec.node or observed.state.get("node")
        change_with_power(self._power(handle, observed.name, node), running=running, wanted=vm_spec.power,
                          needs_off=needs_off, timeout=self._settings.shutdown_timeout,
                          change=lambda: self._apply(handle, owner, vm_spec, changes,
                                                     finish_marker=not observed.marker_complete,
                                                     running=running and not needs_off),
                          record=lambda power: self._record_power(handle.ref, observed.name, power),
                          recorded=observed.restore_power is not None)

    def _record_power(self, ref: str, name: str, power: str | None) -> None:
        """Keep (or, with None, clear) the power state to restore in ``other_config`` (providers/marker.py)."""
        what = f"record the power state of VM {name}"
        self._client.call("VM.remove_from_other_config", ref, RESTORE_KEY, what=what)
        if power is not None:
            self._client.call("VM.add_to_other_config", ref, RESTORE_KEY, f"power={power}", what=what)

    def _power(self, handle: VmHandle, name: str, node: str | None) -> XapiPower:
        host = self._host(node) if node else None
        return XapiPower(self._client, handle.ref, name, host)

    def _apply(self, handle: VmHandle, owner: Owner, spec: VirtualMachineSpec, changes: list[FieldChange], *,
               finish_marker: bool, running: bool) -> None:
        """Make each change on the VM (halted, unless only live changes are asked for), then finish the marker."""
        name = owner.resource
        what = f"reconfigure VM {name}"
        record = self._client.get("VM.get_record", handle.ref, what=f"read VM {name}")
        fields = {top_field(change.path) for change in changes} - _IGNORED
        if fields & {"cpus", "sockets"}:
            self._vcpus(handle.ref, record, spec, name)
        if "memory" in fields and spec.memory is not None:
            size = spec.memory * MiB
            static_min = min(int(record["memory_static_min"]), size)
            self._client.call("VM.set_memory_limits", handle.ref, str(static_min), str(size), str(size), str(size),
                              what=f"set the memory of VM {name} to {spec.memory} MiB")
        layout = bool(fields & {"cpus", "sockets"}) and spec.sockets is not None  # sockets follow the CPU count
        platform = platform_changes(spec.cpus or int(record["VCPUs_max"]) if layout else None,
                                    spec.sockets if layout else None,
                                    spec.secure_boot if "secure_boot" in fields else None,
                                    spec.nested_virtualization if "nested_virtualization" in fields else None)
        if platform:
            merged = {**record["platform"], **{k: v for k, v in platform.items() if v is not None}}
            self._client.call("VM.set_platform", handle.ref, merged, what=what)
        if "firmware" in fields and spec.firmware is not None:
            self._client.call("VM.set_HVM_boot_params", handle.ref,
                              {**record["HVM_boot_params"], "firmware": spec.firmware}, what=what)
        if "node" in fields and spec.node is not None:
            self._client.call("VM.set_affinity", handle.ref, self._host(spec.node), what=f"pin VM {name} to host "
                              f"{spec.node}")
        uuid = str(record["uuid"])
        if "cloud_init" in fields and spec.cloud_init is not None:
            self._config_drive(handle.ref, uuid, name, spec, running)
        for change in changes:
            if change.path.startswith("disks["):
                self._disk_change(handle.ref, uuid, name, change, spec, running)
            elif change.path.startswith("nics["):
                self._nic_change(handle.ref, name, change, spec, running)
        if "gpus" in fields and spec.gpus is not None:
            self._replace_gpus(handle.ref, name, spec.gpus, spec.node)
        if finish_marker or "tags" in fields:
            self._finish_marker(handle.ref, record, owner, spec.tags)

    def _vcpus(self, ref: str, record: dict[str, Any], spec: VirtualMachineSpec, name: str) -> None:
        cpus = spec.cpus if spec.cpus is not None else int(record["VCPUs_max"])
        cores = record["platform"].get("cores-per-socket")
        if spec.sockets is None and cores and cores.isdigit() and cpus % int(cores):
            raise ProviderError(f"VM {name}: field 'cpus': {cpus} CPUs are not a whole number of sockets of "
                                f"{cores} cores (its platform:cores-per-socket); declare sockets= too")
        for method, value in vcpu_steps(int(record["VCPUs_max"]), int(record["VCPUs_at_startup"]), cpus):
            self._client.call(method, ref, str(value), what=f"give VM {name} {cpus} CPUs")

    def _finish_marker(self, ref: str, record: dict[str, Any], owner: Owner, tags: list[str] | None) -> None:
        """The marker in other_config, the tags (the stack's and ``virtplane``), then the real name: a VM with its
        real name carries the whole marker."""
        what = f"write the ownership marker of VM {owner.resource}"
        if (record.get("other_config") or {}).get(MARKER_KEY) != owner.encode():
            if MARKER_KEY in (record.get("other_config") or {}):
                self._client.call("VM.remove_from_other_config", ref, MARKER_KEY, what=what)
            self._client.call("VM.add_to_other_config", ref, MARKER_KEY, owner.encode(), what=what)
        kept = [t for t in record.get("tags") or [] if t != MARKER_TAG] if tags is None else list(tags)
        wanted = sorted({*kept, MARKER_TAG})
        if sorted(record.get("tags") or []) != wanted:
            self._client.call("VM.set_tags", ref, wanted, what=what)
        if record.get("name_label") != owner.resource:
            self._client.call("VM.set_name_label", ref, owner.resource, what=f"name VM {owner.resource}")

    # ---- disks, NICs, GPUs ---------------------------------------------------------------------------

    def _disk_change(self, ref: str, uuid: str, name: str, change: FieldChange, spec: VirtualMachineSpec,
                     running: bool) -> None:
        slot = change.path[len("disks["):change.path.index("]")]
        current = self._vbds(ref)
        if change.path.endswith(".size"):
            vdi = current[slot][1]["VDI"]
            self._client.call("VDI.resize", vdi, str(int(change.new) * GiB),
                              what=f"grow disk {slot} of VM {name} to {change.new} GiB")
        elif change.old is None:
            disk = next(d for d in spec.disks or [] if d.slot == slot)
            self._add_disk(ref, uuid, name, disk, running)
        elif change.new is None and slot in current:
            vbd, record = current[slot]
            if record["currently_attached"]:
                self._client.call("VBD.unplug", vbd, what=f"unplug disk {slot} of VM {name}")
            self._client.call("VDI.destroy", record["VDI"], what=f"destroy disk {slot} of VM {name}")

    def _config_drive(self, ref: str, uuid: str, name: str, spec: VirtualMachineSpec, running: bool) -> None:
        """Cloud-init as a config drive: a VDI holding the NoCloud image (providers/nocloud.py; written with XAPI's
        ``/import_raw_vdi`` handler) on a read-only disk VBD at the VM's last free device (away from its disks'
        slots), plugged into a running VM; the drive it replaces is unplugged and destroyed after."""
        assert spec.cloud_init is not None
        image = nocloud.iso(spec.cloud_init.documents)
        vbds = self._client.get("VBD.get_all_records_where", f'field "VM" = "{ref}"', what="read the VM's disks")
        old = [(str(vbd), str(r["VDI"]), r) for vbd, r in vbds.items() if r["type"] == "Disk" and r["VDI"] != NULL
               and CLOUD_INIT_KEY in self._client.get("VDI.get_other_config", r["VDI"], what="read a disk of VM "
                                                      f"{name}")]
        taken = {str(r["userdevice"]) for r in vbds.values()}
        device = next((str(n) for n in range(CONFIG_DRIVE_DEVICES - 1, -1, -1) if str(n) not in taken), None)
        if device is None:
            raise ProviderError(f"XenServer cannot give VM {name} a cloud-init config drive: devices 0 to "
                                f"{CONFIG_DRIVE_DEVICES - 1} are all taken")
        disks = [r for r in vbds.values() if r["type"] == "Disk" and r["VDI"] != NULL and str(r["userdevice"]) == "0"]
        sr = self._client.get("VDI.get_SR", disks[0]["VDI"], what=f"read the SR of VM {name}'s first disk") \
            if disks else self._sr(None)
        what = f"make the cloud-init config drive of VM {name}"
        vdi = self._client.call("VDI.create", {
            "name_label": f"cidata {name}", "name_description": "cloud-init (NoCloud) made by virtplane", "SR": sr,
            "virtual_size": str(-(-len(image) // MiB) * MiB), "type": "user", "sharable": False, "read_only": False,
            "other_config": {CLOUD_INIT_KEY: f"{uuid}/{spec.cloud_init.digest}"}, "xenstore_data": {},
            "sm_config": {}, "tags": []}, what=what)
        self._client.put_raw(vdi, image, what)
        vbd = self._client.call("VBD.create", {
            "VM": ref, "VDI": vdi, "userdevice": device, "bootable": False, "mode": "RO", "type": "Disk",
            "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}}, what=what)
        if running:
            self._client.call("VBD.plug", vbd, what=f"plug the cloud-init config drive into VM {name}")
        for old_vbd, old_vdi, record in old:
            what = f"remove the previous cloud-init config drive of VM {name}"
            if record["currently_attached"]:
                self._client.call("VBD.unplug", old_vbd, what=what)
            self._client.call("VDI.destroy", old_vdi, what=what)

    def _vbds(self, ref: str) -> dict[str, tuple[str, dict[str, Any]]]:
        vbds = self._client.get("VBD.get_all_records_where", f'field "VM" = "{ref}"', what="read the VM's disks")
        return {str(r["userdevice"]): (str(vbd), r) for vbd, r in vbds.items() if r["type"] == "Disk"}

    def _add_disk(self, ref: str, uuid: str, name: str, disk: DiskSpec, running: bool) -> None:
        assert disk.slot is not None
        key = f"{uuid}/{disk.slot}"
        label = f"{name} {disk.slot}"
        made = self._client.get("VDI.get_all_records_where", f'field "name_label" = "{_quoted(label)}"',
                                what="look for a disk made before its VBD")
        orphan = next((vdi for vdi, r in made.items() if (r.get("other_config") or {}).get(DISK_KEY) == key
                       and not r.get("VBDs")), None)
        vdi = orphan or self._client.call("VDI.create", {
            "name_label": label, "name_description": "made by virtplane", "SR": self._sr(disk.storage),
            "virtual_size": str(disk.size * GiB), "type": "user" if disk.slot != "0" else "system",
            "sharable": False, "read_only": False, "other_config": {DISK_KEY: key}, "xenstore_data": {},
            "sm_config": {}, "tags": []}, what=f"make disk {disk.slot} of VM {name}")
        vbd = self._client.call("VBD.create", {
            "VM": ref, "VDI": vdi, "userdevice": disk.slot, "bootable": disk.slot == "0", "mode": "RW",
            "type": "Disk", "unpluggable": disk.slot != "0", "empty": False, "other_config": {},
            "qos_algorithm_type": "", "qos_algorithm_params": {}}, what=f"attach disk {disk.slot} to VM {name}")
        if running:
            self._client.call("VBD.plug", vbd, what=f"plug disk {disk.slot} into VM {name}")

    def _nic_change(self, ref: str, name: str, change: FieldChange, spec: VirtualMachineSpec, running: bool) -> None:
        slot = change.path[len("nics["):change.path.index("]")]
        vifs = self._client.get("VIF.get_all_records_where", f'field "VM" = "{ref}"', what="read the VM's NICs")
        current = {str(r["device"]): (str(vif), r) for vif, r in vifs.items()}
        declared = next((n for n in spec.nics or [] if n.slot == slot), None)
        if change.new is None and slot in current:
            vif, record = current[slot]
            if record["currently_attached"]:
                self._client.call("VIF.unplug", vif, what=f"unplug NIC {slot} of VM {name}")
            self._client.call("VIF.destroy", vif, what=f"remove NIC {slot} of VM {name}")
        elif declared is not None and slot not in current:
            self._add_nic(ref, name, declared, running)
        elif declared is not None and change.path.endswith((".network", ".adapter")):
            vif, record = current[slot]
            network = self._network(declared.network)
            if record["network"] != network:
                self._client.call("VIF.move", vif, network, what=f"move NIC {slot} of VM {name} to network "
                                  f"{declared.network}")

    def _add_nic(self, ref: str, name: str, nic: NicSpec, running: bool) -> None:
        network = self._network(nic.network)
        vif = self._client.call("VIF.create", {
            "device": nic.slot, "network": network, "VM": ref, "MAC": "", "MTU": "1500", "other_config": {},
            "qos_algorithm_type": "", "qos_algorithm_params": {}}, what=f"add NIC {nic.slot} to VM {name}")
        if running:
            self._client.call("VIF.plug", vif, what=f"plug NIC {nic.slot} into VM {name}")

    def _network(self, name: str) -> str:
        view = self._view if self._view.networks else self._reader.view(("networks", "pifs"))
        found = self._vlans.find(name, self._declared_vlans.get(name), view.networks, view.pifs)
        if not found and name in self._declared_vlans:  # made in this apply, after the last read
            view = self._reader.view(("networks", "pifs"))
            found = self._vlans.find(name, self._declared_vlans[name], view.networks, view.pifs)
        if len(found) != 1:
            raise ProviderError(f"{self._where} has {len(found) or 'no'} networks for '{name}' (exactly one is needed)")
        return found[0]

    def _replace_gpus(self, ref: str, name: str, gpus: list[GpuSpec], node: str | None) -> None:
        for vgpu in self._client.get("VM.get_VGPUs", ref, what=f"read the vGPUs of VM {name}"):
            self._client.call("VGPU.destroy", vgpu, what=f"remove a vGPU of VM {name}")
        view = self._reader.view(("vgpu_types", "pgpus", "pcis", "hosts"))
        host = self._host(node) if node else None
        for index, gpu in enumerate(gpus):
            group, vgpu_type = self._gpu_group(view, gpu, host, name, index)
            self._client.call("VGPU.create", ref, group, "0", {}, vgpu_type,
                              what=f"give VM {name} {_gpu_words(gpu)}")

    def _gpu_group(self, view: PoolView, gpu: GpuSpec, host: str | None, name: str, index: int) -> tuple[str, str]:
        """The GPU group and VGPU type for one declared GPU: the group of the GPU named (or placed), else the first
        group with a PGPU that has the type enabled and capacity left (on the VM's host, when it has one)."""
        wanted = "passthrough" if gpu.mode == "passthrough" else (gpu.profile or "").lower()
        types = [ref for ref, t in view.vgpu_types.items()
                 if (t["implementation"] == "passthrough" if wanted == "passthrough"
                     else str(t["model_name"]).lower() == wanted)]
        for pgpu_ref, pgpu in sorted(view.pgpus.items(), key=lambda item: item[1]["GPU_group"]):
            address = view.pcis.get(pgpu["PCI"], {}).get("pci_id")
            if (gpu.device and address != gpu.device) or (host and pgpu["host"] != host):
                continue
            for vgpu_type in types:
                if vgpu_type in pgpu["enabled_VGPU_types"] and int(self._client.get(
                        "PGPU.get_remaining_capacity", pgpu_ref, vgpu_type, what="read a GPU's free capacity")) > 0:
                    return str(pgpu["GPU_group"]), vgpu_type
        raise ProviderError(f"VM {name}: field 'gpus[{index}]': no GPU on {self._where}"
                            f"{' at ' + gpu.device if gpu.device else ''} has {_gpu_words(gpu)} enabled and free")

    def _host(self, name: str) -> str:
        found = self._client.get("host.get_by_name_label", name, what=f"find host {name}")
        if len(found) != 1:
            raise ProviderError(f"{self._where} has {len(found) or 'no'} hosts named '{name}'")
        return str(found[0])

    # ---- deleting ------------------------------------------------------------------------------------

    def delete(self, observed: Observed) -> None:
        guard(observed, "delete")
        self._remove(cast(VmHandle, observed.handle), observed.name)

    def _remove(self, handle: VmHandle, name: str) -> None:
        try:
            if self._client.get("VM.get_power_state", handle.ref, what=f"read VM {name}") != "Halted":
                self._client.run("VM.hard_shutdown", handle.ref, what=f"power off VM {name} to delete it")
            self._destroy(handle.ref, name)
        except XapiFailure as failure:
            if failure.code != "HANDLE_INVALID":
                raise

    def _destroy(self, ref: str, name: str) -> None:
        """The VM's disks (those only it uses, and any it made before their VBD), its cloud-init config drives, then
        the VM."""
        uuid = self._client.get("VM.get_uuid", ref, what=f"read VM {name}")
        vbds = self._client.get("VBD.get_all_records", what=f"read the disks of VM {name}")
        vdis = self._client.get("VDI.get_all_records", what=f"read the disks of VM {name}")
        view = PoolView(vbds=vbds, vdis=vdis)
        doomed = {vbd["VDI"] for _, vbd in disk_vbds(ref, view)
                  if all(other["VM"] == ref for other in vbds.values() if other["VDI"] == vbd["VDI"])}
        doomed |= {vdi for vdi, r in vdis.items()
                   if str((r.get("other_config") or {}).get(DISK_KEY, "")).startswith(f"{uuid}/")
                   or str((r.get("other_config") or {}).get(CLOUD_INIT_KEY, "")).startswith(f"{uuid}/")}
        for vdi in sorted(doomed):
            self._tolerate_gone(lambda vdi=vdi: self._client.call("VDI.destroy", vdi, what=f"destroy a disk of VM "
                                                                  f"{name}"))
        self._tolerate_gone(lambda: self._client.call("VM.destroy", ref, what=f"delete VM {name}"))

    @staticmethod
    def _tolerate_gone(call: Any) -> None:
        try:
            call()
        except XapiFailure as failure:
            if failure.code != "HANDLE_INVALID":
                raise

    # ---- rules and checks ----------------------------------------------------------------------------

    def rule(self, change: FieldChange) -> Rule:
        return vm_rule(change)

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        vm_spec = cast(VirtualMachineSpec, spec)
        if not self._view.networks:
            self._view = self._reader.view(("networks", "pifs", "sriovs", "srs", "vgpu_types"))
        if not self._view.vgpu_types and vm_spec.gpus:
            self._view.vgpu_types = self._reader.view(("vgpu_types",)).vgpu_types
        if self._sources is None:
            self._sources = _sources(self._reader.vms())
        self._declared_vlans = declared_vlans(declared)
        self._vlans = vlans_for(self._facts.device(self._view.pifs), declared)
        view = self._view
        names = PoolNames(
            where=self._where, default_template=self._settings.template, template_setting=ENV["template"],
            sources=frozenset(self._sources), srs={r["name_label"]: r["type"] for r in view.srs.values()},
            networks=lambda name: self._network_refs(name, view),
            sriov=view.sriov_network,
            profiles=frozenset(str(t["model_name"]).lower() for t in view.vgpu_types.values()
                               if t.get("implementation") != "passthrough"))
        return vm_problems(vm_spec, names)

    def creation_problems(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """A VM made from a template or VM with disks: ``VM.copy`` (a full copy) puts every disk it copies on one SR,
        the one of the first declared disk (or the endpoint's); ``VM.clone`` leaves them where they are. A declared
        disk of the source on another SR, with another thinness (the SR's) or smaller than the source's cannot be had
        (virtplane/clones.py); a template whose disks ``VM.provision`` makes has none yet, and gets them as declared."""
        vm_spec = cast(VirtualMachineSpec, spec)
        found = (self._sources or {}).get(vm_spec.clone_from or "", [])
        if not vm_spec.disks or len(found) != 1:
            return []  # no disks declared, or check() names the missing or ambiguous source
        theirs = list(self._read_one(found[0], f"read '{vm_spec.clone_from}'").state.get("disks") or [])
        if theirs and not vm_spec.linked_clone:
            sr = self._view.srs.get(self._sr(vm_spec.disks[0].storage)) or {}
            theirs = [{**disk, "storage": sr.get("name_label"), "thin": sr.get("type") in THIN_SR_TYPES}
                      for disk in theirs]
        return clone_disk_problems(vm_spec, str(vm_spec.clone_from), theirs, frozenset(), self.new_slot, "XenServer")

    def _network_refs(self, name: str, view: PoolView) -> list[str]:
        if name in self._declared_vlans:  # a Network of the stack: it exists now, or apply makes it first
            return self._vlans.find(name, self._declared_vlans[name], view.networks, view.pifs) or [name]
        return self._vlans.find(name, None, view.networks, view.pifs)


def _relevant(record: dict[str, Any], stack: str, wanted: set[str]) -> bool:
    """A VM the stack may own or that holds a declared name (templates only while pending)."""
    owner, pending = owner_of(record)
    if record["is_a_template"] and not pending:
        return False
    return (owner is not None and owner.stack == stack) or record["name_label"] in wanted or pending


def _sources(vms: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Templates and halted VMs by name: what a VM can be made from."""
    found: dict[str, list[str]] = {}
    for ref, record in vms.items():
        if record["is_a_template"] or record["power_state"] == "Halted":
            found.setdefault(str(record["name_label"]), []).append(ref)
    return found


def _quoted(text: str) -> str:
    """A literal for XAPI's filter language, which has no escapes: a double quote cannot be matched, so it is dropped
    (the lookup then finds nothing, and a fresh disk is made)."""
    return text.replace('"', "")


def _gpu_words(gpu: GpuSpec) -> str:
    return "a passthrough GPU" if gpu.mode == "passthrough" else f"vGPU type '{gpu.profile}'"
