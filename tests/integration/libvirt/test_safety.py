"""Data safety on libvirt: a UEFI VM without secure boot is defined as declared; the power record of an interrupted
change (providers/marker.py) starts the domain again on the next apply, even with power unset, and is cleared."""

from __future__ import annotations

from tests.conformance.stack import Stack
from virtplane.providers.libvirt import marker
from virtplane.providers.libvirt.domain_xml import parse


def small(**fields):
    return {"cpus": 1, "memory": "256MiB", "disks": [{"size": 1}], "nics": [{"network": "default"}], **fields}


def test_a_uefi_vm_without_secure_boot_is_defined_and_reads_back_so(test_host):
    stack = Stack(test_host, "fw").vm("web", **small(firmware="uefi", secure_boot=False))
    stack.apply()
    assert stack.changes() == {}
    [web] = [r for r in stack.plan().resources if r.name == "web"]
    assert (web.observed.state["firmware"], web.observed.state["secure_boot"]) == ("uefi", False)


def test_a_domain_left_off_by_an_interrupted_change_runs_again_and_its_record_is_cleared(test_host):
    stack = Stack(test_host, "rec").vm("web", **small(power="on"))
    stack.apply()
    domain = test_host.conn.lookupByName("web")
    # What a run killed right after switching the domain off for a change leaves: the record, the domain off.
    found = marker.read(parse(domain.XMLDesc(0)))
    found.restore = "on"
    test_host.provider.driver("VirtualMachine")._set_marker(domain, "web", found)
    domain.destroy()
    stack.vm("web", **small())  # power not managed any more: the record still restores it
    [web] = [r for r in stack.plan().resources if r.name == "web"]
    assert web.observed.restore_power == "on"
    assert [(c.change.path, c.change.old, c.change.new) for c in web.changes] == [("power", "off", "on")]
    stack.apply()
    assert domain.isActive()
    assert marker.read(parse(domain.XMLDesc(0))).restore is None
    assert stack.changes() == {}
