"""The XenServer mapping without a pool: records into the spec's shape, the spec into XAPI's calls, settings and
the plan-time checks (providers/xenserver/records.py, vlans.py, host_facts.py, vm_check.py, settings.py)."""

from __future__ import annotations

import pytest

from virtplane.errors import SpecError
from virtplane.kinds import build_spec
from virtplane.providers.base import MARKER_KEY, Owner, pending_name
from virtplane.providers.xenserver.host_facts import _nested
from virtplane.providers.xenserver.records import (
    PoolView,
    marker_complete,
    owner_of,
    platform_changes,
    sockets,
    vcpu_steps,
    vm_state,
)
from virtplane.providers.xenserver.settings import settings_from, with_host
from virtplane.providers.xenserver.vlans import Vlans, vlans_for
from virtplane.providers.xenserver.vm_check import PoolNames, vm_problems

GiB = 1024**3
OWNER = Owner("proj/dev", "web", "ep")


def vm_record(**fields):
    record = {"name_label": "web", "power_state": "Running", "VCPUs_max": "4", "VCPUs_at_startup": "4",
              "memory_static_max": str(2 * GiB), "platform": {"cores-per-socket": "2", "secureboot": "true",
                                                              "exp-nested-hvm": "true"},
              "HVM_boot_params": {"firmware": "uefi"}, "resident_on": "OpaqueRef:h1", "affinity": "OpaqueRef:NULL",
              "tags": ["virtplane", "web"], "other_config": {MARKER_KEY: OWNER.encode()}}
    record.update(fields)
    return record


def pool_view() -> PoolView:
    return PoolView(
        vbds={"OpaqueRef:b1": {"VM": "OpaqueRef:vm", "VDI": "OpaqueRef:d1", "userdevice": "1", "type": "Disk",
                               "empty": False},
              "OpaqueRef:b0": {"VM": "OpaqueRef:vm", "VDI": "OpaqueRef:d0", "userdevice": "0", "type": "Disk",
                               "empty": False},
              "OpaqueRef:cd": {"VM": "OpaqueRef:vm", "VDI": "OpaqueRef:NULL", "userdevice": "3", "type": "CD",
                               "empty": True}},
        vdis={"OpaqueRef:d0": {"virtual_size": str(10 * GiB), "SR": "OpaqueRef:nfs"},
              "OpaqueRef:d1": {"virtual_size": str(40 * GiB), "SR": "OpaqueRef:lvm"}},
        srs={"OpaqueRef:nfs": {"name_label": "nfs", "type": "nfs"},
             "OpaqueRef:lvm": {"name_label": "lvm", "type": "lvm"}},
        vifs={"OpaqueRef:v0": {"VM": "OpaqueRef:vm", "device": "0", "network": "OpaqueRef:n120"}},
        networks={"OpaqueRef:n120": {"name_label": "VLAN 120"}},
        pifs={"OpaqueRef:p": {"device": "eth0", "VLAN": "120", "network": "OpaqueRef:n120"}},
        hosts={"OpaqueRef:h1": {"name_label": "xs1"}})


def test_a_vm_record_reads_back_in_the_specs_shape():
    view = pool_view()
    vlans = Vlans("eth0", {120: "app"})
    state = vm_state("OpaqueRef:vm", vm_record(), view, lambda n: vlans.name_of(n, view.networks, view.pifs))
    assert (state["cpus"], state["sockets"], state["memory"], state["node"]) == (4, 2, 2048, "xs1")
    assert (state["firmware"], state["secure_boot"], state["nested_virtualization"], state["power"]) == (
        "uefi", True, True, "on")
    assert state["disks"] == [
        {"size": 10, "storage": "nfs", "thin": True, "bus": "paravirtual", "slot": "0"},
        {"size": 40, "storage": "lvm", "thin": False, "bus": "paravirtual", "slot": "1"}]  # the CD drive is no disk
    assert state["nics"] == [{"network": "app", "adapter": "paravirtual", "device": None, "slot": "0"}]
    assert state["tags"] == ["web"] and state["gpus"] == []


@pytest.mark.parametrize(("record", "owner", "pending", "complete"), [
    (vm_record(), OWNER, False, True),
    (vm_record(tags=["web"]), OWNER, False, False),  # the tag is written after the marker
    (vm_record(name_label=pending_name(OWNER), other_config={}), OWNER, True, False),  # cloned, never finished
    (vm_record(other_config={}), None, False, False),  # made by hand
])
def test_ownership_is_the_other_config_marker_and_the_tag_or_the_pending_name(record, owner, pending, complete):
    assert owner_of(record) == (owner, pending)
    assert marker_complete(record) is complete


@pytest.mark.parametrize(("current", "wanted", "steps"), [
    ((2, 2), 4, [("VM.set_VCPUs_max", 4), ("VM.set_VCPUs_at_startup", 4)]),
    ((4, 4), 2, [("VM.set_VCPUs_at_startup", 2), ("VM.set_VCPUs_max", 2)]),  # never at_startup > max
    ((4, 2), 4, [("VM.set_VCPUs_at_startup", 4)]),
    ((4, 4), 4, []),
])
def test_vcpus_change_in_an_order_xapi_accepts(current, wanted, steps):
    assert vcpu_steps(*current, wanted) == steps


def test_platform_keys_follow_sockets_secure_boot_and_nested_virtualization():
    assert platform_changes(8, 2, True, False) == {"cores-per-socket": "4", "secureboot": "true",
                                                   "nested-virt": "false", "exp-nested-hvm": "false"}
    assert platform_changes(None, None, None, None) == {}
    assert (sockets(4, None), sockets(4, "2"), sockets(6, "4")) == (4, 2, 6)


@pytest.mark.parametrize(("featureset", "vendor", "nested"), [
    ("1fcbfbff-f7fa3223-2c100800-00000121", "intel", True),  # VMX, word 1 bit 5
    ("1fcbfbff-f7fa3203-2c100800-00000121", "intel", False),
    ("1fcbfbff-f7fa3203-2c100800-00000125", "amd", True),  # SVM, word 3 bit 2
    ("", "intel", None), ("zz", "intel", None), ("1fcbfbff-f7fa3223", None, None),
])
def test_nested_virtualization_is_read_from_the_hvm_featureset_and_unknown_when_it_cannot_be(featureset, vendor,
                                                                                            nested):
    assert _nested(featureset, vendor) is nested


def test_vlan_networks_are_found_by_device_and_tag_and_named_after_the_declared_network():
    networks = {"n0": {"name_label": "Pool-wide network associated with eth0"}, "n120": {"name_label": "x"},
                "n1": {"name_label": "other"}}
    pifs = {"p0": {"device": "eth0", "VLAN": "-1", "physical": True, "network": "n0"},
            "p120": {"device": "eth0", "VLAN": "120", "physical": False, "network": "n120"},
            "p1": {"device": "eth1", "VLAN": "120", "physical": False, "network": "n1"}}
    declared = {"Network": {"app": build_spec("Network", "app", {"vlan": 120}),
                            "flat": build_spec("Network", "flat", {"vlan": 0})}}
    vlans = vlans_for("eth0", declared)
    assert (vlans.network_of(120, networks, pifs), vlans.network_of(0, networks, pifs)) == ("n120", "n0")
    assert vlans.network_of(130, networks, pifs) is None
    assert [vlans.name_of(n, networks, pifs) for n in ("n120", "n0", "n1")] == ["app", "flat", "other"]


def names(**overrides) -> PoolNames:
    values = {"where": "XenServer endpoint 'ep'", "default_template": "Other install media",
              "template_setting": "XENSERVER_TEMPLATE", "sources": frozenset({"Other install media", "base"}),
              "srs": {"nfs": "nfs", "lvm": "lvm"}, "networks": lambda name: ["n"] if name in ("app", "sr") else [],
              "sriov": lambda ref: False, "profiles": frozenset({"grid a100-4c"})}
    values.update(overrides)
    return PoolNames(**values)


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"guest_os": "linux"}, "guest_os", "no guest OS setting"),
    ({"machine": "q35"}, "machine", "no machine type"),
    ({"clone_from": "nope"}, "clone_from", "no template or VM named 'nope'"),
    ({"disks": [{"size": 1, "bus": "sata"}]}, "disks[0].bus", "paravirtual VBDs"),
    ({"disks": [{"size": 1, "storage": "nfs", "thin": False}]}, "disks[0].thin", "allocates thin"),
    ({"disks": [{"size": 1, "storage": "ssd"}]}, "disks[0].storage", "no SR named 'ssd'"),
    ({"nics": [{"network": "app", "adapter": "e1000"}]}, "nics[0].adapter", "no e1000 adapter"),
    ({"nics": [{"network": "nowhere"}]}, "nics[0].network", "no network named 'nowhere'"),
    ({"nics": [{"network": "app", "adapter": "sriov"}]}, "nics[0].adapter", "needs an SR-IOV network"),
    ({"gpus": [{"mode": "vgpu", "profile": "GRID A100-40C"}]}, "gpus[0].profile", "no vGPU type named"),
])
def test_what_the_pool_cannot_do_is_named_at_plan_time(fields, field, words):
    spec = build_spec("VirtualMachine", "vm", {"cpus": 1, **fields})
    problems = vm_problems(spec, names())
    assert [f for f, _ in problems] == [field] and words in problems[0][1], problems


def test_a_missing_default_template_points_at_its_setting():
    spec = build_spec("VirtualMachine", "vm", {"cpus": 1})
    [(field, message)] = vm_problems(spec, names(sources=frozenset({"base"})))
    assert field == "clone_from" and "XENSERVER_TEMPLATE" in message and "'Other install media'" in message


def test_settings_come_from_arguments_then_the_environment_and_keep_the_password_secret():
    settings = settings_from("ep", {"template": "base"}, {"XENSERVER_URL": "xs1.example.com",
                                                           "XENSERVER_USERNAME": "root", "XENSERVER_PASSWORD": "pw"})
    assert (settings.url, settings.template, settings.verify) == ("https://xs1.example.com/", "base", True)
    assert "pw" not in repr(settings)
    assert with_host("https://xs2.example.com:8443/", "10.0.0.1") == "https://10.0.0.1:8443/"


def test_missing_and_unknown_settings_are_one_error_naming_each():
    with pytest.raises(SpecError) as refused:
        settings_from("ep", {"sever": "x"}, {})
    text = str(refused.value)
    assert "sever" in text and "XENSERVER_URL" in text and "XENSERVER_PASSWORD" in text


def test_any_name_xapi_takes_is_accepted_but_the_pending_prefix():
    from virtplane.providers.xenserver.provider import XenserverProvider

    assert XenserverProvider.name_problem("VirtualMachine", "Ana's desk [2]") is None
    assert "virtplane-pending:" in XenserverProvider.name_problem("VirtualMachine", "virtplane-pending:x")
