"""The VirtualMachine kind on Proxmox VE: observe in one batched pass, create (or clone), update and delete.

- Observe: one ``GET /cluster/resources?type=vm``; the candidates are the VMs tagged ``virtplane`` and those
  with a declared name (templates never); their configurations are read concurrently (vm_reader.py). A VM
  whose description marker names this stack is owned; a declared name without it is foreign.
- Create: a VMID from ``/cluster/nextid``, moved past those this run already handed out or saw listed (vmids.py,
  so parallel creates never race each other for one), then one create call carrying the name, the marker (tag
  and description) and the whole configuration. When another client takes the VMID first (any "already
  exists" answer, synchronous or from the task), it is marked taken and a new one is fetched (a few times).
  When the create's outcome is unknown, the VMs are searched for our marker before anything is created again,
  so a retried create never makes a second VM.
- Placement (``place``, at plan time, shown in the plan): the endpoint's ``node`` setting, else the online node
  with the most free memory minus what the plan already placed there (cluster.py). ``create`` uses ``spec.node``
  (placing the same way itself only when called without one); a clone without a node goes to its source's node
  (its disks are copied next to the source's, which are usually on local storage), so ``place`` returns None
  for clones.
- Clone: ``clone`` of the named VM or template (full, or linked from a template), then the declared fields as an
  update, computed with the generic diff on the slot-resolved spec: unset fields keep the template's values
  (firmware, controller, disk buses), and disk storage/bus differences are left as cloned.
- Ids: a VM's stable id is its VMID, as a string (``create`` returns it; ``observe_ids`` reads by it).
- Update: config changes in one ``POST …/config`` task, disk growth with ``PUT …/resize`` (absolute size),
  power-off rules shut the VM down first (``shutdown``, then a hard ``stop`` if the guest does not power off in
  time: vm_power.py) and the declared power state is restored at the end, or, when a change after the shutdown
  fails, the VM is started again before the error is reported.
- Delete: stop, then destroy; PVE removes the volumes the VM's configuration references (disks, EFI vars, TPM
  state, ``unusedN``), which the plan names (``volumes``). Never ``destroy-unreferenced-disks`` (it deletes every
  ``vm-<VMID>-disk-*`` on every storage, a leftover of an earlier VM with the same VMID too) nor ``purge`` (it
  edits the cluster's backup, replication and HA jobs); never a VM without our marker.
- Data: a change that re-makes the EFI vars disk (secure boot) names it (``destroys``) and needs
  --allow-data-loss; a firmware change keeps it (reconfigure.py).
- Interrupted runs (providers/marker.py): a clone bears the name ``<name>.virtplane-pending`` until the update
  that tags it renames it, so observe lists it; a VM shut down for a change that is to run again is recorded so in
  its description first (written with the synchronous ``PUT …/config``) and the record cleared once it runs.
- Cloud-init (cloudinit.py): a cloud-init drive and PVE's own options, or snippets written to the endpoint's snippets
  directory; a change is written with the rest of the configuration, then the drive is regenerated (``PUT
  …/cloudinit``). Deleting a VM deletes its snippets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from virtplane.clones import clone_disk_problems
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
    Rule,
    Volumes,
    description_marker,
    owner_from_description,
)
from virtplane.providers.marker import is_pending_label, pending_label, restore_from, with_restore
from virtplane.providers.proxmox import cloudinit as pve_cloudinit
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.config import (
    EFI_VARS,
    NetworkNames,
    create_config,
    disk_slots,
    enrolled_keys,
    machine_type,
    network_names,
    new_slot,
    split_options,
    vm_state,
    volumes_of,
)
from virtplane.providers.proxmox.config_writer import ConfigWriter
from virtplane.providers.proxmox.devices import (
    DeviceWriter,
    device_config,
    hostpci_entries,
    is_hostpci_slot,
    is_q35,
    kind_of,
    needs_devices,
)
from virtplane.providers.proxmox.faults import OutcomeUnknown
from virtplane.providers.proxmox.guest_create import GuestCreator
from virtplane.providers.proxmox.guest_state import GuestReader
from virtplane.providers.proxmox.guests import Guests, finish_clone
from virtplane.providers.proxmox.ownership import encode_tags, has_marker_tag, user_tags
from virtplane.providers.proxmox.pci_reader import PciReader
from virtplane.providers.proxmox.reconfigure import NoFreeSlot, reconfigure
from virtplane.providers.proxmox.settings import ProxmoxSettings
from virtplane.providers.proxmox.unexpressed import unexpressed
from virtplane.providers.proxmox.vm_check import find_sources, vm_problems
from virtplane.providers.proxmox.vm_power import SHUTDOWN_SECONDS, Power
from virtplane.providers.proxmox.vm_reader import VmReader, VmRow
from virtplane.providers.proxmox.vm_rules import REPLACEABLE, vm_rule
from virtplane.providers.proxmox.vmids import VmidAllocator
from virtplane.providers.vm_rules import top_field
from virtplane.slots import resolve, resolve_vm
from virtplane.specs import CREATE_ONLY, DiskSpec, Spec, VirtualMachineSpec


@dataclass
class VmHandle:
    """The driver's reference to a live VM: where it is, its configuration as read, and whether it is ours."""

    row: VmRow
    config: dict[str, Any]
    ours: bool


class VirtualMachineDriver(KindDriver):
    """**Thread safety.** create, update and delete of different VMs run concurrently through one driver: each call
    works on its own VM's path and keeps its state in locals; the shared pieces are thread-safe: the HTTP client
    pools its connections, the VMID allocator and the cluster facts are guarded by locks, and ``_names`` and
    ``_rows`` are only written by ``observe``/``check``, which run before apply starts."""

    kind = "VirtualMachine"
    shutdown_seconds = SHUTDOWN_SECONDS
    replaceable = REPLACEABLE
    delivers = frozenset({"cloud_init"})  # cloud-init: docs/cloud-init.md

    def __init__(self, client: PveClient, cluster: Cluster, settings: ProxmoxSettings,
                 vmids: VmidAllocator | None = None):
        self._client = client
        self._cluster = cluster
        self._settings = settings
        self._reader = VmReader(client)
        self._power = Power(client)
        self._vmids = vmids or VmidAllocator(client)
        self._creator = GuestCreator(client, self._reader, self._vmids, settings)
        self._writer = ConfigWriter(client)
        self._guests = Guests(client, self._reader, self._power, settings.endpoint_name)
        self._pci = PciReader(client)
        self._guest_state = GuestReader(client)
        self._names = NetworkNames(settings.bridge, {})  # the declared networks, as of the last observe/check
        self._declared: Mapping[str, Spec] = {}  # the declared VMs, as of the last observe/check
        self._rows: list[VmRow] = []  # the last listing, for check() (clone sources)

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._cluster.refresh()
        self._pci.refresh()
        self._names = network_names(self._settings.bridge, declared)
        self._declared = declared.get(self.kind, {})
        wanted = set(declared.get(self.kind, {}))
        self._rows = self._reader.rows()
        self._vmids.note_taken(row.vmid for row in self._rows)
        candidates = [row for row in self._rows if not row.template
                      and (has_marker_tag(row.tags) or row.name in wanted or is_pending_label(row.name))]
        configs = self._reader.configs(candidates, wanted)
        return self._guests.sort(stack, candidates, configs, {name: name for name in wanted}, self._observed)

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """One ``/cluster/resources`` listing and the configurations of the VMIDs asked for, concurrently. A VM
        whose marker names ``stack`` is ours (named by its resource); any other is read as it is, by its name."""
        wanted = {int(vmid) for vmid in ids if str(vmid).isdigit()}
        return self._by_vmid(stack, declared, lambda row: row.vmid in wanted, "to read VMs by VMID")

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every VM (templates not), by VMID: one listing and every VM's configuration, concurrently."""
        return self._by_vmid(stack, declared, lambda row: True, "to list every VM")

    def _by_vmid(self, stack: str, declared: Declared, wanted: Any, why: str) -> dict[str, Observed]:
        self._names = network_names(self._settings.bridge, declared)
        self._declared = declared.get(self.kind, {})
        rows = [row for row in self._reader.rows(why) if wanted(row) and not row.template]
        configs = self._reader.configs(rows, ())
        found: dict[str, Observed] = {}
        for row in rows:
            config = configs.get(row.vmid)
            if config is None:
                continue
            owner = owner_from_description(config.get("description"))
            ours = owner is not None and owner.stack == stack
            observed = self._observed(row, config, owner, ours=ours)
            if ours and owner is not None:
                observed.name = owner.resource
            found[str(row.vmid)] = observed
        return found

    def _observed(self, row: VmRow, config: dict[str, Any], owner: Owner | None, ours: bool) -> Observed:
        name = owner.resource if ours and owner is not None else row.name
        state = self._state(row, config, self._declared.get(name))
        complete = not ours or has_marker_tag(config.get("tags"))
        extra = unexpressed(config)
        if any(is_hostpci_slot(key) for key in config):
            pci = self._pci.view([row.node])
            extra += [f"{entry.key} (a PCI device passed through that is neither a GPU nor an SR-IOV function)"
                      for entry in hostpci_entries(config) if kind_of(entry, row.node, pci) is None]
        return Observed(row.name, VmHandle(row, config, ours), owner, state, marker_complete=complete,
                        id=str(row.vmid), unexpressed=extra,
                        restore_power=restore_from(config.get("description")) if ours else None)

    def _state(self, row: VmRow, config: Mapping[str, Any], declared: Spec | None) -> dict[str, Any]:
        """The VM in spec shape; its PCI devices are told apart with its node's PCI list (read only when it has
        any), and its SR-IOV NICs take the declared ones' networks (a VF holds none: devices.py)."""
        pci = self._pci.view([row.node]) if any(is_hostpci_slot(key) for key in config) else None
        vm_spec = declared if isinstance(declared, VirtualMachineSpec) else None
        sriov = [nic for nic in (vm_spec.nics if vm_spec else None) or [] if nic.adapter == "sriov"]
        state = vm_state(config, row.node, row.running, self._names, pci, sriov)
        state["cloud_init"] = pve_cloudinit.observed_digest(config, row.name, vm_spec.cloud_init if vm_spec else None,
                                                            self._read_snippet)
        return state

    # ---- placement and slots -------------------------------------------------------------------------

    def place(self, spec: Spec, placed: Mapping[str, int]) -> str | None:
        """The endpoint's ``node`` setting, else the online node with the most free memory minus ``placed`` (MiB
        this plan already put there) that has every storage the disks name; None for a clone (its source's
        node)."""
        vm_spec = cast(VirtualMachineSpec, spec)
        if vm_spec.clone_from:
            return None
        if self._settings.node:
            return self._settings.node
        named = {disk.storage for disk in vm_spec.disks or [] if disk.storage}
        try:
            return self._cluster.place(vm_spec.memory or 0, named, placed)
        except ProviderError:
            return None  # no node fits: check() names the VM and the field (a storage, or no node online)

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        return new_slot(collection, item, taken)

    # ---- creating ------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        """Returns the VMID (as a string) and the new VM read back, with its node."""
        vm_spec = cast(VirtualMachineSpec, spec)
        if vm_spec.clone_from:  # its slots are resolved against the clone, once it exists
            row = self._clone(owner, vm_spec)
        else:
            row = self._create(owner, resolve_vm(vm_spec, None, self.new_slot).with_creation_defaults())
        state = self._state(row, self._reader.config(row), vm_spec)
        return Created(str(row.vmid), {**state, "node": row.node})

    def _create(self, owner: Owner, vm_spec: VirtualMachineSpec) -> VmRow:
        name = owner.resource
        node = vm_spec.node
        if node is None:  # not placed at plan time (a direct call): place now, remembered for this run
            named = {disk.storage for disk in vm_spec.disks or [] if disk.storage}
            node = self._settings.node or self._cluster.place(vm_spec.memory or 0, named, remember=True)
        storages = [disk.storage or self._cluster.default_storage(node) for disk in vm_spec.disks or []]
        efi_storage = None
        if vm_spec.firmware == "uefi":
            efi_storage = storages[0] if storages else self._cluster.default_storage(node)
        config = create_config(vm_spec, storages, efi_storage, self._names)
        if vm_spec.cloud_init is not None:
            drive_storage = storages[0] if storages else self._cluster.default_storage(node)
            settings, _ = self._cloud_init_settings(vm_spec, owner, config, drive_storage)
            config.update(settings)
        if needs_devices(vm_spec.gpus, vm_spec.nics):
            try:
                config.update(device_config(vm_spec.gpus or [], vm_spec.nics or [],
                                            self._device_writer(node, vm_spec.machine)))
            except ValueError as exc:
                raise ProviderError(f"Proxmox cannot create VM {name} on node {node}: its {exc}") from None
        config.update(name=name, description=description_marker(owner))
        row = self._creator.allocate(owner, node, f"/nodes/{node}/qemu", "vmid", config,
                             f"create VM {name} with VMID <vmid> on node {node}")
        if vm_spec.power == "on":
            self._power.start(row.path, name)
            row = replace(row, status="running")
        return row

    def _clone(self, owner: Owner, spec: VirtualMachineSpec) -> VmRow:
        name, source_name = owner.resource, str(spec.clone_from)
        sources = find_sources(source_name, self._reader.rows(f"to find '{source_name}', the source of VM {name}"))
        if len(sources) != 1:
            found = f"{len(sources)} VMs" if sources else "no VM or template"
            raise ProviderError(f"VM {name} clones '{source_name}', but {found} of that name exist on Proxmox "
                                f"endpoint '{self._settings.endpoint_name}' (exactly one is needed)")
        source = sources[0]
        if spec.linked_clone and not source.template:
            raise ProviderError(f"VM {name} is a linked clone of '{source_name}', but that is a VM (VMID "
                                f"{source.vmid}), not a template; linked clones need a template")
        node = spec.node or source.node
        # The clone call takes no tags: the VM bears a pending name until the update that tags it renames it
        # (providers/marker.py), so an apply killed in between is found by the next run's listing.
        data: dict[str, Any] = {"name": pending_label(name), "description": description_marker(owner),
                                "full": 0 if spec.linked_clone else 1}
        if node != source.node:
            data["target"] = node
        if not spec.linked_clone:  # the one storage the disks it copies go to (creation_problems refused others)
            theirs = vm_state(self._reader.config(source), source.node, False, self._names)["disks"]
            declared = sorted(self._clone_storages(spec, theirs))
            storage = declared[0] if declared else self._settings.storage
            if storage:
                data["storage"] = storage
        kind = "linked clone" if spec.linked_clone else "full clone"
        row = self._creator.allocate(owner, node, f"{source.path}/clone", "newid", data,
                             f"make VM {name} with VMID <vmid> as a {kind} of {source_name} (VMID {source.vmid})")
        observed = self._observed(row, self._reader.config(row), owner, ours=True)
        observed.marker_complete = False  # the tag is written by the update below
        finish_clone(self, observed, spec, CREATE_ONLY[self.kind], f"VM {name} clones '{source_name}'")
        return self._reader.row_at(row.node, row.vmid, name) or row

    # ---- updating ------------------------------------------------------------------------------------

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        handle = self._guard(observed, "update")
        vm_spec = cast(VirtualMachineSpec, spec)
        name, row = observed.name, handle.row
        fields = {top_field(change.path) for change in changes}
        node, running = row.node, row.running

        def storage_for(disk: DiskSpec) -> str:
            return disk.storage or self._cluster.default_storage(node)

        def efi_storage() -> str:
            disks = disk_slots(handle.config)
            if disks and disks[0].storage:
                return disks[0].storage
            return storage_for(vm_spec.disks[0]) if vm_spec.disks else self._cluster.default_storage(node)

        try:
            writer = pci = None
            if {"gpus", "nics"} & fields and (vm_spec.gpus or any(is_hostpci_slot(key) for key in handle.config)
                                              or any(nic.adapter == "sriov" for nic in vm_spec.nics or [])):
                writer = self._device_writer(node, vm_spec.machine or handle.config.get("machine"))
                pci = self._pci.view([node])
            plan = reconfigure(vm_spec, handle.config, changes, self._names, storage_for, efi_storage,
                               finish_marker=None if observed.marker_complete or observed.owner is None
                               else observed.owner.resource, devices=writer, node=node, pci=pci)
        except NoFreeSlot as exc:
            raise ProviderError(f"Proxmox cannot update VM {name}: {exc}") from None
        reinit = "cloud_init" in fields and vm_spec.cloud_init is not None and observed.owner is not None
        if reinit:
            settings, deletes = self._cloud_init_settings(vm_spec, cast(Owner, observed.owner),
                                                          {**handle.config, **plan.settings}, efi_storage())
            plan.settings.update(settings)
            plan.delete += [key for key in deletes if key not in plan.delete]
        power_off = any(self.rule(change) is Rule.POWER_OFF for change in changes)
        description = str(handle.config.get("description") or "")

        def record(path: str, power: str | None) -> None:  # the power record of providers/marker.py
            self._describe(path, name, with_restore(description, power))

        with self._power.change(row.path, name, running, vm_spec.power, power_off, record,
                                observed.restore_power is not None) as guest:
            if "node" in fields and vm_spec.node and vm_spec.node != node:
                node = self._guests.migrate(row, vm_spec.node, name)
            guest.path = f"/nodes/{node}/qemu/{row.vmid}"
            self._writer.apply(guest.path, name, plan)
            if reinit:  # PVE builds the drive again from the options (and applies those pending on a running VM)
                self._client.put(f"{guest.path}/cloudinit", f"regenerate the cloud-init drive of VM {name}")
                if "cicustom" in plan.delete:
                    self._remove_snippets(handle.config)

    def _describe(self, path: str, name: str, description: str) -> None:
        """Write the VM's description with PVE's synchronous configuration call (``PUT …/config``: no task for a line
        of text); sending the same value twice is harmless."""
        what = f"write the description of VM {name}"
        try:
            self._client.put(f"{path}/config", what, {"description": description})
        except OutcomeUnknown:
            self._client.put(f"{path}/config", what, {"description": description})

    def _device_writer(self, node: str, machine: Any) -> DeviceWriter:
        """Writes GPUs and SR-IOV NICs of a VM on ``node``: mapping ids from the cluster, ``pcie=1`` on q35, free
        VFs picked among those no VM on the node passes through (their configurations are read only then)."""

        def configs() -> list[dict[str, Any]]:
            rows = [row for row in self._reader.rows(f"to find the VFs in use on node {node}") if row.node == node]
            return list(self._reader.configs(rows, ()).values())

        return DeviceWriter({str(row.get("id")) for row in self._pci.mappings()}, is_q35(machine_type(machine)),
                            lambda pf: self._pci.pick_vf(node, pf, configs),
                            lambda gpu: self._pci.pick_gpu(node, gpu.vendor, gpu.mode == "vgpu", configs))

    # ---- deleting ------------------------------------------------------------------------------------

    def delete(self, observed: Observed) -> None:
        handle = self._guard(observed, "delete")
        self._guests.delete(handle.row, observed.name, {})
        self._remove_snippets(handle.config)

    # ---- adopting ------------------------------------------------------------------------------------

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """The marker line in the description (kept as it is otherwise) and the marker tag, in one config write."""
        handle = observed.handle
        if not isinstance(handle, VmHandle) or observed.owner is not None:
            raise OwnershipError(f"refusing to adopt VM {observed.name}: it already carries a virtplane ownership "
                                 "marker")
        description = str(handle.config.get("description") or "")
        lines = [description_marker(owner), *([description] if description else [])]
        self._writer.configure(handle.row.path, f"adopt VM {observed.name}",
                               {"description": "\n".join(lines),
                                "tags": encode_tags(user_tags(handle.config.get("tags")))}, [])

    # ---- cloud-init ----------------------------------------------------------------------------------

    def _cloud_init_settings(self, spec: VirtualMachineSpec, owner: Owner, config: Mapping[str, Any],
                             drive_storage: str) -> tuple[dict[str, Any], list[str]]:
        """The config keys that deliver the VM's cloud-init (its snippets written first, when it needs them) and the
        options to delete; a cloud-init drive is added when the VM has none."""
        assert spec.cloud_init is not None
        name = owner.resource
        try:
            delivered = pve_cloudinit.delivery(spec.cloud_init, name, owner, self._settings.snippets_storage, config)
        except ValueError as exc:
            raise ProviderError(f"VirtualMachine '{name}': field 'cloud_init': {exc}") from None
        for file, text in delivered.snippets.items():
            self._write_snippet(file, text)
        settings: dict[str, Any] = dict(delivered.settings)
        if pve_cloudinit.drive_slot(config) is None:
            slot = pve_cloudinit.free_drive_slot(config)
            if slot is None:
                raise ProviderError(f"Proxmox cannot give VM {name} a cloud-init drive: ide0 to ide3 are all taken")
            settings[slot] = f"{drive_storage}:cloudinit"
        return settings, delivered.delete

    def _snippet_path(self, storage: str, file: str) -> str | None:
        if storage != self._settings.snippets_storage or not self._settings.snippets_path or "/" in file:
            return None
        return os.path.join(self._settings.snippets_path, file)

    def _write_snippet(self, file: str, text: str) -> None:
        path = self._snippet_path(str(self._settings.snippets_storage), file)
        assert path is not None
        try:
            with open(f"{path}.tmp", "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(f"{path}.tmp", path)
        except OSError as exc:
            raise ProviderError(f"cannot write cloud-init snippet {path} (storage {self._settings.snippets_storage}'s "
                                f"snippets directory): {exc.strerror}") from None

    def _read_snippet(self, storage: str, file: str) -> str | None:
        path = self._snippet_path(storage, file)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as source:
                return source.read()
        except OSError:
            return None

    def _remove_snippets(self, config: Mapping[str, Any]) -> None:
        """Remove the snippets virtplane wrote for a VM (those its ``cicustom`` names, with our file names)."""
        for storage, file in pve_cloudinit.snippet_volumes(config.get("cicustom")).values():
            path = self._snippet_path(storage, file)
            if path is not None and file.startswith(pve_cloudinit.SNIPPET_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    # ---- rules and checks ----------------------------------------------------------------------------

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        vm_spec = cast(VirtualMachineSpec, spec)
        self._names = network_names(self._settings.bridge, declared)
        self._declared = declared.get(self.kind, {})
        if vm_spec.clone_from and not self._rows:
            self._rows = self._reader.rows()
        root = self._settings.api_token_id is None and self._settings.username == "root@pam"
        return vm_problems(vm_spec, self._names, self._cluster, self._rows, self._settings.node,
                           lambda: {str(row.get("id")) for row in self._pci.mappings()},
                           None if root else self._settings.principal,
                           snippets=(self._settings.snippets_storage, self._settings.snippets_path))

    def creation_problems(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """A clone's disks: a full clone can put the disks it copies on one other storage (the clone call's
        ``storage``); nothing else of them can differ from the template's (virtplane/clones.py)."""
        vm_spec = cast(VirtualMachineSpec, spec)
        sources = find_sources(str(vm_spec.clone_from), self._rows) if vm_spec.clone_from else []
        if len(sources) != 1 or not vm_spec.disks:
            return []  # no clone, or check() names the missing source
        source = sources[0]
        theirs = vm_state(self._reader.config(source), source.node, False, self._names)["disks"]
        settable = frozenset() if vm_spec.linked_clone else frozenset({"storage"})
        problems = clone_disk_problems(vm_spec, source.name, theirs, settable, self.new_slot, "Proxmox")
        if not vm_spec.linked_clone and len(self._clone_storages(vm_spec, theirs)) > 1:
            problems.append(("disks", f"a Proxmox full clone puts every disk it copies on one storage (the clone "
                                      f"call's storage), so the disks of '{source.name}' cannot be declared on "
                                      "different storages; declare one storage for them"))
        return problems

    def _clone_storages(self, spec: VirtualMachineSpec, theirs: list[dict[str, Any]]) -> set[str]:
        """The storages declared for the disks a clone copies from its template (by slot)."""
        slots = {disk["slot"] for disk in theirs}
        declared = resolve("disks", [disk.model_dump() for disk in spec.disks or []], theirs, self.new_slot)
        return {disk["storage"] for disk in declared if disk["slot"] in slots and disk.get("storage")}

    def rule(self, change: FieldChange) -> Rule:
        return vm_rule(change)

    def volumes(self, observed: Observed) -> Volumes:
        handle = observed.handle
        config = handle.config if isinstance(handle, VmHandle) else {}
        return Volumes(volumes_of(config))

    def destroys(self, observed: Observed, change: FieldChange) -> list[str]:
        """Secure boot on or off re-makes the EFI vars disk: PVE enrolls the keys only when it makes the disk."""
        handle = observed.handle
        config = handle.config if isinstance(handle, VmHandle) else {}
        current = config.get("efidisk0")
        if change.path != "secure_boot" or not current or change.new is None or change.new == enrolled_keys(config):
            return []
        return [f"efidisk0 ({split_options(str(current))[0]}): {EFI_VARS}; PVE enrolls the keys only when it makes "
                "the EFI vars disk (pre-enrolled-keys)"]
    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        return self._guest_state.states([(live.name, live.handle.row, live.handle.config) for live in observed
                                    if isinstance(live.handle, VmHandle)])

    @staticmethod
    def _guard(observed: Observed, action: str) -> VmHandle:
        handle = observed.handle
        if not isinstance(handle, VmHandle) or not handle.ours:
            raise OwnershipError(f"refusing to {action} VM {observed.name}: it carries no virtplane ownership "
                                 "marker of this stack, so it was not created by it")
        return handle
