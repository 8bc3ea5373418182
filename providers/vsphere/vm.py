"""The VirtualMachine kind on vSphere: observe in one paged pass, create, update and delete."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from pyVmomi import vim, vmodl

from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError, VirtplaneError
from virtplane.providers.base import (
    MARKER_KEY,
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Rule,
)
from virtplane.providers.vm_rules import top_field
from virtplane.providers.vsphere.claims import claim
from virtplane.providers.vsphere.collector import retrieve, retrieve_objects
from virtplane.providers.vsphere.devices import (
    DEFAULT_IDE,
    DevicePlan,
    Hardware,
    disk_state,
    nic_backing,
    nic_state,
    split_devices,
)
from virtplane.providers.vsphere.faults import provider_error
from virtplane.providers.vsphere.inventory import Inventory
from virtplane.providers.vsphere.ownership import (
    TAGS_KEY,
    CustomAttributes,
    decode_tags,
    extra_config_marker,
    owner_from_extra_config,
)
from virtplane.providers.vsphere.power import SHUTDOWN_TIMEOUT, shut_down_guest
from virtplane.providers.vsphere.tasks import TaskFailed, wait_for_task
from virtplane.providers.vsphere.vm_rules import HARDWARE_VERSION, version_number, vm_rule
from virtplane.specs import CREATE_ONLY, Spec, VirtualMachineSpec

GUEST_IDS = {"linux": "otherLinux64Guest", "windows": "windows2019srv_64Guest", "other": "otherGuest64"}
_NEUTRAL_GUEST = {guest_id: name for name, guest_id in GUEST_IDS.items()}
PATHS = ["name", "config.template", "customValue", "config.hardware.numCPU", "config.hardware.numCoresPerSocket",
         "config.hardware.memoryMB", "config.hardware.device", "config.firmware", "config.bootOptions",
         "config.guestId", "runtime.powerState", "runtime.host", "config.version", "config.nestedHVEnabled"]
LINKED_CLONE_DISKS = "createNewChildDiskBacking"


def cores_per_socket(spec: VirtualMachineSpec) -> int | None:
    """Cores per virtual socket to write; None (sockets not declared) keeps vSphere's layout."""
    return None if spec.sockets is None else spec.cpus // spec.sockets


def sockets_of(num_cpu: int | None, cores_per_socket: int | None) -> int:
    """Virtual sockets from vSphere's total vCPUs and cores per socket (0 or unset means one core each)."""
    cores = cores_per_socket or 1
    return max(1, (num_cpu or 0) // cores)


@dataclass
class VmHandle:
    """The driver's reference to a live VM: its moref and its devices as last read."""

    ref: Any
    hardware: Hardware


class VirtualMachineDriver(KindDriver):
    kind = "VirtualMachine"

    def __init__(self, si: Any, inventory: Inventory):
        self._si = si
        self._content = si.RetrieveContent()
        self._inventory = inventory
        self._attributes = CustomAttributes(si, vim.VirtualMachine)
        self.shutdown_timeout = SHUTDOWN_TIMEOUT  # seconds a guest gets to shut down before a hard power-off

    # ---- reading -------------------------------------------------------------------------------------

    def observe(self, stack: str, declared: Declared) -> ObserveResult:
        result = ObserveResult()
        wanted = set(declared.get(self.kind, {}))
        rows = retrieve(self._content, self._inventory.placement.vm_folder, vim.VirtualMachine, PATHS)
        self._attributes.keys()
        self._known_references(rows)
        candidates: dict[str, tuple[Any, dict[str, Any], Owner | None, dict[str, str]]] = {}
        for ref, props in rows:
            if props.get("config.template") or "name" not in props:
                continue
            attributes = self._attributes.parse(props.get("customValue"))
            owner = Owner.decode(attributes.get(MARKER_KEY))
            if owner is not None and owner.stack == stack:
                claim(result, owner.resource, self._normalize(ref, props, owner, attributes), "VM")
            elif props["name"] in wanted:
                candidates[ref._moId] = (ref, props, owner, attributes)
        if candidates:
            refs = [ref for ref, *_ in candidates.values()]
            extra = {ref._moId: p for ref, p in retrieve_objects(self._content, refs, vim.VirtualMachine,
                                                                   ["config.extraConfig"])}
            for moid, (ref, props, owner, attributes) in candidates.items():
                marker = owner_from_extra_config(extra.get(moid, {}).get("config.extraConfig"))
                if owner is None and marker is not None and marker.stack == stack:
                    observed = self._normalize(ref, props, marker, attributes)
                    observed.marker_complete = False
                    claim(result, marker.resource, observed, "VM")
                else:
                    result.foreign[props["name"]] = self._normalize(ref, props, owner or marker, attributes)
        return result

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

    def _normalize(self, ref: Any, props: dict[str, Any], owner: Owner | None, attributes: dict[str, str]
                   ) -> Observed:
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
            "disks": [disk_state(d, hardware, placement.datastore_names) for d in hardware.disks],
            "nics": [nic_state(n, placement.portgroup_names.get) for n in hardware.nics],
            "firmware": "uefi" if props.get("config.firmware") == "efi" else "bios",
            "secure_boot": bool(getattr(boot, "efiSecureBootEnabled", False)),
            "guest_os": _NEUTRAL_GUEST.get(guest_id, guest_id),
            "power": "on" if props.get("runtime.powerState") == "poweredOn" else "off",
            "nested_virtualization": bool(props.get("config.nestedHVEnabled")),
            "clone_from": None,
            "linked_clone": False,
            "tags": decode_tags(attributes.get(TAGS_KEY)),
        }
        return Observed(name=props["name"], handle=VmHandle(ref, hardware), owner=owner, state=state)

    def _observe_one(self, ref: Any, owner: Owner) -> Observed:
        rows = retrieve_objects(self._content, [ref], vim.VirtualMachine, PATHS)
        if not rows:
            raise VirtplaneError(f"VM {owner.resource} vanished right after it was created")
        props = rows[0][1]
        self._attributes.keys()
        return self._normalize(ref, props, owner, self._attributes.parse(props.get("customValue")))

    # ---- writing -------------------------------------------------------------------------------------

    def create(self, owner: Owner, spec: Spec) -> None:
        vm_spec = cast(VirtualMachineSpec, spec)
        if vm_spec.clone_from:
            self._clone(owner, vm_spec)
            return
        placement = self._inventory.placement
        name = owner.resource
        datastore = (vm_spec.disks[0].storage if vm_spec.disks and vm_spec.disks[0].storage
                     else placement.datastore_name)
        self._inventory.datastore(datastore)  # a clear error for an unknown datastore
        plan = DevicePlan(Hardware(controllers=dict(DEFAULT_IDE)), name)
        self._plan_disks(plan, Hardware(), vm_spec, range(len(vm_spec.disks)))
        for nic in vm_spec.nics:
            plan.add_nic(nic, nic_backing(self._inventory.network(nic.network)))
        config = self._config(vm_spec, name)
        config.cpuHotAddEnabled = True
        config.memoryHotAddEnabled = True
        config.extraConfig = [extra_config_marker(owner)]
        config.files = vim.vm.FileInfo(vmPathName=f"[{datastore}]")
        config.deviceChange = plan.changes
        if vm_spec.machine is not None:
            config.version = vm_spec.machine
        host, pool = self._inventory.host_and_pool(vm_spec.node)
        ref = self._run(lambda: placement.vm_folder.CreateVM_Task(config=config, pool=pool, host=host),
                        f"create VM {name}")
        self._attributes.write_owner(ref, owner)
        if vm_spec.tags:
            self._attributes.write_tags(ref, vm_spec.tags)
        if vm_spec.power == "on":
            self._power(ref, name, on=True)

    def _clone(self, owner: Owner, spec: VirtualMachineSpec) -> None:
        placement = self._inventory.placement
        name = owner.resource
        sources = [ref for ref, props in retrieve(self._content, placement.vm_folder, vim.VirtualMachine, ["name"])
                   if props.get("name") == spec.clone_from]
        if not sources:
            raise VirtplaneError(f"VM {name} clones '{spec.clone_from}', but no VM or template of that name "
                                 f"exists in vSphere datacenter {placement.datacenter_name}")
        source = sources[0]
        wanted = (["config.version"] if spec.machine is not None else []) + (["snapshot"] if spec.linked_clone else [])
        rows = retrieve_objects(self._content, [source], vim.VirtualMachine, wanted) if wanted else []
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
        config = vim.vm.ConfigSpec(numCPUs=spec.cpus, numCoresPerSocket=cores_per_socket(spec),
                                   memoryMB=spec.memory, extraConfig=[extra_config_marker(owner)])
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
        changes = diff(spec.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"])
        # Placement of the template's disks (datastore, thinness, bus) is kept as cloned.
        self.update(observed, spec, [c for c in changes if self.rule(c) is not Rule.REPLACE])

    def update(self, observed: Observed, spec: Spec, changes: list[FieldChange]) -> None:
        self._guard(observed, "update")
        vm_spec = cast(VirtualMachineSpec, spec)
        handle: VmHandle = observed.handle
        rules = [self.rule(change) for change in changes]
        fields = {top_field(change.path) for change in changes}
        config = self._config(vm_spec, observed.name, fields)
        plan = DevicePlan(handle.hardware, observed.name)
        if "disks" in fields:
            self._reconcile_disks(plan, handle.hardware, observed.state["disks"], vm_spec)
        if "nics" in fields:
            self._reconcile_nics(plan, handle.hardware, observed.state["nics"], vm_spec)
        if plan.changes:
            config.deviceChange = plan.changes
        configure = bool(plan.changes) or any(getattr(config, k, None) is not None for k in _CONFIG_FIELDS)
        upgrade = next((change.new for change, rule in zip(changes, rules, strict=True)
                        if change.path == "machine" and rule is Rule.POWER_OFF), None)
        powered_on = observed.state["power"] == "on"
        switched_off = powered_on and Rule.POWER_OFF in rules and (configure or upgrade is not None)
        if switched_off:
            self._switch_off(handle.ref, observed.name)
            powered_on = False
        try:
            if configure:
                self._run(lambda: handle.ref.ReconfigVM_Task(spec=config), f"reconfigure VM {observed.name}")
            if upgrade is not None:
                self._run(lambda: handle.ref.UpgradeVM_Task(version=upgrade),
                          f"upgrade VM {observed.name} to hardware version {upgrade}")
            if "node" in fields and vm_spec.node is not None:
                self._move(handle.ref, observed.name, vm_spec.node)
            if "tags" in fields:
                self._attributes.write_tags(handle.ref, vm_spec.tags)
            if not observed.marker_complete and observed.owner is not None:
                self._attributes.write_owner(handle.ref, observed.owner)
        except BaseException as failure:
            if switched_off:  # the change failed: the VM runs again as it did before
                self._power_back_on(handle.ref, observed.name, failure)
            raise
        if vm_spec.power == "on" and not powered_on:
            self._power(handle.ref, observed.name, on=True)
        elif vm_spec.power == "off" and powered_on:
            self._switch_off(handle.ref, observed.name)

    def delete(self, observed: Observed) -> None:
        self._guard(observed, "delete")
        ref = observed.handle.ref
        try:
            self._power(ref, observed.name, on=False, tolerate_state=True)
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
        if vm_spec.machine is not None and not HARDWARE_VERSION.match(vm_spec.machine):
            problems.append(("machine", "on vSphere the machine is a hardware version such as 'vmx-19'"))
        for index, disk in enumerate(vm_spec.disks):
            if disk.bus == "virtio-blk":
                problems.append((f"disks[{index}].bus",
                                 "virtio-blk disks exist only on Proxmox; use 'paravirtual' (PVSCSI) on vSphere"))
            if disk.storage is not None and disk.storage not in placement.datastores:
                known = ", ".join(sorted(placement.datastores))
                problems.append((f"disks[{index}].storage", f"datastore '{disk.storage}' does not exist in "
                                 f"datacenter {placement.datacenter_name} (choices: {known})"))
        networks = set(declared.get("Network", ())) | set(placement.networks)
        for index, nic in enumerate(vm_spec.nics):
            if nic.network not in networks:
                known = ", ".join(sorted(networks))
                problems.append((f"nics[{index}].network", f"network '{nic.network}' is neither declared in the "
                                 f"stack nor present in datacenter {placement.datacenter_name} (choices: {known})"))
        return problems

    def rule(self, change: FieldChange) -> Rule:
        return vm_rule(change)

    # ---- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _guard(observed: Observed, action: str) -> None:
        if observed.owner is None and observed.marker_complete:
            raise OwnershipError(f"refusing to {action} VM {observed.name}: it carries no virtplane ownership "
                                 "marker, so it was not created by virtplane")

    def _config(self, spec: VirtualMachineSpec, name: str, fields: Collection[str] | None = None
                ) -> vim.vm.ConfigSpec:
        """A ConfigSpec carrying ``fields`` of ``spec`` (all scalar fields when None)."""
        def want(field: str) -> bool:
            return fields is None or field in fields

        config = vim.vm.ConfigSpec()
        if fields is None:
            config.name = name
        if want("cpus") or want("sockets"):
            config.numCPUs = spec.cpus
            config.numCoresPerSocket = cores_per_socket(spec)
        if want("memory"):
            config.memoryMB = spec.memory
        if want("guest_os"):
            config.guestId = GUEST_IDS.get(spec.guest_os, spec.guest_os)
        if want("firmware"):
            config.firmware = "efi" if spec.firmware == "uefi" else "bios"
        if want("secure_boot") or (fields is not None and "firmware" in fields):
            config.bootOptions = vim.vm.BootOptions(efiSecureBootEnabled=spec.secure_boot)
        if want("nested_virtualization"):
            config.nestedHVEnabled = spec.nested_virtualization
        return config

    def _plan_disks(self, plan: DevicePlan, hardware: Hardware, spec: VirtualMachineSpec,
                    indexes: range) -> None:
        placement = self._inventory.placement
        for index in indexes:
            disk = spec.disks[index]
            name = disk.storage or placement.datastore_name
            plan.add_disk(disk, name, self._inventory.datastore(name))

    def _reconcile_disks(self, plan: DevicePlan, hardware: Hardware, live: list[dict[str, Any]],
                         spec: VirtualMachineSpec) -> None:
        for index, disk in enumerate(hardware.disks):
            if index >= len(spec.disks):
                plan.remove_disk(disk)
            elif spec.disks[index].size > live[index]["size"]:
                plan.grow_disk(disk, spec.disks[index].size)
        self._plan_disks(plan, hardware, spec, range(len(hardware.disks), len(spec.disks)))

    def _reconcile_nics(self, plan: DevicePlan, hardware: Hardware, live: list[dict[str, Any]],
                        spec: VirtualMachineSpec) -> None:
        for index, nic in enumerate(hardware.nics):
            if index >= len(spec.nics):
                plan.remove_nic(nic)
                continue
            want = spec.nics[index]
            if want.adapter != live[index]["adapter"]:
                plan.remove_nic(nic)
                plan.add_nic(want, nic_backing(self._inventory.network(want.network)))
            elif want.network != live[index]["network"]:
                plan.rewire_nic(nic, nic_backing(self._inventory.network(want.network)))
        for want in spec.nics[len(hardware.nics):]:
            plan.add_nic(want, nic_backing(self._inventory.network(want.network)))

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


_CONFIG_FIELDS = {"name", "numCPUs", "numCoresPerSocket", "memoryMB", "guestId", "firmware", "bootOptions",
                  "nestedHVEnabled"}

