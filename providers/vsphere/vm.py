"""The VirtualMachine kind on vSphere: observe in one paged pass, create, update and delete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pyVmomi import vim, vmodl

from virtplane.clones import clone_disk_problems, not_as_declared
from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError, VirtplaneError
from virtplane.providers.base import (
    MARKER_KEY,
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
from virtplane.providers.marker import RESTORE_PREFIX, made_by_create, restore_from
from virtplane.providers.vm_rules import top_field
from virtplane.providers.vsphere import guestinfo
from virtplane.providers.vsphere.claims import claim
from virtplane.providers.vsphere.clone import LINKED_CLONE_DISKS, TEMPLATE_PATHS, inherited
from virtplane.providers.vsphere.collector import retrieve, retrieve_objects
from virtplane.providers.vsphere.devices import (
    DEFAULT_IDE,
    DevicePlan,
    Hardware,
    disk_state,
    in_folder,
    new_disk_slot,
    nic_state,
    slot_problem,
    split_devices,
    vm_folder,
)
from virtplane.providers.vsphere.faults import provider_error
from virtplane.providers.vsphere.guest import read_guest_states
from virtplane.providers.vsphere.inventory import Inventory
from virtplane.providers.vsphere.names import unescaped
from virtplane.providers.vsphere.ownership import (
    RESTORE_KEY,
    TAGS_KEY,
    CustomAttributes,
    decode_tags,
    extra_config_marker,
    owner_from_extra_config,
)
from virtplane.providers.vsphere.pci import gpu_state, holds_devices, large_bar_options, new_gpu
from virtplane.providers.vsphere.pci_changes import (
    holds_devices_after,
    holds_live_devices,
    needs_host_devices,
    touches_sriov,
)
from virtplane.providers.vsphere.power import SHUTDOWN_TIMEOUT, shut_down_guest
from virtplane.providers.vsphere.tasks import TaskFailed, wait_for_task
from virtplane.providers.vsphere.unexpressed import unexpressed
from virtplane.providers.vsphere.vm_config import (
    NEUTRAL_GUEST,
    changes_anything,
    config_spec,
    cores_per_socket,
    sockets_of,
)
from virtplane.providers.vsphere.vm_devices import VmDevices
from virtplane.providers.vsphere.vm_rules import (
    HARDWARE_VERSION,
    REPLACEABLE,
    moving_device_vm,
    version_number,
    vm_rule,
)
from virtplane.slots import next_numbered, resolve, resolve_vm
from virtplane.specs import CREATE_ONLY, Spec, VirtualMachineSpec

__all__ = ["PATHS", "VirtualMachineDriver", "sockets_of"]

PATHS = ["name", "config.template", "customValue", "config.hardware.numCPU", "config.hardware.numCoresPerSocket",
         "config.hardware.memoryMB", "config.hardware.device", "config.firmware", "config.bootOptions",
         "config.guestId", "runtime.powerState", "runtime.host", "config.version", "config.nestedHVEnabled",
         "config.instanceUuid", "config.memoryReservationLockedToMax", "config.files.vmPathName"]


@dataclass
class VmHandle:
    """The driver's reference to a live VM: its moref, its devices as last read, and whether all its memory
    is reserved (what PCI devices need). ``streamed``: the devices are the streaming reader's read-only records
    (stream.py), which a change re-reads through pyVmomi before it edits them."""

    ref: Any
    hardware: Hardware
    memory_locked: bool = False
    folder: str | None = None  # where the VM's files are (``[ds] web-1``): the disks there are its own
    streamed: bool = False


class VirtualMachineDriver(KindDriver):
    """VMs on one vCenter / ESXi endpoint.

    **Thread safety.** One driver serves concurrent create/update/delete calls on different VMs. Every call
    works on its own objects: the VM's moref and devices come in its ``Observed`` handle, each call builds its
    own ConfigSpec and DevicePlan and waits on its own task. The shared pieces are safe: pyVmomi's SOAP stub
    hands each concurrent call its own pooled HTTP connection of the one session; the custom attribute keys
    (``CustomAttributes``) are read and created under a lock; the inventory is replaced whole on a refresh
    (readers see the old or the new one, never half of one)."""

    kind = "VirtualMachine"
    replaceable = REPLACEABLE
    delivers = frozenset({"cloud_init"})  # cloud-init: docs/cloud-init.md

    def __init__(self, si: Any, inventory: Inventory):
        self._si = si
        self._content = si.RetrieveContent()
        self._inventory = inventory
        self._attributes = CustomAttributes(si, vim.VirtualMachine)
        self._devices = VmDevices(self._content, inventory)
        self.shutdown_timeout = SHUTDOWN_TIMEOUT  # seconds a guest gets to shut down before a hard power-off
        self._source_names: list[str] | None = None  # every VM's and template's name (the last observe)
        # Per declared VM, which GPUs the stack itself names a device for (recorded by observe at plan time):
        # those get a fixed passthrough backing; devices placement chose get Dynamic DirectPath.
        self._named_gpus: dict[str, list[bool]] = {}
        self._sources: dict[str, list[dict[str, Any]]] = {}  # VMs and templates by name, as the last observe read
        # Reading every VM goes through the streaming reader (stream.py); False reads it through pyVmomi.
        self.stream_reads = True

    @property  # type: ignore[override]
    def shutdown_seconds(self) -> float:
        return self.shutdown_timeout

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        result = ObserveResult()
        wanted = set(declared.get(self.kind, {}))
        self._named_gpus = {name: [gpu.device is not None for gpu in cast(VirtualMachineSpec, spec).gpus or []]
                            for name, spec in declared.get(self.kind, {}).items() if spec is not None}
        rows = self._read_all()
        streamed = self.stream_reads
        self._sources = {}  # every VM and template by name, for what a clone can make of its source's disks
        for _, props in rows:
            if "name" in props:
                self._sources.setdefault(unescaped(props["name"]), []).append(props)
        self._source_names = [name for name, found in self._sources.items() for _ in found]  # repeats kept
        candidates: dict[str, tuple[Any, dict[str, Any], Owner | None, dict[str, str]]] = {}
        for ref, props in rows:
            if props.get("config.template") or "name" not in props:
                continue
            attributes = self._attributes.parse(props.get("customValue"))
            owner = Owner.decode(attributes.get(MARKER_KEY))
            if owner is not None and owner.stack == stack:
                claim(result, owner.resource, self._normalize(ref, props, owner, attributes, streamed), "VM")
            elif owner is None or unescaped(props["name"]) in wanted:
                candidates[ref._moId] = (ref, props, owner, attributes)
        # Every VM without our custom attribute may be an interrupted create or clone: its extraConfig (written by
        # CreateVM/CloneVM themselves) is read for all of them in one more pass (providers/marker.py).
        refs = [ref for ref, *_ in candidates.values()]
        extra = {ref._moId: p for ref, p in retrieve_objects(self._content, refs, vim.VirtualMachine,
                                                               ["config.extraConfig"], stream=streamed)} if refs else {}
        for moid, (ref, props, owner, attributes) in candidates.items():
            marker = owner_from_extra_config(extra.get(moid, {}).get("config.extraConfig"))
            name = unescaped(props["name"])
            if owner is None and marker is not None and marker.stack == stack and made_by_create(name, marker):
                observed = self._normalize(ref, props, marker, attributes, streamed)
                observed.marker_complete = False
                claim(result, marker.resource, observed, "VM")
            elif name in wanted:
                result.foreign[name] = self._normalize(ref, props, owner or marker, attributes, streamed)
        specs = declared.get(self.kind, {})
        if not specs or any(getattr(spec, "cloud_init", None) is not None for spec in specs.values()):
            self._read_cloud_init(list(result.owned.values()))
        return result

    def _read_cloud_init(self, observed: list[Observed]) -> None:
        """Fill in the cloud-init digest of these VMs from their guestinfo keys, in one retrieval. extraConfig can be
        large, so observe reads it only when the stack declares cloud-init somewhere, or declares no VM (a Pulumi
        refresh); a state without ``cloud_init`` was not read (not: has none)."""
        if not observed:
            return
        refs = [live.handle.ref for live in observed]
        extra = {ref._moId: props for ref, props in retrieve_objects(self._content, refs, vim.VirtualMachine,
                                                                     ["config.extraConfig"], stream=self.stream_reads)}
        for live in observed:
            live.state["cloud_init"] = guestinfo.digest(extra.get(live.handle.ref._moId, {}).get("config.extraConfig"))

    def observe_ids(self, stack: str, ids: list[str], declared: Declared) -> dict[str, Observed]:
        """VMs by instance UUID, from the one retrieval of every VM that ``observe`` makes too (and their guestinfo)."""
        wanted = set(ids)
        return self._by_uuid(lambda uuid: uuid in wanted)

    def observe_all(self, stack: str, declared: Declared) -> dict[str, Observed]:
        """Every VM (not templates) by instance UUID, in the same two retrievals as ``observe_ids``."""
        return self._by_uuid(lambda uuid: uuid is not None)

    def _by_uuid(self, wanted: Any) -> dict[str, Observed]:
        found: dict[str, Observed] = {}
        for ref, props in self._read_all():
            uuid = props.get("config.instanceUuid")
            if not wanted(uuid) or props.get("config.template") or "name" not in props:
                continue
            attributes = self._attributes.parse(props.get("customValue"))
            found[uuid] = self._normalize(ref, props, Owner.decode(attributes.get(MARKER_KEY)), attributes,
                                          self.stream_reads)
        self._read_cloud_init(list(found.values()))
        return found

    def _read_all(self) -> list[tuple[Any, dict[str, Any]]]:
        rows = retrieve(self._content, self._inventory.placement.vm_folder, vim.VirtualMachine, PATHS,
                        stream=self.stream_reads)
        self._attributes.keys()
        self._known_references(rows)
        return rows

    def _known_references(self, rows: list[tuple[Any, dict[str, Any]]]) -> None:
        """Refresh the inventory once if any VM runs on a host, or any NIC names a port group, that it does
        not know yet."""
        placement = self._inventory.placement
        for _, props in rows:
            host = props.get("runtime.host")
            if host is not None and host._moId not in placement.host_names:
                self._inventory.refresh()
                return
            for device in props.get("config.hardware.device") or []:
                port = getattr(getattr(device, "backing", None), "port", None)
                if port is not None and getattr(port, "portgroupKey", None) not in placement.portgroup_names:
                    self._inventory.refresh()
                    return

    def _normalize(self, ref: Any, props: dict[str, Any], owner: Owner | None, attributes: dict[str, str],
                   streamed: bool = False) -> Observed:
        placement = self._inventory.placement
        hardware = split_devices(props.get("config.hardware.device"))
        boot = props.get("config.bootOptions")
        guest_id = props.get("config.guestId") or ""
        host = props.get("runtime.host")
        state = {
            "cpus": props.get("config.hardware.numCPU"),
            "sockets": sockets_of(props.get("config.hardware.numCPU"), props.get("config.hardware.numCoresPerSocket")),
            "memory": props.get("config.hardware.memoryMB"),
            "node": None if host is None else placement.host_names.get(host._moId, host._moId),
            "machine": props.get("config.version") or None,
            "disks": [disk_state(slot, d, hardware, placement.datastore_names) for slot, d in hardware.disks.items()],
            "nics": [nic_state(slot, n, placement.portgroup_names.get) for slot, n in hardware.nics.items()],
            "gpus": [gpu_state(gpu) for gpu in hardware.gpus],
            "firmware": "uefi" if props.get("config.firmware") == "efi" else "bios",
            "secure_boot": bool(getattr(boot, "efiSecureBootEnabled", False)),
            "guest_os": NEUTRAL_GUEST.get(guest_id, guest_id),
            "power": "on" if props.get("runtime.powerState") == "poweredOn" else "off",
            "nested_virtualization": bool(props.get("config.nestedHVEnabled")),
            "clone_from": None,
            "linked_clone": False,
            "tags": decode_tags(attributes.get(TAGS_KEY)),
            "cloud_init": guestinfo.digest(props["config.extraConfig"]) if "config.extraConfig" in props else None,
        }
        handle = VmHandle(ref, hardware, bool(props.get("config.memoryReservationLockedToMax")),
                          folder=vm_folder(props.get("config.files.vmPathName")), streamed=streamed)
        record = attributes.get(RESTORE_KEY) or ""
        return Observed(name=unescaped(props["name"]), handle=handle, owner=owner, state=state,
                        id=props.get("config.instanceUuid"),
                        restore_power=restore_from(RESTORE_PREFIX + record) if record else None,
                        unexpressed=unexpressed(props.get("config.hardware.device")))

    def _observe_one(self, ref: Any, owner: Owner) -> Observed:
        rows = retrieve_objects(self._content, [ref], vim.VirtualMachine, [*PATHS, "config.extraConfig"])
        if not rows:
            raise VirtplaneError(f"VM {owner.resource} vanished right after it was created")
        props = rows[0][1]
        self._attributes.keys()
        return self._normalize(ref, props, owner, self._attributes.parse(props.get("customValue")))

    # ---- slots and placement -------------------------------------------------------------------------

    def new_slot(self, collection: str, item: dict[str, Any], taken: set[str]) -> str:
        if collection == "nics":
            return next_numbered("ethernet", taken)
        return new_disk_slot(item.get("bus"), taken)

    def place(self, spec: Spec, placed: Mapping[str, int]) -> str | None:
        """None in a cluster (DRS or the resource pool decides); the host when the endpoint's compute
        resource is a standalone host."""
        placement = self._inventory.placement
        if isinstance(placement.cluster, vim.ClusterComputeResource) or len(placement.cluster_hosts) != 1:
            return None
        return next(iter(placement.cluster_hosts))

    # ---- writing -------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> Created:
        vm_spec = cast(VirtualMachineSpec, spec)
        if vm_spec.clone_from:
            observed = self._clone(owner, vm_spec)
        else:
            observed = self._create(owner, resolve_vm(vm_spec.with_creation_defaults(), None, self.new_slot))
        assert observed.id is not None
        outputs = dict(observed.state)
        outputs["memory_reservation_locked_to_max"] = observed.handle.memory_locked
        return Created(observed.id, outputs)

    def _create(self, owner: Owner, spec: VirtualMachineSpec) -> Observed:
        placement = self._inventory.placement
        name = owner.resource
        disks, nics = spec.disks or [], spec.nics or []
        datastore = disks[0].storage if disks and disks[0].storage else placement.datastore_name
        self._inventory.datastore(datastore)  # a clear error for an unknown datastore
        plan = DevicePlan(Hardware(controllers=dict(DEFAULT_IDE), keys=set(DEFAULT_IDE)), name)
        host_pci = self._devices.host_pci(spec.node, name) if needs_host_devices(spec.gpus, nics) else None
        for disk in disks:
            self._devices.add_disk(plan, disk)
        for nic in nics:
            self._devices.add_nic(plan, nic, host_pci, name)
        gpus = [new_gpu(gpu, fixed, host_pci, f"VM {name}: gpus[{index}]", plan.new_key())
                for index, (gpu, fixed) in enumerate(zip(spec.gpus or [], self._fixed_gpus(name, spec), strict=True))]
        for device in gpus:
            plan.add_device(device)
        config = config_spec(spec)
        if holds_devices(spec.gpus, nics):
            config.memoryReservationLockedToMax = True  # PCI devices need all the VM's memory reserved
        config.name = name
        config.cpuHotAddEnabled = True
        config.memoryHotAddEnabled = True
        config.extraConfig = [extra_config_marker(owner), *(config.extraConfig or []),
                              *large_bar_options(gpus, host_pci)]
        config.files = vim.vm.FileInfo(vmPathName=f"[{datastore}]")
        config.deviceChange = plan.changes
        if spec.machine is not None:
            config.version = spec.machine
        host, pool = self._inventory.host_and_pool(spec.node)
        ref = self._run(lambda: placement.vm_folder.CreateVM_Task(config=config, pool=pool, host=host),
                        f"create VM {name}")
        self._attributes.write_owner(ref, owner)
        if spec.tags:
            self._attributes.write_tags(ref, spec.tags)
        if spec.power == "on":
            self._power(ref, name, on=True)
        return self._observe_one(ref, owner)

    def _clone(self, owner: Owner, spec: VirtualMachineSpec) -> Observed:
        placement = self._inventory.placement
        name = owner.resource
        sources = [ref for ref, props in retrieve(self._content, placement.vm_folder, vim.VirtualMachine, ["name"])
                   if unescaped(props.get("name") or "") == spec.clone_from]
        if len(sources) != 1:
            found = f"{len(sources)} VMs or templates" if sources else "no VM or template"
            raise VirtplaneError(f"VM {name} clones '{spec.clone_from}', but {found} of that name exist in vSphere "
                                 f"datacenter {placement.datacenter_name} (exactly one is needed)")
        source = sources[0]
        wanted = [*TEMPLATE_PATHS, "config.version", "config.hardware.device"] + (
            ["snapshot"] if spec.linked_clone else [])
        rows = retrieve_objects(self._content, [source], vim.VirtualMachine, wanted)
        source_props = rows[0][1] if rows else {}
        source_version = source_props.get("config.version")
        if spec.machine is not None and version_number(spec.machine) < version_number(source_version):
            raise VirtplaneError(f"VM {name} asks for hardware version {spec.machine}, but '{spec.clone_from}' "
                                 f"has {source_version} and a VM's hardware version cannot be lowered")
        datastore = spec.disks[0].storage if spec.disks and spec.disks[0].storage else None
        host, pool = self._inventory.host_and_pool(spec.node)
        location = vim.vm.RelocateSpec(pool=pool, host=host, datastore=self._inventory.datastore(datastore))
        snapshot = None
        if spec.linked_clone:
            snapshot = getattr(source_props.get("snapshot"), "currentSnapshot", None)
            if snapshot is None:
                raise VirtplaneError(f"VM {name}: template '{spec.clone_from}' has no snapshot; a linked clone "
                                     "needs one (take a snapshot of it, or set linked_clone=False for a full copy)")
            location.diskMoveType = LINKED_CLONE_DISKS
        else:
            location.disk = self._disk_locators(spec, source_props, location.datastore)
        cloud_init = guestinfo.options(spec.cloud_init) if spec.cloud_init is not None else []
        config = vim.vm.ConfigSpec(numCPUs=spec.cpus, numCoresPerSocket=cores_per_socket(spec.cpus, spec.sockets),
                                   memoryMB=spec.memory, extraConfig=[extra_config_marker(owner), *cloud_init])
        clone_spec = vim.vm.CloneSpec(location=location, powerOn=False, template=False, config=config,
                                      snapshot=snapshot)
        ref = self._run(lambda: source.CloneVM_Task(folder=placement.vm_folder, name=name, spec=clone_spec),
                        f"clone VM {name} from {spec.clone_from}")
        self._attributes.write_owner(ref, owner)
        observed = self._observe_one(ref, owner)
        if spec.machine is not None and observed.state["machine"] != spec.machine:
            self._run(lambda: ref.UpgradeVM_Task(version=spec.machine),
                      f"upgrade VM {name} to hardware version {spec.machine}")
            observed = self._observe_one(ref, owner)
            if observed.state["machine"] != spec.machine:
                raise VirtplaneError(f"VM {name} was cloned from '{spec.clone_from}' with hardware version "
                                     f"{source_version}; vSphere upgraded it to {observed.state['machine']}, "
                                     f"not {spec.machine}")
        spec = resolve_vm(inherited(spec, source_props), observed.state,
                          self.new_slot)
        changes = diff(spec.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"])
        # What the stack leaves unset keeps the template's value. A declared disk placement the clone did not get
        # (creation_problems refused what the clone call cannot set) would be replaced on every later plan: the
        # new clone is deleted again and the apply refused, naming the field.
        for change in changes:
            problem = f"the clone has {change.old!r}, not {change.new!r}"
            try:
                replaced = self.rule(change) is Rule.REPLACE
            except RefusedChange as exc:
                replaced, problem = True, str(exc)
            if replaced:
                self.delete(observed)
                raise not_as_declared(f"VM {name} clones '{spec.clone_from}'", change.path, problem)
        if changes:
            self._update(observed, spec, changes, self._fixed_gpus(name, spec))
            observed = self._observe_one(ref, owner)
        return observed

    def _disk_locators(self, spec: VirtualMachineSpec, source: dict[str, Any], home: Any) -> list[Any]:
        """For a full clone: where each of the source's disks goes and whether it is thin, for those whose declared
        datastore or thinness differs from the source's (vCenter applies RelocateSpec disk locators to a full
        clone's disks)."""
        hardware = split_devices(source.get("config.hardware.device"))
        names = self._inventory.placement.datastore_names
        theirs = {slot: disk_state(slot, device, hardware, names) for slot, device in hardware.disks.items()}
        declared = resolve("disks", [disk.model_dump() for disk in spec.disks or []], list(theirs.values()),
                           self.new_slot)
        locators = []
        for disk in declared:
            have = theirs.get(disk["slot"])
            thin, storage = disk.get("thin"), disk.get("storage")
            if have is None or ((thin is None or thin == have["thin"]) and (storage is None
                                                                           or storage == have["storage"])):
                continue
            backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=have["thin"] if thin is None else thin)
            locators.append(vim.vm.RelocateSpec.DiskLocator(
                diskId=hardware.disks[disk["slot"]].key, diskBackingInfo=backing,
                datastore=self._inventory.datastore(storage) if storage else home))
        return locators

    def creation_problems(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        """A clone's disks: a full clone gets its disks' datastore and thinness at clone time; their bus, a smaller
        size, or (linked clone) any placement cannot differ from the source's (virtplane/clones.py)."""
        vm_spec = cast(VirtualMachineSpec, spec)
        found = self._sources.get(vm_spec.clone_from or "", [])
        if len(found) != 1 or not vm_spec.disks:
            return []  # no clone, or the clone reports the missing or ambiguous source
        hardware = split_devices(found[0].get("config.hardware.device"))
        names = self._inventory.placement.datastore_names
        theirs = [disk_state(slot, device, hardware, names) for slot, device in hardware.disks.items()]
        settable = frozenset() if vm_spec.linked_clone else frozenset({"storage", "thin"})
        return clone_disk_problems(vm_spec, str(vm_spec.clone_from), theirs, settable, self.new_slot, "vSphere")

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        vm_spec = cast(VirtualMachineSpec, spec)
        self._update(observed, vm_spec, changes, [gpu.device is not None for gpu in vm_spec.gpus or []])

    def _update(self, observed: Observed, vm_spec: VirtualMachineSpec, changes: list[FieldChange],
                fixed_gpus: list[bool]) -> None:
        """``update``; ``fixed_gpus`` tells, per declared GPU, whether its device is the stack's own choice."""
        self._guard(observed, "update")
        handle = self._writable(observed.handle, observed.name)
        rules = [self.rule(change) for change in changes]
        fields = {top_field(change.path) for change in changes}
        config = config_spec(vm_spec, observed.state, fields)
        plan = DevicePlan(handle.hardware, observed.name, handle.folder)
        devices_change = "gpus" in fields or any(touches_sriov(change) for change in changes)
        needs_host = devices_change and needs_host_devices(vm_spec.gpus if "gpus" in fields else None,
                                                            vm_spec.nics if "nics" in fields else None)
        moving = "node" in fields and vm_spec.node is not None
        # A VM holding PCI devices is pinned to its host: it moves after they are changed; one holding none
        # moves first, so the devices it gets are those of the host it will run on.
        if moving and holds_live_devices(observed.state) and vm_spec.node != observed.state.get("node"):
            raise VirtplaneError(f"VM {observed.name}: field 'node': "
                                 f"{moving_device_vm(observed.state.get('node'), vm_spec.node)}")
        move_first = moving and not holds_live_devices(observed.state)
        node = vm_spec.node if move_first else observed.state.get("node")
        host_pci = self._devices.host_pci(node, observed.name) if needs_host else None
        self._devices.reconcile(plan, handle.hardware, vm_spec, changes, host_pci, observed.name)
        if "gpus" in fields and vm_spec.gpus is not None:
            gpus = self._devices.rebuild_gpus(plan, handle.hardware, vm_spec.gpus, fixed_gpus, host_pci, observed.name)
            if options := large_bar_options(gpus, host_pci):
                config.extraConfig = options
        if devices_change and holds_devices_after(vm_spec, observed.state) and not handle.memory_locked:
            config.memoryReservationLockedToMax = True
        if plan.changes:
            config.deviceChange = plan.changes
        configure = changes_anything(config)
        upgrade = next((change.new for change, rule in zip(changes, rules, strict=True)
                        if change.path == "machine" and rule is Rule.POWER_OFF), None)
        was_on = observed.state["power"] == "on"
        want_on = vm_spec.power == "on" if "power" in fields and vm_spec.power is not None else was_on
        powered_on = was_on
        switched_off = powered_on and Rule.POWER_OFF in rules and (configure or upgrade is not None)
        recorded = observed.restore_power is not None
        if switched_off:
            if want_on:  # recorded first: a run killed while the VM is off starts it again (marker.py)
                self._attributes.write_restore(handle.ref, "on")
                recorded = True
            self._switch_off(handle.ref, observed.name)
            powered_on = False
        try:
            if move_first:
                self._move(handle.ref, observed.name, node)
            if configure:
                self._run(lambda: handle.ref.ReconfigVM_Task(spec=config), f"reconfigure VM {observed.name}")
            if upgrade is not None:
                self._run(lambda: handle.ref.UpgradeVM_Task(version=upgrade),
                          f"upgrade VM {observed.name} to hardware version {upgrade}")
            if moving and not move_first:
                self._move(handle.ref, observed.name, vm_spec.node)
            if "tags" in fields and vm_spec.tags is not None:
                self._attributes.write_tags(handle.ref, vm_spec.tags)
            if not observed.marker_complete and observed.owner is not None:
                self._attributes.write_owner(handle.ref, observed.owner)
        except BaseException as failure:
            if switched_off:  # the change failed: the VM runs again as it did before
                self._power_back_on(handle.ref, observed.name, failure)
                self._attributes.write_restore(handle.ref, None)
            raise
        if want_on and not powered_on:
            self._power(handle.ref, observed.name, on=True)
        elif not want_on and powered_on:
            self._switch_off(handle.ref, observed.name)
        if recorded:
            self._attributes.write_restore(handle.ref, None)

    def adopt(self, observed: Observed, owner: Owner) -> None:
        """The ownership custom attribute, where a create writes it (the VM's tags attribute stays as it is)."""
        if observed.owner is not None:
            raise OwnershipError(f"refusing to adopt VM {observed.name}: it already carries a virtplane ownership "
                                 f"marker (stack {observed.owner.stack})")
        self._attributes.write_owner(observed.handle.ref, owner)

    def delete(self, observed: Observed) -> None:
        """Power off, detach the disks from other VMs' folders (Destroy_Task deletes every disk attached), destroy."""
        self._guard(observed, "delete")
        handle: VmHandle = observed.handle
        ref = handle.ref
        if any(not in_folder(getattr(disk.backing, "fileName", None), handle.folder)
               for disk in handle.hardware.disks.values()):
            handle = self._writable(handle, observed.name)  # pyVmomi's own devices, to send back in a detach
        foreign = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=disk)
                   for disk in handle.hardware.disks.values()
                   if not in_folder(getattr(disk.backing, "fileName", None), handle.folder)]
        try:
            self._power(ref, observed.name, on=False, tolerate_state=True)
            if foreign:
                self._run(lambda: ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=foreign)),
                          f"detach the disks of other VMs from VM {observed.name}")
            self._run(ref.Destroy_Task, f"delete VM {observed.name}")
        except vmodl.fault.ManagedObjectNotFound:
            return
        except TaskFailed as failure:
            if not isinstance(failure.fault, vmodl.fault.ManagedObjectNotFound):
                raise

    def check(self, spec: Spec, declared: Declared) -> list[tuple[str, str]]:
        vm_spec = cast(VirtualMachineSpec, spec)
        placement = self._inventory.placement
        problems = []
        if vm_spec.node is not None and not placement.knows_host(vm_spec.node):
            problems.append(("node", self._inventory.unknown_host(vm_spec.node)))
        if vm_spec.clone_from and self._source_names is None:  # checked without an observe (the Pulumi plugin)
            self._source_names = [unescaped(props.get("name") or "") for _, props in retrieve(
                self._content, placement.vm_folder, vim.VirtualMachine, ["name"])]
        if vm_spec.clone_from and (count := (self._source_names or []).count(vm_spec.clone_from)) != 1:
            where = f"datacenter {placement.datacenter_name}"
            problems.append(("clone_from", f"no VM or template named '{vm_spec.clone_from}' exists in {where}"
                             if not count else f"{count} VMs or templates are named '{vm_spec.clone_from}' in "
                             f"{where}; a clone source must be one"))
        if vm_spec.machine is not None and not HARDWARE_VERSION.match(vm_spec.machine):
            problems.append(("machine", "on vSphere the machine is a hardware version such as 'vmx-19'"))
        for index, disk in enumerate(vm_spec.disks or []):
            if disk.bus == "virtio-blk":
                problems.append((f"disks[{index}].bus",
                                 "virtio-blk disks exist only on Proxmox; use 'paravirtual' (PVSCSI) on vSphere"))
            elif (why := slot_problem("disks", disk)) is not None:
                problems.append((f"disks[{index}].slot", why))
            if disk.storage is not None and disk.storage not in placement.datastores:
                known = ", ".join(sorted(placement.datastores))
                problems.append((f"disks[{index}].storage", f"datastore '{disk.storage}' does not exist in "
                                 f"datacenter {placement.datacenter_name} (choices: {known})"))
        networks = set(declared.get("Network", ())) | set(placement.networks)
        for index, nic in enumerate(vm_spec.nics or []):
            if nic.network not in networks:
                known = ", ".join(sorted(networks))
                problems.append((f"nics[{index}].network", f"network '{nic.network}' is neither declared in the "
                                 f"stack nor present in datacenter {placement.datacenter_name} (choices: {known})"))
            if (why := slot_problem("nics", nic)) is not None:
                problems.append((f"nics[{index}].slot", why))
        return problems

    def rule(self, change: FieldChange) -> Rule:
        return vm_rule(change)

    def volumes(self, observed: Observed) -> Volumes:
        """The disks in the VM's own folder go with it; disks attached from elsewhere are detached first and kept."""
        handle: VmHandle = observed.handle
        found = Volumes()
        for disk in observed.state.get("disks") or []:
            device = handle.hardware.disks.get(disk["slot"])
            file_name = getattr(getattr(device, "backing", None), "fileName", None) or "?"
            if in_folder(file_name, handle.folder):
                found.destroyed.append(f"{disk['slot']} ({file_name}, {disk['size']} GiB)")
            else:
                found.kept.append(f"{disk['slot']} ({file_name}, {disk['size']} GiB), from another VM's folder")
        return found

    def rule_in(self, change: FieldChange, live: Mapping[str, Any] | None) -> Rule:
        if change.path == "node" and live is not None and holds_live_devices(dict(live)):
            raise RefusedChange(moving_device_vm(live.get("node"), change.new))
        return self.rule(change)

    def guest_states(self, observed: list[Observed]) -> dict[str, GuestState]:
        return read_guest_states(self._content, observed)

    # ---- helpers -------------------------------------------------------------------------------------

    def _writable(self, handle: VmHandle, name: str) -> VmHandle:
        """The handle with pyVmomi's own device objects, which a change edits and sends back: a streamed
        handle's devices are re-read (one PropertyCollector call for this VM)."""
        if not handle.streamed:
            return handle
        rows = retrieve_objects(self._content, [handle.ref], vim.VirtualMachine,
                                ["config.hardware.device", "config.memoryReservationLockedToMax"])
        if not rows or "config.hardware.device" not in rows[0][1]:
            raise VirtplaneError(f"VM {name} vanished before it could be changed")
        props = rows[0][1]
        return VmHandle(handle.ref, split_devices(props.get("config.hardware.device")),
                        bool(props.get("config.memoryReservationLockedToMax")), folder=handle.folder)

    @staticmethod
    def _guard(observed: Observed, action: str) -> None:
        if observed.owner is None and observed.marker_complete:
            raise OwnershipError(f"refusing to {action} VM {observed.name}: it carries no virtplane ownership "
                                 "marker, so it was not created by virtplane")

    def _fixed_gpus(self, name: str, spec: VirtualMachineSpec) -> list[bool]:
        """Per GPU of a new VM, whether it gets a fixed backing: its device was named by the stack (as the
        declaration observe saw says), not chosen by placement. Unknown declarations keep what is given."""
        named = self._named_gpus.get(name)
        return [gpu.device is not None and (named is None or index >= len(named) or named[index])
                for index, gpu in enumerate(spec.gpus or [])]

    def _move(self, ref: Any, name: str, node: str) -> None:
        """Migrate the VM to host ``node`` (vMotion when it runs, cold migration otherwise)."""
        host, pool = self._inventory.host_and_pool(node)
        location = vim.vm.RelocateSpec(host=host, pool=pool)
        self._run(lambda: ref.RelocateVM_Task(spec=location), f"move VM {name} to host {node}")

    def _power(self, ref: Any, name: str, on: bool, tolerate_state: bool = False) -> None:
        what = f"power {'on' if on else 'off'} VM {name}"
        try:
            self._run(ref.PowerOnVM_Task if on else ref.PowerOffVM_Task, what)
        except vim.fault.InvalidPowerState:
            if not tolerate_state:
                raise
        except TaskFailed as failure:
            if not (tolerate_state and isinstance(failure.fault, vim.fault.InvalidPowerState)):
                raise

    def _switch_off(self, ref: Any, name: str) -> None:
        """Shut the guest down cleanly when VMware Tools run, else (or after the timeout) power it off hard."""
        if not shut_down_guest(self._content, ref, self.shutdown_timeout):
            self._power(ref, name, on=False, tolerate_state=True)

    def _power_back_on(self, ref: Any, name: str, failure: BaseException) -> None:
        try:
            self._power(ref, name, on=True, tolerate_state=True)
        except (VirtplaneError, vmodl.MethodFault) as again:
            raise ProviderError(f"{failure}; VM {name} stays powered off, as powering it back on failed too: "
                                f"{again}") from failure

    @staticmethod
    def _run(start: Any, what: str) -> Any:
        try:
            task = start()
        except vmodl.fault.ManagedObjectNotFound:
            raise
        except vim.fault.InvalidPowerState:
            raise
        except vmodl.MethodFault as fault:
            raise provider_error(what, fault) from None
        return wait_for_task(task, what=what)
