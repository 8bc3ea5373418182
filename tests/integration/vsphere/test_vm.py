"""The VirtualMachine driver against the simulator: create, read back, update, delete, ownership."""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import SoapAdapter, vim

from tests.integration.vsphere.helpers import create_raw_vm, find_vm, reconfigure, set_owner_attribute
from virtplane.diff import diff
from virtplane.errors import OwnershipError, VirtplaneError
from virtplane.providers.base import FieldChange, Observed, Owner, RefusedChange, Rule
from virtplane.providers.vsphere.provider import VsphereProvider
from virtplane.providers.vsphere.tasks import wait_for_task
from virtplane.providers.vsphere.vm import sockets_of
from virtplane.slots import resolve_vm
from virtplane.specs import CREATE_ONLY, VirtualMachineSpec

FULL = {
    "cpus": 4, "sockets": 2, "memory": "6GiB", "node": "DC0_C0_H2", "machine": "vmx-15",
    # Disks read back grouped by controller family (SCSI, SATA, NVMe, IDE), so declare them that way.
    "disks": [{"size": 10, "datastore": "LocalDS_0"},
              {"size": 3, "datastore": "LocalDS_0", "bus": "lsilogic"},
              {"size": 20, "datastore": "LocalDS_0", "bus": "sata", "thin": False},
              {"size": 5, "datastore": "LocalDS_0", "bus": "nvme"}],
    "nics": [{"network": "DC0_DVPG0"}, {"network": "VM Network", "adapter": "e1000"},
             {"network": "DC0_DVPG0", "adapter": "e1000e"}],
    "firmware": "uefi", "secure_boot": True, "guest_os": "windows", "power": "on",
    "nested_virtualization": True, "tags": ["prod", "web"],
}


def vm_spec(**overrides: Any) -> VirtualMachineSpec:
    values = {"cpus": 1, "memory": 512, "disks": [{"size": 8, "datastore": "LocalDS_0"}],
              "nics": [{"network": "DC0_DVPG0"}]}
    return VirtualMachineSpec.model_validate(values | overrides)


def resolved(provider: VsphereProvider, spec: VirtualMachineSpec, state: dict[str, Any] | None = None
             ) -> VirtualMachineSpec:
    """``spec`` with every disk and NIC given its slot against ``state``, as the engine plans it."""
    return resolve_vm(spec, state, provider.driver("VirtualMachine").new_slot)


GiB_KB = 1024 * 1024


def raw_disks(si: Any, name: str) -> list[tuple[int, int, int, bool]]:
    """The VM's disks as the simulator holds them: (controller bus number, unit, GiB, thin), in that order."""
    vm = find_vm(si, name)
    buses = {d.key: d.busNumber for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualController)}
    return sorted((buses[d.controllerKey], d.unitNumber, d.capacityInKB // GiB_KB, bool(d.backing.thinProvisioned))
                  for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))


def raw_nics(si: Any, name: str) -> list[tuple[int, str, str]]:
    """The VM's NICs as the simulator holds them: (device key, adapter type, port group or network name)."""
    vm = find_vm(si, name)
    groups = {g.key: g.name for g in vm.network if isinstance(g, vim.dvs.DistributedVirtualPortgroup)}
    found = []
    for nic in vm.config.hardware.device:
        if isinstance(nic, vim.vm.device.VirtualEthernetCard):
            port = getattr(nic.backing, "port", None)
            network = groups[port.portgroupKey] if port is not None else nic.backing.deviceName
            found.append((nic.key, type(nic).__name__.rsplit(".", 1)[-1], network))
    return sorted(found)


def raw_tags(si: Any, name: str) -> str | None:
    """The virtplane.tags custom attribute of the VM, as the simulator holds it."""
    vm = find_vm(si, name)
    keys = {f.key: f.name for f in si.RetrieveContent().customFieldsManager.field}
    return next((v.value for v in vm.customValue if keys.get(v.key) == "virtplane.tags"), None)


@pytest.fixture
def soap_requests(monkeypatch) -> list[tuple[str, Any]]:
    """Every SOAP call this process makes, as (method name, arguments)."""
    requests: list[tuple[str, Any]] = []
    original = SoapAdapter.SoapStubAdapter.InvokeMethod

    def recording(self, mo, info, args, outerStub=None):
        requests.append((info.wsdlName, args))
        return original(self, mo, info, args, outerStub)

    monkeypatch.setattr(SoapAdapter.SoapStubAdapter, "InvokeMethod", recording)
    return requests


def observe_one(provider: VsphereProvider, stack: str, name: str) -> Observed:
    return provider.driver("VirtualMachine").observe(stack, {"VirtualMachine": dict.fromkeys([name])}).owned[name]


def converge(provider: VsphereProvider, stack: str, name: str, spec: VirtualMachineSpec) -> Observed:
    """Update the VM to ``spec`` the way the engine does, and read it back."""
    driver = provider.driver("VirtualMachine")
    observed = observe_one(provider, stack, name)
    spec = resolved(provider, spec, observed.state)
    changes = diff(spec.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"])
    driver.update(observed, spec, changes)
    return observe_one(provider, stack, name)


def test_observe_reads_back_every_field_of_a_created_vm(provider, stack, name):
    spec = VirtualMachineSpec.model_validate(FULL)
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    observed = observe_one(provider, stack, name)
    assert observed.state == resolved(provider, spec.with_creation_defaults()).model_dump()
    assert [d["slot"] for d in observed.state["disks"]] == ["scsi0:0", "scsi1:0", "sata0:0", "nvme0:0"]
    assert observed.owner == Owner(stack, name)
    assert observed.marker_complete


def test_a_vm_with_no_disks_nics_or_tags_reads_back_equal(provider, raw_si, stack, name):
    spec = VirtualMachineSpec(cpus=2, memory=1024, power="off", guest_os="other")
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    vm = find_vm(raw_si, name)
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, vm.runtime.powerState, vm.config.guestId) == (
        2, 1024, "poweredOff", "otherGuest64")
    assert raw_disks(raw_si, name) == [] and raw_nics(raw_si, name) == [] and raw_tags(raw_si, name) is None
    state = observe_one(provider, stack, name).state
    assert (state["cpus"], state["memory"], state["power"], state["guest_os"]) == (2, 1024, "off", "other")
    assert (state["disks"], state["nics"], state["gpus"], state["tags"]) == ([], [], [], [])


def test_a_guest_id_that_is_not_a_neutral_name_is_written_and_read_as_is(provider, stack, name):
    spec = vm_spec(guest_os="ubuntu64Guest")
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    assert observe_one(provider, stack, name).state["guest_os"] == "ubuntu64Guest"


def test_cpu_memory_disk_grow_disk_add_and_nic_add_are_applied_in_place(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    wanted = vm_spec(cpus=4, memory=2048, disks=[{"size": 16, "datastore": "LocalDS_0"},
                                                  {"size": 4, "datastore": "LocalDS_0"}],
                     nics=[{"network": "DC0_DVPG0"}, {"network": "VM Network"}], tags=["a"])
    before = observe_one(provider, stack, name)
    rules = {c.path: provider.driver("VirtualMachine").rule(c)
             for c in diff(resolved(provider, wanted, before.state).model_dump(), before.state)}
    assert rules == {"cpus": Rule.IN_PLACE, "memory": Rule.IN_PLACE, "disks[scsi0:0].size": Rule.IN_PLACE,
                     "disks[scsi0:1]": Rule.IN_PLACE, "nics[ethernet1]": Rule.IN_PLACE, "tags": Rule.IN_PLACE}
    converge(provider, stack, name, wanted)
    vm = find_vm(raw_si, name)
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (4, 2048)
    assert raw_disks(raw_si, name) == [(0, 0, 16, True), (0, 1, 4, True)]
    assert [(adapter, network) for _, adapter, network in raw_nics(raw_si, name)] == [
        ("VirtualVmxnet3", "DC0_DVPG0"), ("VirtualVmxnet3", "VM Network")]
    assert raw_tags(raw_si, name) == "a"


def test_a_nic_is_removed_and_rewired_in_place(provider, raw_si, stack, name):
    start = vm_spec(nics=[{"network": "DC0_DVPG0"}, {"network": "VM Network"}])
    provider.driver("VirtualMachine").create(Owner(stack, name), start)
    [(first_key, _, _), _] = raw_nics(raw_si, name)
    wanted = vm_spec(nics=[{"network": "VM Network"}])
    after = converge(provider, stack, name, wanted)
    assert raw_nics(raw_si, name) == [(first_key, "VirtualVmxnet3", "VM Network")]  # the first NIC, rewired
    assert after.state["nics"] == [{"network": "VM Network", "adapter": "paravirtual", "device": None,
                                    "slot": "ethernet0"}]


def test_an_adapter_change_powers_the_vm_off_and_back_on(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    wanted = vm_spec(nics=[{"network": "DC0_DVPG0", "adapter": "e1000"}], cpus=1)
    observed = converge(provider, stack, name, wanted)
    assert [(adapter, network) for _, adapter, network in raw_nics(raw_si, name)] == [("VirtualE1000", "DC0_DVPG0")]
    assert find_vm(raw_si, name).runtime.powerState == "poweredOn"
    assert observed.state["nics"][0]["slot"] == "ethernet0"
    assert observed.state["power"] == "on"


def test_power_is_switched_off_and_on(provider, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    assert converge(provider, stack, name, vm_spec(power="off")).state["power"] == "off"
    assert converge(provider, stack, name, vm_spec(power="on")).state["power"] == "on"


def test_firmware_change_to_uefi_with_secure_boot_is_applied(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec())
    vm = find_vm(raw_si, name)
    assert (vm.config.firmware, vm.config.nestedHVEnabled) == ("bios", False)
    wanted = vm_spec(firmware="uefi", secure_boot=True, nested_virtualization=True)
    state = converge(provider, stack, name, wanted).state
    vm = find_vm(raw_si, name)
    assert (vm.config.firmware, vm.config.bootOptions.efiSecureBootEnabled, vm.config.nestedHVEnabled) == (
        "efi", True, True)
    assert (state["firmware"], state["secure_boot"], state["nested_virtualization"]) == ("uefi", True, True)


def test_out_of_band_changes_show_up_in_observe(provider, raw_si, stack, name):
    start = vm_spec(cpus=2, memory=1024, nics=[{"network": "DC0_DVPG0"}, {"network": "VM Network"}])
    provider.driver("VirtualMachine").create(Owner(stack, name), start)
    vm = find_vm(raw_si, name)
    nic = next(d for d in vm.config.hardware.device
               if isinstance(d, vim.vm.device.VirtualEthernetCard) and d.deviceInfo.summary == "VM Network")
    reconfigure(vm, numCPUs=3, memoryMB=1536, deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)])
    state = observe_one(provider, stack, name).state
    assert (state["cpus"], state["memory"]) == (3, 1536)
    assert state["nics"] == [{"network": "DC0_DVPG0", "adapter": "paravirtual", "device": None, "slot": "ethernet0"}]


def test_a_same_named_vm_created_out_of_band_is_foreign_and_cannot_be_updated_or_deleted(
        provider, raw_si, stack, name):
    create_raw_vm(raw_si, name)
    driver = provider.driver("VirtualMachine")
    result = driver.observe(stack, {"VirtualMachine": dict.fromkeys([name])})
    assert name not in result.owned
    foreign = result.foreign[name]
    assert foreign.owner is None
    with pytest.raises(OwnershipError):
        driver.update(foreign, vm_spec(), [FieldChange("cpus", 1, 2)])
    with pytest.raises(OwnershipError):
        driver.delete(foreign)
    assert find_vm(raw_si, name) is not None


def test_a_vm_owned_by_another_stack_is_foreign(provider, stack, name):
    provider.driver("VirtualMachine").create(Owner("other-" + stack, name), vm_spec())
    result = provider.driver("VirtualMachine").observe(stack, {"VirtualMachine": dict.fromkeys([name])})
    assert result.foreign[name].owner == Owner("other-" + stack, name)
    assert name not in result.owned


def test_an_interrupted_create_is_owned_with_an_incomplete_marker_that_update_completes(
        provider, raw_si, stack, name):
    create_raw_vm(raw_si, name, marker=Owner(stack, name).encode())
    observed = observe_one(provider, stack, name)
    assert observed.marker_complete is False
    assert observed.owner == Owner(stack, name)
    wanted = VirtualMachineSpec(cpus=2, memory=256, power="off")
    provider.driver("VirtualMachine").update(observed, wanted,
                                             diff(wanted.model_dump(), observed.state, CREATE_ONLY["VirtualMachine"]))
    again = observe_one(provider, stack, name)
    assert again.marker_complete is True
    assert again.state["cpus"] == 2


def test_delete_removes_the_vm_and_tolerates_it_being_gone_already(provider, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name), vm_spec())
    observed = observe_one(provider, stack, name)
    driver.delete(observed)
    assert driver.observe(stack, {"VirtualMachine": dict.fromkeys([name])}).owned == {}
    driver.delete(observed)


def test_strays_of_the_stack_are_observed_even_when_not_named(provider, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(power="off"))
    assert name in provider.driver("VirtualMachine").observe(stack, {}).owned


def test_clone_from_a_vm_reconciles_the_clone_to_the_spec(provider, raw_si, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name + "-src"), vm_spec(power="off"))
    spec = vm_spec(clone_from=name + "-src", cpus=2, memory=1024, tags=["cloned"],
                   disks=[{"size": 12, "datastore": "LocalDS_0"}, {"size": 2, "datastore": "LocalDS_0"}])
    driver.create(Owner(stack, name), spec)
    state = observe_one(provider, stack, name).state
    vm = find_vm(raw_si, name)
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB, raw_tags(raw_si, name)) == (2, 1024, "cloned")
    assert [(bus, unit, size) for bus, unit, size, _ in raw_disks(raw_si, name)] == [(0, 0, 12), (0, 1, 2)]
    assert [(d["slot"], d["size"]) for d in state["disks"]] == [("scsi0:0", 12), ("scsi0:1", 2)]
    assert (state["cpus"], state["memory"], state["tags"]) == (2, 1024, ["cloned"])


def test_clone_from_a_missing_template_names_it(provider, stack, name):
    with pytest.raises(Exception, match="no-such-template"):
        provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(clone_from="no-such-template"))


@pytest.mark.parametrize(("path", "old", "new", "rule"), [
    ("cpus", 2, 4, Rule.IN_PLACE), ("cpus", 4, 2, Rule.POWER_OFF),
    ("memory", 1024, 2048, Rule.IN_PLACE), ("memory", 2048, 1024, Rule.POWER_OFF),
    ("firmware", "bios", "uefi", Rule.POWER_OFF), ("secure_boot", False, True, Rule.POWER_OFF),
    ("guest_os", "linux", "windows", Rule.POWER_OFF), ("nested_virtualization", False, True, Rule.POWER_OFF),
    ("power", "off", "on", Rule.IN_PLACE), ("tags", [], ["a"], Rule.IN_PLACE),
    ("disks[scsi0:1]", None, {"size": 1}, Rule.IN_PLACE), ("disks[scsi0:1]", {"size": 1}, None, Rule.IN_PLACE),
    ("disks[scsi0:0].size", 20, 40, Rule.IN_PLACE), ("disks[scsi0:0].storage", "a", "b", Rule.REPLACE),
    ("disks[sata0:0].thin", True, False, Rule.REPLACE), ("disks[sata0:0].bus", "sata", "nvme", Rule.REPLACE),
    ("nics[ethernet1]", None, {"network": "n"}, Rule.IN_PLACE),
    ("nics[ethernet0]", {"network": "n"}, None, Rule.IN_PLACE),
    ("nics[ethernet0].network", "a", "b", Rule.IN_PLACE),
    ("nics[ethernet0].adapter", "e1000", "paravirtual", Rule.POWER_OFF),
    ("sockets", 1, 2, Rule.POWER_OFF), ("node", "DC0_C0_H0", "DC0_C0_H1", Rule.IN_PLACE),
    ("machine", "vmx-13", "vmx-19", Rule.POWER_OFF), ("machine", "vmx-19", "vmx-13", Rule.REPLACE),
])
def test_each_changed_field_has_its_rule(provider, path, old, new, rule):
    assert provider.driver("VirtualMachine").rule(FieldChange(path, old, new)) is rule


def test_shrinking_a_disk_is_refused_with_both_sizes(provider):
    with pytest.raises(RefusedChange, match="from 40 GiB to 20 GiB"):
        provider.driver("VirtualMachine").rule(FieldChange("disks[scsi0:0].size", 40, 20))


# ---- sockets ---------------------------------------------------------------------------------------------

def test_sockets_are_written_and_read_back_as_cores_per_socket(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(cpus=6, sockets=3))
    hardware = find_vm(raw_si, name).config.hardware
    assert (hardware.numCPU, hardware.numCoresPerSocket) == (6, 2)
    assert observe_one(provider, stack, name).state["sockets"] == 3


def test_changing_sockets_powers_the_vm_off_and_rewrites_cores_per_socket(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(cpus=4, sockets=1))
    wanted = vm_spec(cpus=4, sockets=4)
    before = observe_one(provider, stack, name)
    assert [provider.driver("VirtualMachine").rule(c) for c in diff(wanted.model_dump(), before.state)] == [
        Rule.POWER_OFF]
    after = converge(provider, stack, name, wanted)
    assert (after.state["sockets"], after.state["power"]) == (4, "on")
    assert find_vm(raw_si, name).config.hardware.numCoresPerSocket == 1


def test_a_cpu_change_keeps_the_declared_sockets(provider, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(cpus=2, sockets=2))
    state = converge(provider, stack, name, vm_spec(cpus=8, sockets=2)).state
    assert (state["cpus"], state["sockets"]) == (8, 2)


def test_cores_per_socket_set_out_of_band_read_back_as_sockets(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(cpus=4))
    reconfigure(find_vm(raw_si, name), numCPUs=8, numCoresPerSocket=2)
    state = observe_one(provider, stack, name).state
    assert (state["cpus"], state["sockets"]) == (8, 4)


@pytest.mark.parametrize(("num_cpu", "cores_per_socket", "sockets"), [
    (8, 2, 4), (8, 8, 1), (4, 0, 4), (4, None, 4), (None, None, 1)])
def test_unset_or_zero_cores_per_socket_count_as_one_core_per_socket(num_cpu, cores_per_socket, sockets):
    assert sockets_of(num_cpu, cores_per_socket) == sockets


# ---- node ------------------------------------------------------------------------------------------------

def test_a_vm_is_created_on_the_named_host(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(node="DC0_C0_H1"))
    assert find_vm(raw_si, name).runtime.host.name == "DC0_C0_H1"
    assert observe_one(provider, stack, name).state["node"] == "DC0_C0_H1"


def test_a_vm_without_a_node_reads_back_the_host_vsphere_chose_and_shows_no_change(provider, stack, name):
    spec = vm_spec()
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    state = observe_one(provider, stack, name).state
    assert state["node"] in provider.inventory.placement.cluster_hosts
    assert diff(spec.model_dump(), state, CREATE_ONLY["VirtualMachine"]) == []


def test_a_vm_moves_to_the_named_host_in_place(provider, raw_si, stack, name, soap_requests):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(node="DC0_C0_H0"))
    wanted = vm_spec(node="DC0_C0_H2")
    before = observe_one(provider, stack, name)
    changes = diff(wanted.model_dump(), before.state)
    assert [(c.path, provider.driver("VirtualMachine").rule(c)) for c in changes] == [("node", Rule.IN_PLACE)]
    soap_requests.clear()
    after = converge(provider, stack, name, wanted)
    called = [method for method, _ in soap_requests]
    assert "RelocateVM_Task" in called and "PowerOffVM_Task" not in called
    assert (after.state["node"], after.state["power"]) == ("DC0_C0_H2", "on")
    assert find_vm(raw_si, name).runtime.host.name == "DC0_C0_H2"


def test_an_unknown_node_is_named_with_the_choices(provider):
    problems = provider.driver("VirtualMachine").check(vm_spec(node="esx-99"), {})
    assert problems == [("node", "host 'esx-99' is not in cluster DC0_C0 "
                                 "(choices: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2)")]


# ---- machine (hardware version) --------------------------------------------------------------------------

def test_hardware_version_is_set_at_create_and_read_back(provider, raw_si, stack, name):
    provider.driver("VirtualMachine").create(Owner(stack, name), vm_spec(machine="vmx-10"))
    assert find_vm(raw_si, name).config.version == "vmx-10"
    assert observe_one(provider, stack, name).state["machine"] == "vmx-10"


def test_a_vm_without_a_machine_reads_back_vsphere_s_default_and_shows_no_change(provider, stack, name):
    spec = vm_spec()
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    state = observe_one(provider, stack, name).state
    assert state["machine"] == "vmx-13"  # vcsim's default hardware version
    assert diff(spec.model_dump(), state, CREATE_ONLY["VirtualMachine"]) == []


def test_a_machine_that_is_not_a_hardware_version_is_named(provider):
    problems = provider.driver("VirtualMachine").check(vm_spec(machine="q35"), {})
    assert problems == [("machine", "on vSphere the machine is a hardware version such as 'vmx-19'")]


def test_a_clone_is_upgraded_to_the_declared_hardware_version(provider, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name + "-src"), vm_spec(power="off", machine="vmx-10"))
    spec = vm_spec(clone_from=name + "-src", machine="vmx-13")
    driver.create(Owner(stack, name), spec)
    assert observe_one(provider, stack, name).state["machine"] == "vmx-13"


def test_a_clone_cannot_lower_the_template_hardware_version(provider, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name + "-src"), vm_spec(power="off", machine="vmx-13"))
    with pytest.raises(VirtplaneError, match="has vmx-13 and a VM's hardware version cannot be lowered"):
        driver.create(Owner(stack, name), vm_spec(clone_from=name + "-src", machine="vmx-10"))
    assert driver.observe(stack, {"VirtualMachine": dict.fromkeys([name])}).owned.keys() == {name + "-src"}


# ---- linked clones ---------------------------------------------------------------------------------------

def test_linked_clone_clones_the_template_snapshot_onto_child_disks(provider, raw_si, stack, name, soap_requests):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name + "-src"), vm_spec(power="off"))
    source = find_vm(raw_si, name + "-src")
    snapshot = wait_for_task(source.CreateSnapshot_Task(name="base", memory=False, quiesce=False))
    spec = vm_spec(clone_from=name + "-src", linked_clone=True, cpus=2, node="DC0_C0_H1")
    soap_requests.clear()
    driver.create(Owner(stack, name), spec)
    clone_spec = next(args for method, args in soap_requests if method == "CloneVM_Task")[-1]
    assert clone_spec.snapshot._moId == snapshot._moId
    assert clone_spec.location.diskMoveType == "createNewChildDiskBacking"
    assert clone_spec.location.host.name == "DC0_C0_H1"
    clone = find_vm(raw_si, name)
    assert (clone.config.hardware.numCPU, clone.runtime.host.name) == (2, "DC0_C0_H1")
    state = observe_one(provider, stack, name).state
    assert (state["cpus"], state["node"]) == (2, "DC0_C0_H1")


def test_a_linked_clone_of_a_template_without_a_snapshot_is_refused_in_one_sentence(provider, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name + "-src"), vm_spec(power="off"))
    with pytest.raises(VirtplaneError, match=f"template '{name}-src' has no snapshot; a linked clone needs one"):
        driver.create(Owner(stack, name), vm_spec(clone_from=name + "-src", linked_clone=True))


# ---- disks -----------------------------------------------------------------------------------------------

def test_a_virtio_blk_disk_is_named_as_proxmox_only(provider):
    spec = vm_spec(disks=[{"size": 8}, {"size": 2, "bus": "virtio-blk"}])
    assert provider.driver("VirtualMachine").check(spec, {}) == [
        ("disks[1].bus", "virtio-blk disks exist only on Proxmox; use 'paravirtual' (PVSCSI) on vSphere")]


def test_an_unknown_disk_storage_is_named_as_a_vsphere_datastore(provider):
    spec = vm_spec(disks=[{"size": 8, "storage": "nope"}])
    assert provider.driver("VirtualMachine").check(spec, {}) == [
        ("disks[0].storage", "datastore 'nope' does not exist in datacenter DC0 (choices: LocalDS_0)")]


def test_a_disk_declared_with_the_datastore_alias_reads_back_as_storage(provider, stack, name):
    spec = vm_spec(disks=[{"size": 4, "datastore": "LocalDS_0"}])
    provider.driver("VirtualMachine").create(Owner(stack, name), spec)
    assert observe_one(provider, stack, name).state["disks"] == [
        {"size": 4, "storage": "LocalDS_0", "thin": True, "bus": "paravirtual", "slot": "scsi0:0"}]


# ---- ownership -------------------------------------------------------------------------------------------

def test_two_vms_carrying_the_same_marker_stop_observe_naming_both_and_nothing_is_deleted(
        provider, raw_si, stack, name):
    driver = provider.driver("VirtualMachine")
    driver.create(Owner(stack, name), vm_spec(power="off"))
    copy = create_raw_vm(raw_si, name + "-copy")
    set_owner_attribute(raw_si, copy, Owner(stack, name).encode())
    ours = find_vm(raw_si, name)
    for declared in ({"VirtualMachine": dict.fromkeys([name])}, {}):
        with pytest.raises(OwnershipError) as caught:
            driver.observe(stack, declared)
        message = str(caught.value)
        assert f"'{name}' ({ours._moId})" in message and f"'{name}-copy' ({copy._moId})" in message
    assert find_vm(raw_si, name) and find_vm(raw_si, name + "-copy")

