"""Each provider's naming rule is the hypervisor's own, checked without connecting."""

from __future__ import annotations

import pytest

from virtplane.providers.hyperv.provider import HypervProvider
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.providers.vsphere import names as vsphere_names
from virtplane.providers.vsphere.provider import VsphereProvider


@pytest.mark.parametrize("name", ["web-1", "db01.lab", "1st", "A" * 200, "a.b-c.d9"])
def test_proxmox_takes_dns_names_for_vms(name):
    assert ProxmoxProvider.name_problem("VirtualMachine", name) is None


@pytest.mark.parametrize(("name", "suggestion"), [
    ("My_VM1", "My-VM1"), ("has space", "has-space"), ("-leading", "leading"), ("trailing-", "trailing"),
    ("a..b", "a.b"), ("o'neil", "o-neil"), ("__", None)])
def test_proxmox_refuses_what_is_no_dns_name_stating_the_rule_and_a_name_that_would_do(name, suggestion):
    problem = ProxmoxProvider.name_problem("VirtualMachine", name)
    assert problem is not None and problem.startswith("must be a DNS name on Proxmox VE")
    assert "no '_'" in problem
    assert (f"e.g. '{suggestion}'" in problem) if suggestion else "e.g." not in problem


def test_proxmox_networks_have_no_name_on_the_cluster_so_any_name_will_do():
    assert ProxmoxProvider.name_problem("Network", "App_Net 1") is None


@pytest.mark.parametrize("name", ["Web Server (prod)", "o'neil", "x" * 80, "a/b", "50% off", "back\\slash"])
def test_vsphere_takes_any_name_of_up_to_80_characters_as_stored(name):
    assert VsphereProvider.name_problem("VirtualMachine", name) is None


@pytest.mark.parametrize(("name", "fragment"), [
    ("x" * 81, "at most 80 characters on vSphere; it has 81"),
    ("/" * 27, "'%', '/' and '\\' count as 3"),
    ("x" * 78 + "/", "it has 81"),
    ("web%2f1", "must not hold '%2f' on vSphere"),
])
def test_vsphere_refuses_names_it_cannot_store_or_would_store_changed(name, fragment):
    problem = VsphereProvider.name_problem("Network", name)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(("declared", "stored"), [("a/b", "a%2fb"), ("50% off", "50%25 off"),
                                                  ("c:\\x", "c:%5cx"), ("plain", "plain")])
def test_vsphere_names_are_read_back_as_declared(declared, stored):
    """vSphere API reference, ManagedEntity.name: '/', '\\' and '%' are stored escaped (%2f, %5c, %25)."""
    assert vsphere_names.escaped(declared) == stored
    assert vsphere_names.unescaped(stored) == declared
    assert vsphere_names.unescaped(stored.upper()) == declared.upper()


def test_hyperv_takes_any_name_of_up_to_100_characters():
    assert HypervProvider.name_problem("VirtualMachine", "Ana's desk $(x) [1]") is None
    assert HypervProvider.name_problem("VirtualMachine", "x" * 101) == (
        "must be 1 to 100 characters on Hyper-V; it has 101")
