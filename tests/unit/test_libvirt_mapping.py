"""The libvirt provider's pure mapping, table-driven: a spec -> domain XML -> the spec again; field-by-field rewrites
that keep what they do not own (NVRAM, TPM, other applications' metadata); the marker."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from virtplane.diff import diff
from virtplane.kinds import build_spec
from virtplane.providers.base import FieldChange, Owner
from virtplane.providers.libvirt import devices, domain_xml, marker, rewrite
from virtplane.providers.libvirt.devices import DeviceWriter, NetworkNames, Volume
from virtplane.providers.libvirt.domain_xml import DomainFacts, Target
from virtplane.slots import resolve_vm
from virtplane.specs import CREATE_ONLY

OWNER = Owner("proj/dev", "db", "kvm")
UUID = "0f8b4a9e-5d7c-4a1e-9b2f-3c6d8e0a1b2c"
INTEL = Target(domain_type="kvm", pool="default", cpu_vendor="intel")


def spec(**fields):
    vm = build_spec("VirtualMachine", "db", {"cpus": 4, "memory": "2GiB", **fields})
    return resolve_vm(vm, None, devices.new_slot).with_creation_defaults()


def built(vm, target: Target = INTEL) -> ET.Element:
    return domain_xml.new_domain("db", UUID, OWNER, vm, target, DeviceWriter("db", UUID, "default"))


def read(root: ET.Element, declared=None, running: bool = True) -> dict:
    volumes = {("default", s.get("volume")): Volume(10 * 1024**3, 1024**3)
               for s in root.findall("devices/disk/source")}
    return domain_xml.vm_state(root, DomainFacts(running, "kvm1", volumes, NetworkNames()), declared)


def test_a_new_domain_reads_back_as_the_spec_it_was_built_from():
    vm = spec(sockets=2, firmware="uefi", secure_boot=True, nested_virtualization=True, tags=["db"],
              disks=[{"size": 10}, {"size": 10, "bus": "sata"}, {"size": 10, "bus": "virtio-blk"}],
              nics=[{"network": "lan"}, {"network": "lan", "adapter": "e1000e"}])
    state = read(built(vm), vm)
    assert diff(vm.model_dump(), state, CREATE_ONLY["VirtualMachine"] | {"node"}) == []
    assert [d["slot"] for d in state["disks"]] == ["sda", "sdb", "vda"]


@pytest.mark.parametrize(("vendor", "feature"), [("intel", "vmx"), ("amd", "svm"), (None, None)])
def test_nested_virtualization_is_host_passthrough_requiring_the_vendors_extension(vendor, feature):
    root = built(spec(nested_virtualization=True), Target("kvm", "default", cpu_vendor=vendor))
    cpu = root.find("cpu")
    assert cpu.get("mode") == "host-passthrough"
    assert [f.get("name") for f in cpu.findall("feature") if f.get("policy") == "require"] == (
        [feature] if feature else [])
    assert domain_xml.is_nested(root)


@pytest.mark.parametrize(("declared", "live", "read_as"), [
    ("q35", "pc-q35-7.2", "q35"), ("pc", "pc-i440fx-7.2", "pc"), ("pc-q35-7.2", "pc-q35-7.2", "pc-q35-7.2"),
    ("q35", "pc-i440fx-7.2", "pc-i440fx-7.2"), (None, "pc-q35-7.2", "pc-q35-7.2"),
])
def test_a_machine_alias_libvirt_expands_reads_back_as_declared(declared, live, read_as):
    assert domain_xml.machine_as_declared(live, declared) == read_as


def with_nvram_and_tpm(root: ET.Element) -> ET.Element:
    ET.SubElement(root.find("os"), "nvram").text = "/var/lib/libvirt/qemu/nvram/db_VARS.fd"
    tpm = ET.SubElement(root.find("devices"), "tpm", {"model": "tpm-crb"})
    ET.SubElement(tpm, "backend", {"type": "emulator", "version": "2.0"})
    metadata = root.find("metadata")
    ET.SubElement(metadata, "{https://example.org/other-app}note").text = "keep me"
    return root


@pytest.mark.parametrize("changes", [
    [FieldChange("memory", 2048, 4096)],
    [FieldChange("secure_boot", True, False)],
    [FieldChange("cpus", 4, 2), FieldChange("sockets", 2, 1)],
    [FieldChange("tags", ["db"], ["db", "x"])],
])
def test_a_rewrite_keeps_the_nvram_the_tpm_and_other_applications_metadata(changes):
    vm = spec(firmware="uefi", secure_boot=True, sockets=2, tags=["db"])
    root = with_nvram_and_tpm(built(vm))
    wanted = vm.model_copy(update={"memory": 4096, "secure_boot": False, "cpus": 2, "sockets": 1, "tags": ["db", "x"]})
    rewrite.rewrite(root, wanted, changes, INTEL, DeviceWriter("db", UUID, "default"))
    again = ET.fromstring(ET.tostring(root))
    assert again.findtext("os/nvram") == "/var/lib/libvirt/qemu/nvram/db_VARS.fd"
    assert again.find("devices/tpm/backend").get("type") == "emulator"
    assert again.findtext("metadata/{https://example.org/other-app}note") == "keep me"
    state = read(again, wanted)
    for change in changes:
        assert state[change.path] == change.new


def test_adding_and_removing_items_by_slot_touches_only_those_items():
    vm = spec(disks=[{"size": 10}, {"size": 10}], nics=[{"network": "lan"}])
    root = built(vm)
    wanted = spec(disks=[{"size": 10}], nics=[{"network": "lan"}, {"network": "dmz"}])
    plan = rewrite.rewrite(root, wanted, [FieldChange("disks[sdb]", {"slot": "sdb"}, None),
                                          FieldChange("nics[net1]", None, {"slot": "net1"})],
                           INTEL, DeviceWriter("db", UUID, "default"))
    assert [t.get("dev") for t in root.findall("devices/disk/target")] == ["sda"]
    assert [devices.nic_slot(i) for i in root.findall("devices/interface")] == ["net0", "net1"]
    assert plan.removed_volumes == [("default", devices.volume_name("db", UUID, "sdb"))]
    assert [e.tag for e in plan.attached] == ["interface"] and [e.tag for e in plan.detached] == ["disk"]


def test_the_marker_round_trips_and_says_whether_the_create_was_finished():
    root = built(spec(disks=[{"size": 7}], tags=["b", "a"]))
    found = marker.read(root)
    assert (found.owner, found.complete, found.tags, found.sizes) == (OWNER, False, ["a", "b"], {"sda": 7})
    found.complete = True
    marker.write(root, found)
    again = marker.read(ET.fromstring(ET.tostring(root)))
    assert (again.owner, again.complete, again.sizes) == (OWNER, True, {})
    assert "xmlns" not in marker.without_namespace(found.element())  # as virDomainSetMetadata takes it


@pytest.mark.parametrize(("volume", "ours"), [
    (devices.volume_name("db", UUID, "sda"), True), ("db-sda.qcow2", False), ("golden-linux.qcow2", False),
    (devices.volume_name("db2", UUID, "sda"), False),
])
def test_only_volumes_named_after_the_domain_and_its_uuid_are_virtplanes_to_delete(volume, ours):
    assert devices.made_by_us(volume, "db", UUID) is ours
