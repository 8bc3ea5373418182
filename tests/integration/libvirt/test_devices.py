"""GPUs (passthrough and vGPU) and SR-IOV NICs on libvirt's test driver with our node file: written as host
devices, read back as declared, placed on the devices the host has, and refused at plan when the host has none
free. The test driver holds nothing back (two domains may hold one GPU), so what is free is virtplane's to judge."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conformance.stack import Stack
from tests.support import libvirt as raw_libvirt
from virtplane.errors import VirtplaneError
from virtplane.plan import Action

L4, A100, X710 = "0000:af:00.0", "0000:3b:00.0", "0000:5e:00.0"


def domain_xml(peer, name: str) -> ET.Element:
    return ET.fromstring(peer.conn.lookupByName(name).XMLDesc(0))


def test_a_passthrough_gpu_is_a_managed_pci_hostdev_and_reads_back_as_declared(test_host):
    stack = Stack(test_host, "gpu").vm("pt", cpus=2, memory="1GiB", gpus=[{"mode": "passthrough", "device": L4}])
    stack.apply()
    [hostdev] = domain_xml(test_host, "pt").findall("devices/hostdev")
    assert (hostdev.get("type"), hostdev.get("managed")) == ("pci", "yes")
    assert hostdev.find("source/address").attrib == {"domain": "0x0000", "bus": "0xaf", "slot": "0x00",
                                                     "function": "0x0"}
    assert stack.changes() == {}


def test_a_gpu_asked_for_by_vendor_gets_a_free_one_and_never_one_another_domain_holds(test_host):
    holder = raw_libvirt.plain_domain("by-hand", "test", devices=(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0xaf' slot='0x00' function='0x0'/></source></hostdev>"))
    test_host.conn.defineXML(holder)
    [host] = test_host.provider.hosts()
    assert {d.address: d.in_use_by for d in host.gpus()}[L4] == ["by-hand"]
    stack = Stack(test_host, "gpu").vm("pt", cpus=2, memory="1GiB", gpus=[{"mode": "passthrough",
                                                                           "vendor": "nvidia"}])
    [vm] = [r for r in stack.plan().resources if r.name == "pt"]
    assert vm.assignment.gpu_devices == [A100]  # the L4 is held by the domain made by hand
    stack.apply()
    assert stack.changes() == {}


def test_a_gpu_held_by_another_domain_is_refused_at_plan_naming_the_holder(test_host):
    test_host.conn.defineXML(raw_libvirt.plain_domain("by-hand", "test", devices=(
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0xaf' slot='0x00' function='0x0'/></source></hostdev>")))
    stack = Stack(test_host, "gpu").vm("pt", cpus=2, memory="1GiB", gpus=[{"mode": "passthrough", "device": L4}])
    with pytest.raises(VirtplaneError, match="by-hand"):
        stack.plan()
    assert test_host.count("pt") == 0


def test_a_vgpu_is_an_mdev_hostdev_of_the_declared_type_on_a_gpu_that_offers_it(test_host):
    stack = Stack(test_host, "vgpu").vm("ws", cpus=2, memory="1GiB", gpus=[{"mode": "vgpu", "profile": "nvidia-471"}])
    stack.apply()
    [hostdev] = domain_xml(test_host, "ws").findall("devices/hostdev")
    assert (hostdev.get("type"), hostdev.get("model")) == ("mdev", "vfio-pci")
    assert hostdev.find("source/address").get("uuid")
    live = stack.plan().resources[0].observed.state
    assert live["gpus"] == [{"mode": "vgpu", "profile": "nvidia-471", "device": None, "vendor": "nvidia"}]
    assert stack.changes() == {}
    [host] = test_host.provider.hosts()
    assert {(v.profile, tuple(v.in_use_by)) for v in host.vgpu_types if v.profile == "nvidia-471"} == {
        ("nvidia-471", ("ws",))}


def test_an_sriov_nic_is_a_virtual_function_of_the_declared_pf_with_the_networks_vlan(test_host):
    stack = (Stack(test_host, "vf").network("storage", vlan=42)
             .vm("appliance", cpus=2, memory="1GiB", nics=[{"network": "storage", "adapter": "sriov"}]))
    stack.apply()
    [interface] = domain_xml(test_host, "appliance").findall("devices/interface")
    assert (interface.get("type"), interface.get("managed")) == ("hostdev", "yes")
    assert interface.find("source/address").get("bus") == "0x5e"
    assert interface.find("source/address").get("slot") == "0x02"
    assert interface.find("vlan/tag").get("id") == "42"
    assert stack.changes() == {}
    [host] = test_host.provider.hosts()
    [pf] = host.sriov
    assert (pf.address, pf.vfs_enabled, pf.vfs_free, pf.in_use_by) == (X710, 4, 3, ["appliance"])


def test_removing_a_gpu_powers_the_domain_off_and_on_around_the_change(test_host):
    stack = Stack(test_host, "gpu").vm("pt", cpus=2, memory="1GiB", power="on",
                                       gpus=[{"mode": "passthrough", "device": L4}])
    stack.apply()
    stack.vm("pt", cpus=2, memory="1GiB", power="on", gpus=[])
    action, changes = stack.changes()["pt"]
    assert action is Action.UPDATE and [path for path, *_ in changes] == ["gpus[0]"]
    stack.apply()
    assert domain_xml(test_host, "pt").findall("devices/hostdev") == []
    assert test_host.conn.lookupByName("pt").isActive()
    assert stack.changes() == {}
