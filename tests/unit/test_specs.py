import pytest

from virtplane.errors import SpecError
from virtplane.kinds import build_spec


def vm(**fields):
    return build_spec("VirtualMachine", "web-1", {"cpus": 2, "memory": "2GiB", **fields})


def test_a_vm_spec_is_normalized_to_mib_gib_and_neutral_names():
    spec = vm(disks=[{"size": "40GiB"}], nics=[{"network": "app", "adapter": "vmxnet3"}])
    assert spec.memory == 2048
    assert spec.disks[0].size == 40
    assert spec.nics[0].adapter == "paravirtual"


def test_unset_fields_stay_unset_so_they_are_not_managed():
    spec = vm(disks=[{"size": 10}], nics=[{"network": "app"}])
    assert (spec.firmware, spec.power, spec.secure_boot, spec.guest_os, spec.tags) == (None,) * 5
    assert (spec.disks[0].thin, spec.disks[0].bus, spec.nics[0].adapter) == (None, None, None)
    assert build_spec("VirtualMachine", "t", {"clone_from": "tpl"}).cpus is None


def test_a_vm_made_from_nothing_gets_the_documented_creation_defaults():
    spec = vm(disks=[{"size": 10}], nics=[{"network": "app"}]).with_creation_defaults()
    assert (spec.firmware, spec.power, spec.secure_boot, spec.guest_os) == ("bios", "on", False, "linux")
    assert (spec.disks[0].thin, spec.disks[0].bus, spec.nics[0].adapter) == (True, "paravirtual", "paravirtual")
    assert build_spec("VirtualMachine", "n", {}).with_creation_defaults().memory == 1024


def test_a_clone_gets_no_creation_defaults_it_keeps_its_templates_values():
    spec = build_spec("VirtualMachine", "c", {"clone_from": "tpl", "cpus": 2})
    assert spec.with_creation_defaults().firmware is None


def test_two_disks_given_one_slot_are_refused_naming_the_slot():
    with pytest.raises(SpecError, match=r"field 'disks': slot 'scsi0:1' is given to more than one item"):
        vm(disks=[{"size": 1, "slot": "scsi0:1"}, {"size": 2, "slot": "scsi0:1"}])


def test_a_vgpu_without_a_profile_names_the_gpu_field():
    with pytest.raises(SpecError, match=r"field 'gpus\[0\].profile': is required for mode='vgpu'"):
        vm(gpus=[{"mode": "vgpu"}])


def test_sockets_on_a_clone_without_cpus_is_refused():
    with pytest.raises(SpecError, match="field 'sockets': needs cpus"):
        build_spec("VirtualMachine", "c", {"clone_from": "tpl", "sockets": 2})


def test_a_misspelled_field_names_the_resource_and_suggests_the_right_one():
    with pytest.raises(SpecError) as caught:
        build_spec("VirtualMachine", "web-1", {"cpus": 2, "memory": 1024, "firmwear": "uefi"})
    assert str(caught.value) == "VirtualMachine 'web-1': field 'firmwear': unknown field (did you mean 'firmware'?)"


def test_a_memory_of_lots_says_what_sizes_look_like():
    with pytest.raises(SpecError, match=r"VirtualMachine 'web-1': field 'memory': expected .*'4GiB'.*got 'lots'"):
        vm(memory="lots")


def test_nested_fields_are_named_by_path_with_the_index_in_brackets():
    with pytest.raises(SpecError) as caught:
        vm(disks=[{"size": 1}, {"size": 1, "bus": "floppy"}])
    assert "field 'disks[1].bus': got 'floppy'" in str(caught.value)
    assert "disks.1" not in str(caught.value)


@pytest.mark.parametrize(("location", "path"), [
    (("memory",), "memory"), (("disks", 1, "size"), "disks[1].size"), (("tags", 0), "tags[0]"),
    (("gpus", 0, "profile"), "gpus[0].profile"), ((), "")])
def test_field_paths_are_written_one_way(location, path):
    from virtplane.specs import field_path

    assert field_path(location) == path


@pytest.mark.parametrize("field", ["tags", "disks", "nics", "gpus"])
def test_a_string_where_a_list_belongs_is_refused_with_the_list_to_write(field):
    with pytest.raises(SpecError) as caught:
        vm(**{field: "web"})
    assert str(caught.value) == (f"VirtualMachine 'web-1': field '{field}': expected a list, got the string 'web'; "
                                 "write ['web']")


def test_every_problem_of_a_resource_is_reported_together_the_name_included():
    with pytest.raises(SpecError) as caught:
        build_spec("VirtualMachine", " padded", {"memory": "4GB", "tags": "web"})
    assert [field for field, _ in caught.value.problems] == ["name", "memory", "tags"]


def test_4gb_is_refused_with_the_binary_size_to_write_instead():
    with pytest.raises(SpecError) as caught:
        vm(memory="4GB", disks=[{"size": "40GB"}])
    text = str(caught.value)
    assert "field 'memory': got '4GB': decimal units (GB, powers of 1000) are not accepted" in text
    assert "write '4GiB'" in text and "field 'disks[0].size'" in text and "write '40GiB'" in text


def test_secure_boot_without_uefi_names_the_secure_boot_field():
    with pytest.raises(SpecError, match="field 'secure_boot': needs firmware='uefi'"):
        vm(secure_boot=True)


@pytest.mark.parametrize("vlan", [-1, 4095, 5000])
def test_vlans_outside_802_1q_are_refused(vlan):
    with pytest.raises(SpecError, match="Network 'app': field 'vlan'"):
        build_spec("Network", "app", {"vlan": vlan})


@pytest.mark.parametrize("name", ["", " padded", "x" * 101, "new\nline", "tab\there"])
def test_names_no_hypervisor_can_hold_are_refused(name):
    with pytest.raises(SpecError, match="field 'name'"):
        build_spec("Network", name, {"vlan": 0})


def test_tags_are_sorted_and_deduplicated():
    assert vm(tags=["web", "lab", "web"]).tags == ["lab", "web"]


@pytest.mark.parametrize("tag", ["a,b", "", " padded", "x;y"])
def test_tags_that_cannot_be_stored_are_refused(tag):
    with pytest.raises(SpecError, match="field 'tags'"):
        vm(tags=[tag])
