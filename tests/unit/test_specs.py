import pytest

from virtplane.errors import SpecError
from virtplane.specs import build_spec


def vm(**fields):
    return build_spec("VirtualMachine", "web-1", {"cpus": 2, "memory": "2GiB", **fields})


def test_a_vm_spec_is_normalized_to_mib_gib_and_neutral_names():
    spec = vm(disks=[{"size": "40GiB"}], nics=[{"network": "app", "adapter": "vmxnet3"}])
    assert spec.memory == 2048
    assert spec.disks[0].size == 40 and spec.disks[0].bus == "paravirtual" and spec.disks[0].thin
    assert spec.nics[0].adapter == "paravirtual"


def test_defaults_are_paravirtual_bios_powered_on():
    spec = vm(disks=[{"size": 10}], nics=[{"network": "app"}])
    assert (spec.firmware, spec.power, spec.secure_boot) == ("bios", "on", False)
    assert spec.nics[0].adapter == "paravirtual" and spec.disks[0].bus == "paravirtual"


def test_a_misspelled_field_names_the_resource_and_suggests_the_right_one():
    with pytest.raises(SpecError) as caught:
        build_spec("VirtualMachine", "web-1", {"cpus": 2, "memory": 1024, "firmwear": "uefi"})
    assert str(caught.value) == "VirtualMachine 'web-1': field 'firmwear': unknown field (did you mean 'firmware'?)"


def test_a_memory_of_lots_says_what_sizes_look_like():
    with pytest.raises(SpecError, match=r"VirtualMachine 'web-1': field 'memory': expected .*'4GiB'.*got 'lots'"):
        vm(memory="lots")


def test_nested_fields_are_named_by_path():
    with pytest.raises(SpecError, match=r"field 'disks\.0\.bus': got 'floppy'"):
        vm(disks=[{"size": 1, "bus": "floppy"}])


def test_secure_boot_without_uefi_names_the_secure_boot_field():
    with pytest.raises(SpecError, match="field 'secure_boot': needs firmware='uefi'"):
        vm(secure_boot=True)


@pytest.mark.parametrize("vlan", [-1, 4095, 5000])
def test_vlans_outside_802_1q_are_refused(vlan):
    with pytest.raises(SpecError, match="Network 'app': field 'vlan'"):
        build_spec("Network", "app", {"vlan": vlan})


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 64, "semi;colon"])
def test_names_that_hypervisors_cannot_hold_are_refused(name):
    with pytest.raises(SpecError, match="field 'name'"):
        build_spec("Network", name, {"vlan": 0})


def test_tags_are_sorted_and_deduplicated():
    assert vm(tags=["web", "lab", "web"]).tags == ["lab", "web"]


@pytest.mark.parametrize("tag", ["a,b", "", " padded", "x;y"])
def test_tags_that_cannot_be_stored_are_refused(tag):
    with pytest.raises(SpecError, match="field 'tags'"):
        vm(tags=[tag])
