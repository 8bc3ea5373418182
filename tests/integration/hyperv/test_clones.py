"""Hyper-V clones of a golden image: each disk a differencing VHDX whose parent is the golden image's VHDX, or an
independent copy when ``linked_clone=False``; the clone keeps the golden image's generation and adapters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conformance.stack import Stack
from tests.support import hyperv as raw
from tests.support.hyperv import prop
from virtplane.errors import ProviderError, SpecError
from virtplane.providers.base import Owner
from virtplane.providers.registry import provider_class


@pytest.fixture
def provider(fresh_hyperv):
    cls = provider_class("hyperv")
    connected = cls.connect(cls.settings_from("hv", {}, {**fresh_hyperv.settings(),
                                                         "HYPERV_PASSWORD": fresh_hyperv.password}))
    yield connected
    connected.close()


def stack(provider) -> Stack:
    return Stack(SimpleNamespace(kind="hyperv", provider=provider), "clones")


def test_a_linked_desktop_disk_is_a_differencing_child_of_the_golden_vhdx(fresh_hyperv, provider):
    parent = raw.create_golden(fresh_hyperv, "gold")
    stack(provider).pool("vdi", "gold", 1, memory=2048).apply()
    [vhd] = raw.vhds_of(fresh_hyperv, "vdi-001")
    assert (str(prop(vhd, "VhdType")), prop(vhd, "ParentPath")) == ("Differencing", parent)
    [vm] = raw.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", "vdi-001"))
    assert int(prop(vm, "Generation")) == 2 and str(prop(vm, "State")) == "Running"


def test_a_full_copy_has_a_disk_of_its_own(fresh_hyperv, provider):
    raw.create_golden(fresh_hyperv, "gold")
    stack(provider).pool("vdi", "gold", 1, linked_clone=False, power="off").apply()
    [vhd] = raw.vhds_of(fresh_hyperv, "vdi-001")
    assert (str(prop(vhd, "VhdType")), prop(vhd, "ParentPath")) == ("Dynamic", None)


def test_a_golden_image_that_does_not_exist_is_refused_at_plan(fresh_hyperv, provider):
    desks = stack(provider).pool("vdi", "nothing", 2)
    with pytest.raises(SpecError) as refused:
        desks.plan()
    assert str(refused.value) == ("DesktopPool 'vdi': field 'template': no VM named 'nothing' exists on Hyper-V "
                                  "endpoint 'hv'")
    assert raw.vm_names(fresh_hyperv) == []


def test_two_golden_images_of_one_name_are_refused(fresh_hyperv, provider):
    raw.create_golden(fresh_hyperv, "gold")
    raw.create_plain_vm(fresh_hyperv, "gold")
    spec = stack(provider).pool("x", "gold", 1).desired.resources["VirtualMachine/x-001"].spec
    with pytest.raises(ProviderError, match="2 VMs of that name"):
        provider.driver("VirtualMachine").create(Owner("s/t", "x-001", "hv", "gold"), spec)


def test_deleting_a_linked_desktop_removes_its_differencing_disk_and_never_the_golden_image(fresh_hyperv, provider):
    parent = raw.create_golden(fresh_hyperv, "gold")
    desks = stack(provider).pool("vdi", "gold", 1, power="off")
    desks.apply()
    [child] = [prop(vhd, "Path") for vhd in raw.vhds_of(fresh_hyperv, "vdi-001")]
    from virtplane import apply

    assert not apply.run(desks.plan(destroy=True), {"ep": provider}, allow_data_loss=True).failed
    on_host = [prop(v, "Path") for v in raw.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VHD")
                                                 .add_parameter("Path", [parent]))]
    assert on_host == [parent]
    with pytest.raises(AssertionError, match="cannot find the file"):
        raw.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VHD").add_parameter("Path", [child]))
