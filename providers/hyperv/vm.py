"""The VirtualMachine kind on Hyper-V: observe in one pipeline, create, update and delete by VMId.

- Observe: ONE round trip of statements (Get-VM; and, piped from Get-VM, processors, hard disk drives, their
  VHDs, network adapters, their VLAN settings and Generation 2 firmware), joined on VMId in Python. VMs are
  never looked up by name (names are not unique; ``Get-VM -Name`` takes wildcards).
- Ownership: the marker is a line of the VM's Notes. New-VM cannot set Notes, so a VM is created under a short
  pending name (``virtplane-pending:#<hash of stack and resource>``: names are at most 100 characters) with its
  marker written into Notes by the same pipeline (``New-VM | Set-VM -Notes``), configured, and then given its
  real name. A VM still pending on the next run was interrupted before it was finished: it held no data yet, so
  the driver removes it (and the VHDs it made, named by its VMId) and creates it again — never a duplicate, never
  an orphan.
- Errors are told apart by their FullyQualifiedErrorId, category and target (client.HvError), never by text. A
  read error about a VM the stack neither owns nor declares (a pass-through disk, a VHD that is gone, a VHD on a
  share the host cannot open) is left alone; about one of the stack's VMs it is one sentence naming VM and disk.
- Storage: Generation 1 (``bios``) VMs boot from IDE only, so their first disk defaults to ``ide0:0`` (IDE 1:0
  holds the DVD drive); later disks, and every disk of a Generation 2 VM, go on SCSI. A disk on SCSI controller
  N makes the driver add controllers (Add-VMScsiController, VM off) until the VM has N+1.
- Checkpoints: VMs virtplane creates have automatic checkpoints off (``-CheckpointType Disabled`` when they
  hold devices); a disk's chain of differencing disks is read back to its base, and resizing, replacing or
  deleting a VM that has checkpoints is refused in one sentence (Remove-VM would leave every .avhdx behind).
- Nested virtualization: the VM's network adapters get MAC address spoofing, which nested guests need to reach
  the network (Microsoft, "Run Hyper-V in a virtual machine with nested virtualization": networking options).
- Failover Cluster: Get-VM sees one node's VMs; a clustered VM of the stack is refused (provider.py refuses a
  cluster node at connect).
- Disks: VHDX files named ``<VMId>-<slot>.vhdx`` in the endpoint's ``vhd_path`` (default: the host's virtual
  hard disk path), so destroy removes exactly the disks virtplane made.
- Power: a change that needs the VM off shuts it down cleanly (``Stop-VM -Force``), then turns it off after
  ``shutdown_timeout``; the power state is restored even when the change fails.

- Devices (devices.py): GPUs by Discrete Device Assignment or GPU partitioning, read back in the same observe
  pipeline; plan-time rules for nested virtualization, GPU partitioning, DDA and SR-IOV in vm_checks.py.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any, cast

from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError
from virtplane.providers import nocloud
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
)
from virtplane.providers.hyperv import cidata, devices, vm_checks
from virtplane.providers.hyperv.client import (
    Cmd,
    HvError,
    HypervClient,
    PsObject,
    Statement,
    by_type,
    i64,
    pipe,
    u64,
    vm_by_id,
)
from virtplane.providers.hyperv.clone import clone_basis, find_source
from virtplane.providers.hyperv.settings import HypervSettings
from virtplane.providers.hyperv.vm_checks import HostVersions, LiveVm, host_versions_from
from virtplane.providers.hyperv.vm_state import (
    GiB,
    MiB,
    Switches,
    drive_slot,
    is_pending,
    notes_with,
    owner_from_notes,
    parent_adapter,
    parse_disk_slot,
    pending_name,
    pending_owner,
    vm_state,
)
from virtplane.providers.marker import restore_from, with_restore
from virtplane.providers.vm_rules import VmRules, top_field
from virtplane.slots import next_numbered, resolve_vm
from virtplane.specs import CREATE_ONLY, NetworkSpec, Spec, VirtualMachineSpec

vm_rule = VmRules(hypervisor="Hyper-V",
                  power_off=frozenset({"cpus", "memory", "nested_virtualization", "secure_boot"}),
                  replace=frozenset({"firmware", "machine"}),
                  disk_replace=frozenset({"storage", "thin", "bus"}))
_NOT_ON_HYPERV = {"sockets": "Hyper-V has no virtual sockets setting; leave sockets unset",
                  "guest_os": "Hyper-V VMs have no guest OS setting; leave guest_os unset"}
_GEN1_ONLY_IDE = "Generation 2 VMs have SCSI controllers only"
# Hyper-V's adapters are the synthetic network adapter and, on Generation 1 only, the legacy one
# (Add-VMNetworkAdapter -IsLegacy, an emulated DEC 21140): no Intel e1000 model to choose.
_NO_INTEL_NIC = ("{adapter} adapters do not exist on Hyper-V (choices: paravirtual, the synthetic network adapter; "
                 "sriov)")


class VmHandle:
    def __init__(self, vm_id: str, vhd_paths: dict[str, str], ours: bool, pending: bool, notes: str | None,
                 live: LiveVm | None = None, gpus: list[dict[str, Any]] | None = None, scsi_controllers: int = 0,
                 checkpoints: list[str] | None = None) -> None:
        self.vm_id = vm_id
        self.notes = notes
        self.vhd_paths = vhd_paths  # slot -> the VHD file at the base of its chain (the one virtplane made)
        self.ours = ours
        self.pending = pending
        self.live = live or LiveVm(None, False, 1)
        self.gpus = gpus or []  # the GPUs read back, spec-shaped
        self.scsi_controllers = scsi_controllers
        self.checkpoints = checkpoints or []  # names
        self.instances: dict[str, str] = {}  # an assigned device's location path (lower case) -> its instance id
        self.dvds: dict[tuple[str, int, int], str] = {}  # DVD drive (controller, number, location) -> its ISO or ""


class VirtualMachineDriver(KindDriver):
    """Hyper-V VMs by VMId.

    Thread safety (apply calls create/update/delete from several threads): the client serializes pipelines on
    the endpoint's runspace pool, and each call works only on its own VM (addressed by VMId) and its own VHD
    files (named by VMId). The driver's shared state — the switches and live VM facts of the last observe,
    the host's versions — is written by observe and check at plan time, before apply starts; create, update
    and delete only read it (create reads its VM back by id with the switches as they are, never replacing
    them). During apply ``host_versions`` may fill its cache from two threads at once, which writes equal
    values."""

    kind = "VirtualMachine"
    replaceable = vm_rule.replaceable
    delivers = frozenset({"cloud_init"})  # cloud-init: docs/cloud-init.md

    def __init__(self, client: HypervClient, settings: HypervSettings, host: Any) -> None:
        self._client = client
        self._settings = settings
        self._host = host  # the provider's HostInfo: name and default VHD path
        self._switches = Switches(settings.switch)
        self._live: dict[str, LiveVm] = {}  # by VM name, from the last observe: for the plan-time checks
        self._names: list[str] | None = None  # every VM's name, from the last observe: clone sources
        self._versions: HostVersions | None = None
        self.shutdown_seconds = settings.shutdown_timeout

    # ---- reading -------------------------------------------------------------------------------------

    def _read_all(self, what: str, only: str | None = None) -> list[tuple[PsObject, dict[str, Any]]]:
        """Every VM (or ``only`` the one with that VMId) with its parts, in one round trip; each statement keeps
        only the properties read here (``Select-Object -Property``): a VirtualMachine object is large, and at
        1,000 VMs parsing the reply is most of the time. A VM whose disks have checkpoints costs one more round
        trip for the whole host (the chains' parents by path); so does a partitioned GPU (its partition count).
        Read errors are attached to the VM they are about (``parts["errors"]``); one about no VM raises."""
        first = (vm_by_id(only),) if only else ()
        statements = [pipe(*(first + commands[1:] if first else commands),
                           Cmd("Select-Object", {"Property": list(properties)}))
                      for commands, properties in _OBSERVE]
        result = self._client.run(statements, what, tolerate=_read_error, retry_read=True)
        objects = result.objects + self._parents(result.objects, what)
        joined = join_parts(objects)
        _attach_errors(joined, [e for e in result.errors if not _generation_one_firmware(e)], self._settings)
        counts: dict[str, int] = {}
        if any(parts["partitions"] for _, parts in joined):  # a profile is the GPU's partition count: ask for it
            gpus = self._client.run([pipe(Cmd("Get-VMHostPartitionableGpu"))], "read the partitionable GPUs",
                                    retry_read=True)
            counts = {g.text("Name") or "": g.number("PartitionCount") or 0 for g in gpus.objects}
        for _, parts in joined:
            parts["gpus"] = devices.observed_gpus(parts["assigned"], parts["partitions"], counts)
        return joined

    def _parents(self, objects: list[PsObject], what: str) -> list[PsObject]:
        """The parents of differencing disks, read by path (-LiteralPath is not Get-VHD's: -Path takes no
        wildcards there), until every chain reaches its base."""
        found: list[PsObject] = []
        known = {str(o.get("Path") or "").lower() for o in objects if _short(o) == "VirtualHardDisk"}
        wanted = {str(o.get("ParentPath")) for o in objects if _short(o) == "VirtualHardDisk" and o.get("ParentPath")}
        while wanted - {p for p in wanted if p.lower() in known}:
            paths = sorted(p for p in wanted if p.lower() not in known)
            read = self._client.run([pipe(Cmd("Get-VHD", {"Path": paths}),
                                          Cmd("Select-Object", {"Property": list(_VHD_PROPERTIES)}))],
                                    f"{what} (the checkpoints' parent disks)", retry_read=True,
                                    tolerate=lambda error: error.command.lower() == "getvhd")
            found += read.objects
            known |= {p.lower() for p in paths}
            wanted = {str(o.get("ParentPath")) for o in read.objects if o.get("ParentPath")}
        return found

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        self._switches = _switches(self._settings, declared)
        self._versions = None  # read again when a check needs it
        specs = declared.get(self.kind, {})
        wanted = set(specs)
        result = ObserveResult()
        live: dict[str, LiveVm] = {}
        names: list[str] = []
        for vm, parts in self._read_all("read the virtual machines"):
            name = vm.text("Name") or ""
            names.append(name)
            pending = pending_owner(name, vm.text("Notes"), stack, wanted)
            owner = pending or (None if is_pending(name) else owner_from_notes(vm.text("Notes")))
            if owner is not None and owner.resource in specs:
                parts["gpus"] = devices.order_like(parts["gpus"], cast(VirtualMachineSpec, specs[owner.resource]).gpus)
            if owner is not None and owner.stack == stack:
                self._refuse_unreadable(owner.resource, vm, parts)
                observed = self._observed(vm, parts, owner, ours=True, pending=pending is not None)
                if not pending:
                    live[owner.resource] = observed.handle.live
                if owner.resource in result.owned:
                    other = result.owned[owner.resource]
                    raise OwnershipError(
                        f"two VMs on Hyper-V endpoint '{self._settings.endpoint_name}' carry the ownership marker of "
                        f"VM {owner.resource} of stack {stack}: '{other.name}' ({other.id}) and '{name}' "
                        f"({observed.id}); delete the one that should not exist")
                result.owned[owner.resource] = observed
            elif name in wanted:
                result.foreign[name] = self._observed(vm, parts, owner, ours=False, pending=False)
        self._live, self._names = live, names
        return result

    def _refuse_unreadable(self, name: str, vm: PsObject, parts: dict[str, Any]) -> None:
        """A VM of the stack that is clustered or whose disks cannot be read is one sentence: the plan cannot be right
        without it. (A VM not ours that holds a declared name is refused by the engine anyway, naming it.)"""
        where = f"VirtualMachine '{name}'"
        if vm.flag("IsClustered"):
            raise ProviderError(f"{where}: the VM is a Failover Cluster role on Hyper-V endpoint "
                                f"'{self._settings.endpoint_name}', and virtplane does not manage clustered VMs yet "
                                "(Get-VM sees one node, so a live migration would look like a deletion)")
        for slot, error in parts.get("errors", []):
            raise ProviderError(f"{where}: disk {slot} cannot be read on Hyper-V endpoint "
                                f"'{self._settings.endpoint_name}' ({error.category}): {error}")

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """VMs by VMId, keyed by the ids as asked (a GUID in any case). Networks are named after ``declared``
        without touching what observe and check keep for apply (the plugin may read while creates run)."""
        return self._read_ids(stack, ids, _switches(self._settings, declared))

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every VM by VMId, in the one pipeline observe uses."""
        switches = _switches(self._settings, declared)
        found: dict[str, Observed] = {}
        for vm, parts in self._read_all("read every virtual machine"):
            owner = pending_owner(vm.text("Name"), vm.text("Notes"), stack, []) or owner_from_notes(vm.text("Notes"))
            ours = owner is not None and owner.stack == stack
            observed = self._observed(vm, parts, owner, ours=ours, pending=False, switches=switches)
            found[str(observed.id)] = observed
        return found

    def _read_ids(self, stack: str, ids: list[str], switches: Switches, *, only: str | None = None
                  ) -> dict[str, Observed]:
        wanted = {str(i).lower(): i for i in ids}
        found: dict[str, Observed] = {}
        for vm, parts in self._read_all("read virtual machines by id", only):
            vm_id = str(vm.get("VMId") or vm.get("Id")).lower()
            if vm_id in wanted:
                owner = pending_owner(vm.text("Name"), vm.text("Notes"), stack, []) or owner_from_notes(
                    vm.text("Notes"))
                ours = owner is not None and owner.stack == stack
                found[wanted[vm_id]] = self._observed(vm, parts, owner, ours=ours, pending=False, switches=switches)
        return found

    def _observed(self, vm: PsObject, parts: dict[str, Any], owner: Owner | None, *, ours: bool,
                  pending: bool, switches: Switches | None = None) -> Observed:
        state = vm_state(vm, parts.get("processor"), parts.get("disks", []), parts.get("nics", []),
                         parts.get("firmware"), self._host.name, switches or self._switches)
        vm_id = str(vm.get("VMId") or vm.get("Id"))
        paths = {drive_slot(drive): _own_base(chain, vm_id) or drive.text("Path") or ""
                 for drive, chain in parts.get("disks", [])}
        name = owner.resource if pending and owner is not None else (vm.text("Name") or "")
        state["gpus"] = parts.get("gpus", [])
        live = LiveVm(vm.text("Version"), bool(vm.flag("DynamicMemoryEnabled")), vm.number("Generation") or 1)
        handle = VmHandle(vm_id, paths, ours, pending, vm.text("Notes"), live, state["gpus"],
                          scsi_controllers=len(parts.get("scsi", [])), checkpoints=parts.get("checkpoints", []))
        handle.instances = {(d.text("LocationPath") or "").lower(): d.text("InstanceID") or ""
                            for d in parts.get("assigned", [])}
        handle.dvds = {cidata.controller_of(d): d.text("Path") or "" for d in parts.get("dvds", [])}
        delivered = [path for path in handle.dvds.values() if cidata.ours(path, vm_id)]
        state["cloud_init"] = cidata.digest_of(delivered[0]) if delivered else None
        others = [f"{kind.lower()}{number}:{location} (a DVD drive holding {path})"
                  for (kind, number, location), path in handle.dvds.items() if path and not cidata.ours(path, vm_id)]
        return Observed(name, handle, owner, state, marker_complete=not pending, id=vm_id, unexpressed=others,
                        restore_power=restore_from(vm.text("Notes")) if ours else None)

    # ---- creating ------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        vm_spec = cast(VirtualMachineSpec, spec)
        if vm_spec.clone_from:
            return self._clone(owner, vm_spec)
        return self._create(owner, vm_spec)

    def _create(self, owner: Owner, vm_spec: VirtualMachineSpec, source: tuple[Any, dict[str, Any]] | None = None
                ) -> Created:
        """Create the VM; ``source`` (a golden image's VM and parts): its disks and adapters instead of the
        declared ones (clone.py)."""
        name = owner.resource
        generation = 2 if vm_spec.firmware == "uefi" else 1
        memory = i64((vm_spec.memory or 1024) * MiB)
        params: dict[str, Any] = {"Name": pending_name(owner), "MemoryStartupBytes": memory,
                                  "Generation": generation, "NoVHD": True}
        version = vm_checks.creation_version(vm_spec, self.host_versions()) if _needs_version(vm_spec) \
            else vm_spec.machine
        if version:
            params["Version"] = version
        host_devices = self._host_devices() if vm_spec.gpus else None
        if vm_spec.gpus and host_devices is not None:  # refuse before anything is made
            self._gpu_statements(_NO_VM, name, [], vm_spec.gpus, host_devices, new_vm=True)
        notes = notes_with(None, owner, vm_spec.tags)
        # one pipeline: the VM exists only with its marker in Notes (a host runs a sent pipeline to its end)
        made = self._client.run([pipe(Cmd("New-VM", params), Cmd("Set-VM", {"Notes": notes, "Passthru": True}))],
                                f"create VM {name}")
        [vm] = by_type(made.objects, "VirtualMachine") or made.objects[:1] or [None]
        if vm is None:
            raise ProviderError(f"Hyper-V did not return the new VM {name}")
        vm_id = str(vm.get("VMId") or vm.get("Id"))
        statements = [pipe(vm_by_id(vm_id), Cmd("Get-VMNetworkAdapter"), Cmd("Remove-VMNetworkAdapter"))]
        # automatic checkpoints would turn every disk into a chain of differencing disks at each start; a VM with
        # devices takes no checkpoint at all
        checkpoints: dict[str, Any] = {"AutomaticCheckpointsEnabled": False}
        if vm_spec.gpus:
            checkpoints["CheckpointType"] = "Disabled"
        statements.append(pipe(vm_by_id(vm_id), Cmd("Set-VM", checkpoints)))
        statements += self._settings_statements(vm_id, vm_spec, generation, set(vars(vm_spec)))
        statements += _scsi_controllers(vm_id, vm_spec.disks or [], 1 if generation == 2 else 0)
        for disk in vm_spec.disks or []:
            statements += self._add_disk(vm_id, disk)
        for nic in vm_spec.nics or []:
            statements += self._add_nic(vm_id, nic, spoofing=bool(vm_spec.nested_virtualization))
        if source is not None:
            statements += self._copy_parts(vm_id, source[1], linked=vm_spec.linked_clone)
        if vm_spec.gpus and host_devices is not None:
            statements += self._gpu_statements(vm_id, name, [], vm_spec.gpus, host_devices, new_vm=True)
        if vm_spec.cloud_init is not None:  # the VM is off: a DVD drive can be added
            dvds = {cidata.DEFAULT_DVD: ""} if generation == 1 else {}  # New-VM gives Generation 1 one at IDE 1:0
            statements += self._cloud_init_statements(vm_id, vm_spec, generation, dvds)
        self._client.run(statements, f"configure the new VM {name}")
        self._client.run([pipe(vm_by_id(vm_id), Cmd("Set-VM", {"NewVMName": name}))], f"name VM {name}")
        if vm_spec.power == "on":
            self._start(vm_id, name)
        # read back (that VM only: Get-VM -Id) with the switches the NICs were wired by, so networks carry their
        # declared names
        observed = self._read_ids(owner.stack, [vm_id], self._switches, only=vm_id).get(vm_id)
        outputs = dict(observed.state) if observed else {}
        return Created(vm_id, outputs)

    def _clone(self, owner: Owner, spec: VirtualMachineSpec) -> Created:
        """Make the clone from the golden image's parts under the pending name, write its marker, then apply the
        declared fields the source does not have (matched by slot), as an update."""
        source_vm, parts = find_source(self._read_all(f"find '{spec.clone_from}', the source of VM {owner.resource}"),
                                       str(spec.clone_from), owner.resource, self._settings.endpoint_name)
        if str(source_vm.get("State") or "").lower() != "off" and not spec.linked_clone:
            raise ProviderError(f"VM {owner.resource} is a full copy of '{spec.clone_from}', which is running; Hyper-V "
                                "copies a VM's disks only while it is off (shut the golden image down)")
        source = self._observed(source_vm, parts, None, ours=False, pending=False)
        created = self._create(owner, clone_basis(spec, source.state), (source_vm, parts))
        observed = self._read_ids(owner.stack, [created.id], self._switches, only=created.id).get(created.id)
        if observed is None:
            raise ProviderError(f"VM {owner.resource} vanished right after it was cloned")
        resolved = resolve_vm(spec, observed.state, self.new_slot)
        changes = [c for c in diff(resolved.model_dump(), observed.state, CREATE_ONLY[self.kind])
                   if self.rule(c) is not Rule.REPLACE]  # disks keep the bus and type they were cloned with
        if changes:
            self.update(observed, resolved, changes)
            observed = self._read_ids(owner.stack, [created.id], self._switches, only=created.id).get(created.id)
        return Created(created.id, dict(observed.state) if observed else created.outputs)

    def _copy_parts(self, vm_id: str, parts: dict[str, Any], *, linked: bool) -> list[Any]:
        """The golden image's disks (each a differencing child or a copy, at the same slot) and adapters (the same
        switch and VLAN)."""
        statements: list[Any] = []
        for drive, _ in parts.get("disks", []):
            slot, parent = drive_slot(drive), drive.text("Path") or ""
            controller, number, location = parse_disk_slot(slot)
            path = self._vhd_path(vm_id, slot)
            if linked:
                statements.append(pipe(Cmd("New-VHD", {"Path": path, "ParentPath": parent, "Differencing": True})))
            else:
                statements.append(pipe(Cmd("Convert-VHD", {"Path": parent, "DestinationPath": path,
                                                           "VHDType": "Dynamic"})))
            statements.append(pipe(vm_by_id(vm_id), Cmd("Add-VMHardDiskDrive", {
                "ControllerType": controller, "ControllerNumber": number, "ControllerLocation": location,
                "Path": path})))
        for adapter, vlan in parts.get("nics", []):
            slot, switch = adapter.text("Name") or "", adapter.text("SwitchName")
            statements.append(pipe(vm_by_id(vm_id), Cmd("Add-VMNetworkAdapter",
                                                         {"Name": slot, **({"SwitchName": switch} if switch else {})})))
            mode = str(vlan.get("OperationMode") or "") if vlan is not None else ""
            access = (vlan.number("AccessVlanId") or 0) if vlan is not None and mode.lower() == "access" else 0
            statements.append(self._vlan(vm_id, slot, access))
        return statements

    def _settings_statements(self, vm_id: str, spec: VirtualMachineSpec, generation: int, fields: set[str]
                             ) -> list[Any]:
        statements = []
        processor: dict[str, Any] = {}
        if "cpus" in fields and spec.cpus is not None:
            processor["Count"] = i64(spec.cpus)
        if "nested_virtualization" in fields and spec.nested_virtualization is not None:
            processor["ExposeVirtualizationExtensions"] = bool(spec.nested_virtualization)
        if processor:
            statements.append(pipe(vm_by_id(vm_id), Cmd("Set-VMProcessor", processor)))
        if "memory" in fields and spec.memory is not None:
            statements.append(pipe(vm_by_id(vm_id), Cmd("Set-VMMemory", {"StartupBytes": i64(spec.memory * MiB)})))
        if "secure_boot" in fields and spec.secure_boot is not None and generation == 2:
            statements.append(pipe(vm_by_id(vm_id), Cmd("Set-VMFirmware",
                                                        {"EnableSecureBoot": "On" if spec.secure_boot else "Off"})))
        return statements

    def _vhd_path(self, vm_id: str, slot: str) -> str:
        return self._beside_disks(f"{vm_id}-{slot.replace(':', '-')}.vhdx")

    def _beside_disks(self, leaf: str) -> str:
        base = self._settings.vhd_path or self._host.vhd_path or "C:\\Hyper-V\\Virtual Hard Disks"
        separator = "" if base.endswith(("\\", "/")) else "\\"
        return f"{base}{separator}{leaf}"

    def _cloud_init_statements(self, vm_id: str, spec: VirtualMachineSpec, generation: int,
                               dvds: dict[tuple[str, int, int], str]) -> list[Any]:
        """Write the NoCloud ISO beside the VM's disks and put it in a DVD drive: the one holding virtplane's ISO, else
        an empty drive New-VM made, else a new one (the VM must then be off: ``rule``); the ISO it held is deleted."""
        assert spec.cloud_init is not None
        iso = self._beside_disks(cidata.file_name(vm_id, spec.cloud_init.digest))
        statements = [pipe(Cmd("Set-Content", {"Path": iso, "Value": nocloud.iso(spec.cloud_init.documents),
                                               "Encoding": "Byte", "ErrorAction": "Stop"}))]
        held = next((slot for slot, path in dvds.items() if cidata.ours(path, vm_id)), None)
        target = held or (cidata.DEFAULT_DVD if dvds.get(cidata.DEFAULT_DVD) == "" else None)
        if target is None:
            _, number, location = cidata.NEW_DRIVE[generation]
            statements.append(pipe(vm_by_id(vm_id), Cmd("Add-VMDvdDrive", {
                "ControllerNumber": number, "ControllerLocation": location, "Path": iso})))
        else:
            statements.append(pipe(vm_by_id(vm_id), Cmd("Get-VMDvdDrive", {
                "ControllerNumber": target[1], "ControllerLocation": target[2]}), Cmd("Set-VMDvdDrive", {"Path": iso})))
        if held is not None and dvds[held].lower() != iso.lower():
            statements.append(pipe(Cmd("Remove-Item", {"LiteralPath": dvds[held]})))
        return statements

    def _add_disk(self, vm_id: str, disk: Any) -> list[Any]:
        assert disk.slot is not None
        controller, number, location = parse_disk_slot(disk.slot)
        path = self._vhd_path(vm_id, disk.slot)
        kind = "Fixed" if disk.thin is False else "Dynamic"
        # -ErrorAction Stop: a batch goes on after a failed statement, and Add-VMHardDiskDrive must not attach a file
        # New-VHD did not make (one already there at that path is not ours)
        return [pipe(Cmd("New-VHD", {"Path": path, "SizeBytes": u64(disk.size * GiB), kind: True,
                                     "ErrorAction": "Stop"})),
                pipe(vm_by_id(vm_id), Cmd("Add-VMHardDiskDrive", {
                    "ControllerType": controller, "ControllerNumber": number, "ControllerLocation": location,
                    "Path": path}))]

    def _add_nic(self, vm_id: str, nic: Any, *, spoofing: bool) -> list[Any]:
        switch, vlan = self._switches.wiring(nic.network)
        statements = [pipe(vm_by_id(vm_id), Cmd("Add-VMNetworkAdapter", {"SwitchName": switch, "Name": nic.slot}))]
        statements.append(self._vlan(vm_id, nic.slot, vlan))
        adapter: dict[str, Any] = {}
        if nic.adapter == "sriov":
            adapter["IovWeight"] = 100
        if spoofing:
            adapter["MacAddressSpoofing"] = "On"
        if adapter:
            statements.append(pipe(vm_by_id(vm_id), Cmd("Get-VMNetworkAdapter", {"Name": nic.slot}),
                                   Cmd("Set-VMNetworkAdapter", adapter)))
        return statements

    @staticmethod
    def _vlan(vm_id: str, slot: str, vlan: int) -> Any:
        setting = {"Access": True, "VlanId": vlan} if vlan else {"Untagged": True}
        return pipe(vm_by_id(vm_id), Cmd("Get-VMNetworkAdapter", {"Name": slot}),
                    Cmd("Set-VMNetworkAdapterVlan", setting))

    # ---- updating ------------------------------------------------------------------------------------

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        handle = self._guard(observed, "update")
        vm_spec = cast(VirtualMachineSpec, spec)
        name = observed.name
        if handle.pending:
            # an interrupted create: it held nothing yet; remove it (and any VHD it made) and make it again
            self._remove(handle, name, slots=[d.slot for d in vm_spec.disks or [] if d.slot])
            owner = cast(Owner, observed.owner)
            self.create(Owner(owner.stack, owner.resource, owner.endpoint, vm_spec.clone_from or None),
                        vm_spec.with_creation_defaults())
            return
        fields = {top_field(change.path) for change in changes}
        _refuse_with_checkpoints(name, handle, changes)
        running = observed.state["power"] == "on"
        generation = 2 if observed.state["firmware"] == "uefi" else 1
        needs_off = any(self.rule(change) is Rule.POWER_OFF for change in changes)
        statements = self._settings_statements(handle.vm_id, vm_spec, generation, fields)
        added = [d for d in vm_spec.disks or [] if any(c.path == f"disks[{d.slot}]" and c.old is None for c in changes)]
        controllers = _scsi_controllers(handle.vm_id, added, handle.scsi_controllers)
        needs_off = needs_off or bool(controllers)  # Add-VMScsiController: the VM off
        statements += controllers
        statements += self._device_statements(handle, observed, vm_spec, changes)
        if vm_spec.nested_virtualization and "nested_virtualization" in fields:
            statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Get-VMNetworkAdapter"),
                                   Cmd("Set-VMNetworkAdapter", {"MacAddressSpoofing": "On"})))
        if vm_spec.gpus is not None and any(top_field(change.path) == "gpus" for change in changes):
            statements += self._gpu_statements(handle.vm_id, name, handle.gpus, vm_spec.gpus, self._host_devices(),
                                               new_vm=False)
        if "cloud_init" in fields and vm_spec.cloud_init is not None:
            statements += self._cloud_init_statements(handle.vm_id, vm_spec, generation, handle.dvds)
        # A VM switched off here that is to run again is recorded as such first (providers/marker.py), so a run
        # killed while it is off starts it again; the Notes written with the tags keep the record.
        record = running and needs_off and vm_spec.power != "off"
        notes = None
        if "tags" in fields or not observed.marker_complete:
            notes = notes_with(with_restore(handle.notes, "on") if record else handle.notes, observed.owner,
                               vm_spec.tags if vm_spec.tags is not None else observed.state["tags"])
            statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Set-VM", {"Notes": notes})))
        stopped_here = False
        recorded = observed.restore_power is not None
        if statements and running and needs_off:
            if record:
                self._write_notes(handle, with_restore(handle.notes, "on"), name)
                recorded = True
            self._stop(handle.vm_id, name)
            stopped_here, running = True, False
        try:
            if statements:
                self._client.run(statements, f"reconfigure VM {name}")
                handle.notes = notes if notes is not None else handle.notes
        except BaseException:
            if stopped_here:
                self._start(handle.vm_id, name)
                self._write_notes(handle, with_restore(handle.notes, None), name)
            raise
        wanted = vm_spec.power
        if wanted is None and stopped_here:
            wanted = "on"
        if wanted == "on" and not running:
            self._start(handle.vm_id, name)
        elif wanted == "off" and running:
            self._stop(handle.vm_id, name)
        if recorded:
            self._write_notes(handle, with_restore(handle.notes, None), name)

    def _write_notes(self, handle: VmHandle, notes: str, name: str) -> None:
        """Set the VM's Notes (the power record of providers/marker.py), keeping the handle's copy current."""
        self._client.run([pipe(vm_by_id(handle.vm_id), Cmd("Set-VM", {"Notes": notes}))],
                         f"write the notes of VM {name}")
        handle.notes = notes

    def _device_statements(self, handle: VmHandle, observed: Observed, spec: VirtualMachineSpec,
                           changes: list[FieldChange]) -> list[Any]:
        statements: list[Any] = []
        declared_disks = {d.slot: d for d in spec.disks or []}
        declared_nics = {n.slot: n for n in spec.nics or []}
        nested = bool(spec.nested_virtualization if spec.nested_virtualization is not None
                      else observed.state.get("nested_virtualization"))
        for change in changes:
            path = change.path
            if path.startswith("disks["):
                slot = path[len("disks["):path.index("]")]
                if change.old is None and slot in declared_disks:
                    statements += self._add_disk(handle.vm_id, declared_disks[slot])
                elif change.new is None:
                    statements += self._remove_disk(handle, slot)
                elif path.endswith(".size"):
                    statements.append(pipe(Cmd("Resize-VHD", {"Path": handle.vhd_paths[slot],
                                                              "SizeBytes": u64(change.new * GiB)})))
            elif path.startswith("nics["):
                slot = path[len("nics["):path.index("]")]
                if change.old is None and slot in declared_nics:
                    statements += self._add_nic(handle.vm_id, declared_nics[slot], spoofing=nested)
                elif change.new is None:
                    statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Get-VMNetworkAdapter", {"Name": slot}),
                                           Cmd("Remove-VMNetworkAdapter")))
                elif path.endswith(".network"):
                    switch, vlan = self._switches.wiring(change.new)
                    statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Get-VMNetworkAdapter", {"Name": slot}),
                                           Cmd("Connect-VMNetworkAdapter", {"SwitchName": switch})))
                    statements.append(self._vlan(handle.vm_id, slot, vlan))
                elif path.endswith(".adapter"):
                    weight = 100 if change.new == "sriov" else 0
                    statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Get-VMNetworkAdapter", {"Name": slot}),
                                           Cmd("Set-VMNetworkAdapter", {"IovWeight": weight})))
        return statements

    def _remove_disk(self, handle: VmHandle, slot: str) -> list[Any]:
        controller, number, location = parse_disk_slot(slot)
        statements = [pipe(vm_by_id(handle.vm_id), Cmd("Get-VMHardDiskDrive", {
            "ControllerType": controller, "ControllerNumber": number, "ControllerLocation": location}),
            Cmd("Remove-VMHardDiskDrive"))]
        path = handle.vhd_paths.get(slot, "")
        if _made_by_us(path, handle.vm_id):
            statements.append(pipe(Cmd("Remove-Item", {"LiteralPath": path})))
        return statements

    # ---- power ---------------------------------------------------------------------------------------

    def _start(self, vm_id: str, name: str) -> None:
        self._client.run([pipe(vm_by_id(vm_id), Cmd("Start-VM"))], f"start VM {name}")

    def _stop(self, vm_id: str, name: str) -> None:
        """A clean shutdown first; turned off after the timeout (or when the guest cannot shut down)."""
        deadline = time.monotonic() + self._settings.shutdown_timeout
        with contextlib.suppress(ProviderError):  # no integration services: turned off below
            self._client.run([pipe(vm_by_id(vm_id), Cmd("Stop-VM", {"Force": True}))], f"shut down VM {name}")
        while time.monotonic() < deadline:
            states = self._client.run([pipe(vm_by_id(vm_id))], f"read the state of VM {name}")
            if states.objects and str(states.objects[0].get("State")).lower() == "off":
                return
            time.sleep(0.5)
        self._client.run([pipe(vm_by_id(vm_id), Cmd("Stop-VM", {"TurnOff": True, "Force": True}))],
                         f"turn off VM {name}")

    # ---- adopting ------------------------------------------------------------------------------------

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """The marker line in the VM's Notes (people's own lines and the tags line kept)."""
        handle = observed.handle
        if observed.owner is not None:
            raise OwnershipError(f"refusing to adopt VM {observed.name}: it already carries a virtplane ownership "
                                 "marker")
        notes = notes_with(handle.notes, owner, None)
        self._client.run([pipe(vm_by_id(handle.vm_id), Cmd("Set-VM", {"Notes": notes}))],
                         f"write the ownership marker of VM {observed.name}")

    # ---- deleting ------------------------------------------------------------------------------------

    def delete(self, observed: Observed) -> None:
        handle = self._guard(observed, "delete")
        if handle.checkpoints:
            raise ProviderError(_with_checkpoints(observed.name, handle, "deleting it would leave their differencing "
                                                                          "disks (.avhdx) and its own disks behind"))
        self._remove(handle, observed.name)

    def _remove(self, handle: VmHandle, name: str, slots: list[str] | None = None) -> None:
        """Turn the VM off, give its assigned devices back to the host, remove it and the VHDs virtplane made
        for it (``slots``: also the VHDs an interrupted create may have made but not attached yet)."""
        statements = [pipe(vm_by_id(handle.vm_id), Cmd("Stop-VM", {"TurnOff": True, "Force": True}))]
        for gpu in handle.gpus:
            if gpu["mode"] == "passthrough" and gpu.get("device"):
                statements += devices.remove_passthrough(handle.vm_id, gpu["device"],
                                                         handle.instances.get(gpu["device"].lower()))
        statements.append(pipe(vm_by_id(handle.vm_id), Cmd("Remove-VM", {"Force": True})))
        paths = {path for path in handle.vhd_paths.values() if _made_by_us(path, handle.vm_id)}
        paths |= {path for path in handle.dvds.values() if cidata.ours(path, handle.vm_id)}  # its cloud-init ISO
        statements += [pipe(Cmd("Remove-Item", {"LiteralPath": path})) for path in sorted(paths)]
        unattached = sorted({self._vhd_path(handle.vm_id, slot) for slot in slots or []} - paths)
        tolerate = _already_off_or_gone
        if unattached:
            statements += [pipe(Cmd("Remove-Item", {"LiteralPath": path})) for path in unattached]
            tolerate = _off_gone_or_never_made(unattached)
        self._client.run(statements, f"delete VM {name}", tolerate=tolerate)

    # ---- devices -------------------------------------------------------------------------------------

    def _host_devices(self) -> devices.HostDevices:
        result = self._client.run(devices.HostDevices.statements(), "read the host's assignable devices and GPUs",
                                  retry_read=True)
        return devices.HostDevices.from_objects(result.objects)

    def _gpu_statements(self, vm_id: str, name: str, have: list[dict[str, Any]], want: list[Any],
                        host: devices.HostDevices, *, new_vm: bool) -> list[Any]:
        try:
            return devices.reconcile(vm_id, have, want, host, new_vm=new_vm)
        except devices.DeviceError as exc:
            raise ProviderError(f"VirtualMachine '{name}': field 'gpus': {exc}") from None

    def host_versions(self) -> HostVersions:
        """The host's CPU vendor (Win32_Processor Manufacturer: Get-VMHost has none), Windows build
        (Win32_OperatingSystem) and configuration versions; one read, kept until the next observe."""
        if self._versions is None:
            result = self._client.run(list(HOST_VERSION_READS), "read the host's processor and configuration versions",
                                      retry_read=True)
            self._versions = host_versions_from(result.objects)
        return self._versions

    # ---- rules and checks ----------------------------------------------------------------------------

    def rule(self, change: FieldChange) -> Rule:
        """As the table says, and: IDE devices change with the VM off (IDE has no hot plug), and so does a disk on a
        SCSI controller beyond the first, which may first need Add-VMScsiController (VM off)."""
        if change.path == "cloud_init":  # another ISO in the drive: live; a first one may need a drive added: off
            return Rule.POWER_OFF if change.old is None else Rule.IN_PLACE
        rule = vm_rule(change)
        match = _DISK_ITEM.match(change.path)
        if rule is Rule.IN_PLACE and match and (change.old is None or change.new is None):
            controller, number, _ = parse_disk_slot(match.group(1))
            if controller == "IDE" or number > 0:
                return Rule.POWER_OFF
        return rule

    def volumes(self, observed: Observed) -> Volumes:
        """The VHDs virtplane made for the VM (named by its VMId) go with it; any other VHD is detached and kept."""
        handle = observed.handle
        found = Volumes()
        for disk in observed.state.get("disks") or []:
            path = handle.vhd_paths.get(disk["slot"], "") if isinstance(handle, VmHandle) else ""
            if isinstance(handle, VmHandle) and _made_by_us(path, handle.vm_id):
                found.destroyed.append(f"{disk['slot']} ({path}, {disk['size']} GiB)")
            else:
                found.kept.append(f"{disk['slot']} ({path or '?'}, {disk['size']} GiB), not made by virtplane for "
                                  "this VM")
        return found
    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        """Hyper-V's integration services tell whether a guest runs (Heartbeat) and its addresses (Data Exchange,
        read as the adapters' IPAddresses), but not who is logged in: a running VM counts as in use. Addresses for
        every VM in one pipeline."""
        running = [live for live in observed if live.state.get("power") == "on"]
        addresses: dict[str, str] = {}
        if running:
            read = self._client.run([pipe(_GET_VM, Cmd("Get-VMNetworkAdapter"),
                                          Cmd("Select-Object", {"Property": ["VMId", "IPAddresses"]}))],
                                    "read the guests' addresses", retry_read=True)
            for adapter in read.objects:
                found = [str(a) for a in adapter.get("IPAddresses") or [] if ":" not in str(a)]
                if found:
                    addresses.setdefault(str(adapter.get("VMId")).lower(), found[0])
        told = "Hyper-V's integration services report no logged-in users"
        return {live.name: GuestState(str(live.state.get("power")), None, addresses.get(str(live.id).lower()), told)
                if live.state.get("power") == "on" else GuestState("off") for live in observed}

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        return _new_slot(collection, item, taken, bios=False)

    def slots_for(self, spec: Spec) -> Any:
        """New slots for ``spec``'s disks: a Generation 1 (``bios``) VM boots from IDE only, so its first disk goes
        on ``ide0:0`` unless it says otherwise."""
        bios = isinstance(spec, VirtualMachineSpec) and spec.firmware == "bios"
        return lambda collection, item, taken: _new_slot(collection, item, taken, bios=bios)

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        vm_spec = cast(VirtualMachineSpec, spec)
        self._switches = _switches(self._settings, declared)
        problems = [(name, message) for name, message in _NOT_ON_HYPERV.items()
                    if getattr(vm_spec, name) not in (None, False)]
        if vm_spec.clone_from and self._names is None:  # checked without an observe (the Pulumi plugin)
            read = self._client.run([pipe(_GET_VM, Cmd("Select-Object", {"Property": ["Name"]}))],
                                    "read the VMs' names", retry_read=True)
            self._names = [vm.text("Name") or "" for vm in read.objects]
        if vm_spec.clone_from and (count := (self._names or []).count(vm_spec.clone_from)) != 1:
            where = f"Hyper-V endpoint '{self._settings.endpoint_name}'"
            problems.append(("clone_from", f"no VM named '{vm_spec.clone_from}' exists on {where}" if not count else
                             f"{count} VMs are named '{vm_spec.clone_from}' on {where}; a golden image must be one"))
        for index, disk in enumerate(vm_spec.disks or []):
            if disk.bus not in (None, "paravirtual", "ide"):
                problems.append((f"disks[{index}].bus", f"{disk.bus} disks do not exist on Hyper-V "
                                                        "(choices: paravirtual (SCSI), ide)"))
            if disk.bus == "ide" and vm_spec.firmware == "uefi":
                problems.append((f"disks[{index}].bus", _GEN1_ONLY_IDE))
            if disk.storage is not None:
                problems.append((f"disks[{index}].storage", "set vhd_path on the Hyper-V Endpoint instead"))
        networks = declared.get("Network", {})
        for index, nic in enumerate(vm_spec.nics or []):
            if nic.adapter in ("e1000", "e1000e"):
                problems.append((f"nics[{index}].adapter", _NO_INTEL_NIC.format(adapter=nic.adapter)))
            if nic.network in networks and not self._settings.switch:
                problems.append((f"nics[{index}].network", "networks on Hyper-V are VLANs on the endpoint's switch: "
                                                          "set switch= on the Endpoint or HYPERV_SWITCH"))
        if problems or not _needs_hardware_checks(vm_spec):
            return problems
        switches: dict[str, bool] = {}
        if any(nic.adapter == "sriov" for nic in vm_spec.nics or []):
            read = self._client.run([pipe(Cmd("Get-VMSwitch"))], "read the VM switches", retry_read=True)
            switches = {o.text("Name") or "": bool(o.flag("IovEnabled")) for o in read.objects}
        for name in _spec_names(declared, vm_spec):
            found = vm_checks.problems(name, vm_spec, self._live.get(name), self.host_versions(), switches,
                                       lambda network: self._switches.wiring(network)[0])
            if found:
                return found
        return []

    @staticmethod
    def _guard(observed: Observed, action: str) -> VmHandle:
        handle = observed.handle
        if not isinstance(handle, VmHandle) or not handle.ours:
            raise OwnershipError(f"refusing to {action} VM {observed.name}: it carries no virtplane ownership "
                                 "marker of this stack, so it was not created by it")
        return handle


# The observe pipeline: each statement's cmdlets, and the properties kept of its output (the type names
# become "Selected.<type>", still told apart by their last part). Properties are the types' own (VirtualMachine,
# VMProcessor, HardDiskDrive, VirtualHardDisk, VMNetworkAdapter, VMNetworkAdapterVlanSetting, VMFirmware,
# VMScsiController, VMSnapshot, VMAssignedDevice, VMGpuPartitionAdapter): a VLAN setting has no VMId, a VHD neither.
_GET_VM = Cmd("Get-VM")
_VHD_PROPERTIES = ("Path", "Size", "VhdType", "ParentPath")
_OBSERVE: list[tuple[tuple[Cmd, ...], tuple[str, ...]]] = [
    ((_GET_VM,), ("VMId", "Name", "State", "Generation", "Version", "ProcessorCount", "MemoryStartup",
                  "DynamicMemoryEnabled", "Notes", "IsClustered")),
    ((_GET_VM, Cmd("Get-VMProcessor")), ("VMId", "Count", "ExposeVirtualizationExtensions")),
    ((_GET_VM, Cmd("Get-VMHardDiskDrive")), ("VMId", "ControllerType", "ControllerNumber", "ControllerLocation",
                                             "Path", "DiskNumber")),
    ((_GET_VM, Cmd("Get-VHD")), _VHD_PROPERTIES),
    ((_GET_VM, Cmd("Get-VMNetworkAdapter")), ("VMId", "Name", "SwitchName", "IovWeight")),
    ((_GET_VM, Cmd("Get-VMNetworkAdapter"), Cmd("Get-VMNetworkAdapterVlan")),
     ("ParentAdapter", "OperationMode", "AccessVlanId")),
    ((_GET_VM, Cmd("Get-VMFirmware")), ("VMId", "SecureBoot")),
    ((_GET_VM, Cmd("Get-VMScsiController")), ("VMId", "ControllerNumber")),
    ((_GET_VM, Cmd("Get-VMSnapshot")), ("VMId", "Name")),
    ((_GET_VM, Cmd("Get-VMAssignableDevice")), ("VMId", "LocationPath", "InstanceID")),
    ((_GET_VM, Cmd("Get-VMGpuPartitionAdapter")), ("VMId", "InstancePath")),
    ((_GET_VM, Cmd("Get-VMDvdDrive")), ("VMId", "ControllerType", "ControllerNumber", "ControllerLocation", "Path")),
]
# The host's processor vendor, Windows build and configuration versions (vm_checks.HostVersions).
HOST_VERSION_READS = (pipe(Cmd("Get-CimInstance", {"ClassName": "Win32_Processor"}),
                           Cmd("Select-Object", {"Property": ["Manufacturer"]})),
                      pipe(Cmd("Get-CimInstance", {"ClassName": "Win32_OperatingSystem"}),
                           Cmd("Select-Object", {"Property": ["BuildNumber", "Caption"]})),
                      pipe(Cmd("Get-VMHostSupportedVersion")))
_DISK_ITEM = re.compile(r"^disks\[([^\]]+)\]$")

_NO_VM = "00000000-0000-0000-0000-000000000000"  # statements built only to find what would be refused


def _needs_version(spec: VirtualMachineSpec) -> bool:
    return bool(spec.nested_virtualization) or any(gpu.mode == "vgpu" for gpu in spec.gpus or [])


def _needs_hardware_checks(spec: VirtualMachineSpec) -> bool:
    return _needs_version(spec) or bool(spec.gpus) or any(nic.adapter == "sriov" for nic in spec.nics or [])


def _spec_names(declared: Declared, spec: VirtualMachineSpec) -> list[str]:
    """The declared names whose spec is ``spec`` (check gets the slot-resolved spec, not its name): equal once
    the slots the plan gave disks and NICs are left out."""
    def unslotted(candidate: Any) -> dict[str, Any]:
        dumped = candidate.model_dump()
        for collection in ("disks", "nics"):
            dumped[collection] = [{**item, "slot": None} for item in dumped[collection] or []] or dumped[collection]
        return dumped

    wanted = unslotted(spec)
    names = [name for name, candidate in declared.get("VirtualMachine", {}).items()
             if isinstance(candidate, VirtualMachineSpec) and unslotted(candidate) == wanted]
    return names or ["?"]


def _off_gone_or_never_made(paths: list[str]) -> Any:
    lowered = [p.lower() for p in paths]

    def tolerate(error: HvError) -> bool:
        return _already_off_or_gone(error) or (error.is_("PathNotFound") and error.target.lower() in lowered)

    return tolerate


def _switches(settings: HypervSettings, declared: Declared) -> Switches:
    vlans = {name: cast(NetworkSpec, spec).vlan for name, spec in declared.get("Network", {}).items()}
    return Switches(settings.switch, vlans)


def _generation_one_firmware(error: HvError) -> bool:
    """Get-VMFirmware is for Generation 2 VMs; on Generation 1 it writes a non-terminating InvalidParameter."""
    return error.is_("InvalidParameter", "GetVMFirmware")


def _read_error(error: HvError) -> bool:
    """Errors an observe read lets through, to attach to their VM: Get-VHD's (a disk that cannot be read), and
    Get-VMFirmware's for Generation 1 VMs."""
    return _generation_one_firmware(error) or error.command.lower() == "getvhd"


def _already_off_or_gone(error: HvError) -> bool:
    """Get-VM -Id of a VM that is gone already (InvalidParameter on GetVM, target the id)."""
    return error.is_("InvalidParameter", "GetVM")


def _attach_errors(joined: list[tuple[PsObject, dict[str, Any]]], errors: list[HvError],
                   settings: HypervSettings) -> None:
    """Each read error to the VM whose disk it names (by the error's target, the drive's Path); an error about no
    VM of the host fails the read."""
    by_path = {(drive.text("Path") or "").lower(): (parts, drive_slot(drive))
               for _, parts in joined for drive, _ in parts["disks"]}
    for error in errors:
        found = by_path.get(error.target.lower())
        if found is None:
            raise ProviderError(f"Hyper-V endpoint '{settings.endpoint_name}' could not read the virtual machines: "
                                f"{error}")
        parts, slot = found
        parts.setdefault("errors", []).append((slot, error))


def _made_by_us(path: str, vm_id: str) -> bool:
    leaf = path.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    return bool(path) and leaf.startswith(vm_id.lower() + "-") and leaf.endswith(".vhdx")


def _new_slot(collection: str, item: dict[str, Any], taken: set[str], *, bios: bool) -> str:
    """NICs ``nic<n>``; disks on IDE when asked (``ide0:0``, ``ide0:1``, ``ide1:1``: IDE 1:0 is the DVD drive) or for
    a BIOS VM's first disk, else ``scsi0:<n>``."""
    if collection == "nics":
        return next_numbered("nic", taken)
    ide = item.get("bus") == "ide" or (bios and item.get("bus") is None and not any(t.startswith("ide") for t in taken)
                                       and not any(t.startswith("scsi") for t in taken))
    if ide:
        free = [slot for slot in ("ide0:0", "ide0:1", "ide1:1") if slot not in taken]
        if free:
            return free[0]
    return next_numbered("scsi0:", taken)


def _scsi_controllers(vm_id: str, disks: list[Any], have: int) -> list[Statement]:
    """Add-VMScsiController until the VM has a controller for every SCSI disk of ``disks`` (it has ``have``)."""
    needed = max((parse_disk_slot(d.slot)[1] + 1 for d in disks if d.slot and parse_disk_slot(d.slot)[0] == "SCSI"),
                 default=0)
    return [pipe(vm_by_id(vm_id), Cmd("Add-VMScsiController")) for _ in range(max(0, needed - have))]


def _with_checkpoints(name: str, handle: VmHandle, consequence: str) -> str:
    shown = ", ".join(f"'{c}'" for c in handle.checkpoints[:3]) + (" …" if len(handle.checkpoints) > 3 else "")
    return (f"VirtualMachine '{name}' has checkpoints ({shown}): {consequence}; remove them first "
            "(Remove-VMSnapshot merges their differencing disks into the disks)")


def _refuse_with_checkpoints(name: str, handle: VmHandle, changes: list[FieldChange]) -> None:
    """Resizing or removing a disk of a VM with checkpoints is refused: the disk is a chain of differencing disks
    (Resize-VHD fails on it, and the base file cannot go while a child needs it)."""
    if not handle.checkpoints:
        return
    for change in changes:
        match = re.match(r"^disks\[([^\]]+)\](\.size)?$", change.path)
        if match and (match.group(2) or change.new is None):
            action = "resizing" if match.group(2) else "removing"
            raise ProviderError(_with_checkpoints(name, handle, f"{action} disk {match.group(1)} is not possible "
                                                                "while they exist"))


def _short(obj: PsObject) -> str:
    return obj.type_name.rsplit(".", 1)[-1]


def join_parts(objects: list[PsObject]) -> list[tuple[PsObject, dict[str, Any]]]:
    """Group one observe pipeline's outputs by VMId: each VM with its processor, drives (with their VHD chain, leaf
    first), adapters (with their VLAN setting, paired by its ParentAdapter), firmware, SCSI controllers and
    checkpoints."""
    vms: dict[str, tuple[PsObject, dict[str, Any]]] = {}
    vhds: dict[str, PsObject] = {}
    vlans: dict[tuple[str, str], PsObject] = {}
    for obj in objects:
        short = _short(obj)
        if short == "VirtualMachine":
            vms[_vm_id(obj)] = (obj, {"disks": [], "nics": [], "assigned": [], "partitions": [], "scsi": [],
                                      "checkpoints": [], "dvds": []})
        elif short == "VirtualHardDisk":
            vhds[str(obj.get("Path") or "").lower()] = obj
        elif short == "VMNetworkAdapterVlanSetting":
            parent = parent_adapter(obj)
            if parent is not None:
                vlans[parent] = obj
    for obj in objects:
        short = _short(obj)
        entry = vms.get(_vm_id(obj))
        if entry is None:
            continue
        parts = entry[1]
        if short == "VMProcessor":
            parts["processor"] = obj
        elif short == "HardDiskDrive":
            parts["disks"].append((obj, _chain(vhds, obj.text("Path"))))
        elif short == "VMNetworkAdapter":
            parts["nics"].append((obj, vlans.get((_vm_id(obj), obj.text("Name") or ""))))
        elif short == "VMFirmware":
            parts["firmware"] = obj
        elif short == "VMScsiController":
            parts["scsi"].append(obj)
        elif short == "VMSnapshot":
            parts["checkpoints"].append(obj.text("Name") or "")
        elif short == "VMAssignedDevice":
            parts["assigned"].append(obj)
        elif short == "VMGpuPartitionAdapter":
            parts["partitions"].append(obj)
        elif short == "DvdDrive":
            parts["dvds"].append(obj)
    return list(vms.values())


def _own_base(chain: list[PsObject], vm_id: str) -> str | None:
    """The VHD virtplane made for a drive: the base of its chain of checkpoints, or, for a linked clone (a
    differencing disk on a golden image's VHDX, which belongs to the image and is never changed or removed), the
    deepest VHD of the chain named by the VM's id."""
    paths = [vhd.text("Path") or "" for vhd in chain]
    ours = [path for path in paths if _made_by_us(path, vm_id)]
    return ours[-1] if ours else (paths[-1] if paths else None)


def _chain(vhds: dict[str, PsObject], path: str | None) -> list[PsObject]:
    """The VHD at ``path`` and its parents, leaf first (as far as they were read)."""
    chain: list[PsObject] = []
    seen: set[str] = set()
    while path and path.lower() in vhds and path.lower() not in seen:
        seen.add(path.lower())
        vhd = vhds[path.lower()]
        chain.append(vhd)
        path = vhd.text("ParentPath")
    return chain


def _vm_id(obj: PsObject) -> str:
    value = obj.get("VMId")
    if value is None and obj.type_name.endswith("VirtualMachine"):
        value = obj.get("Id")
    return str(value or "").lower()

