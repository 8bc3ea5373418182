"""Whether a desktop is in use, from what each hypervisor's guest tools report (pure mappings)."""

from __future__ import annotations

import pytest

from virtplane.providers.base import GuestState
from virtplane.providers.libvirt.guest_state import address_of as libvirt_address
from virtplane.providers.libvirt.guest_state import users_of as libvirt_users
from virtplane.providers.proxmox.guest_state import address_of, agent_enabled, users_of
from virtplane.providers.vsphere.guest import guest_state


@pytest.mark.parametrize(("props", "users", "in_use"), [
    ({"runtime.powerState": "poweredOff"}, None, False),
    ({"runtime.powerState": "poweredOn", "guest.toolsRunningStatus": "guestToolsNotRunning"}, None, True),
    ({"runtime.powerState": "poweredOn", "guest.toolsRunningStatus": "guestToolsRunning"}, None, True),
    ({"runtime.powerState": "poweredOn", "guest.toolsRunningStatus": "guestToolsRunning",
      "guest.interactiveGuestOperationsReady": False}, (), False),
    ({"runtime.powerState": "poweredOn", "guest.toolsRunningStatus": "guestToolsRunning",
      "guest.interactiveGuestOperationsReady": True, "guest.ipAddress": "10.0.0.7"}, ("an interactive user",), True),
])
def test_vmware_tools_tell_a_logged_in_user_only_when_they_run(props, users, in_use):
    state = guest_state(props)
    assert (state.users, state.in_use) == (users, in_use)


def test_vmware_tools_give_the_guests_address():
    assert guest_state({"runtime.powerState": "poweredOn", "guest.toolsRunningStatus": "guestToolsRunning",
                        "guest.interactiveGuestOperationsReady": False, "guest.ipAddress": "10.0.0.7"}
                       ).address == "10.0.0.7"


@pytest.mark.parametrize(("option", "enabled"), [("1", True), ("0", False), ("enabled=1,fstrim_cloned_disks=1", True),
                                                 ("enabled=0", False), ("1,type=virtio", True)])
def test_the_guest_agent_is_asked_only_where_the_vm_enables_it(option, enabled):
    assert agent_enabled({"agent": option}) is enabled
    assert agent_enabled({}) is False


def test_the_guest_agents_users_and_address_are_read_from_its_answers():
    assert users_of({"result": [{"user": "ana", "login-time": 1.0}, {"user": "bo", "domain": "LAB"},
                                {"user": "ana", "login-time": 2.0}]}) == ("ana", "bo")
    assert users_of({"result": []}) == ()
    assert address_of({"result": [
        {"name": "lo", "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4"}]},
        {"name": "eth0", "ip-addresses": [{"ip-address": "fe80::1", "ip-address-type": "ipv6"},
                                          {"ip-address": "10.1.2.3", "ip-address-type": "ipv4"}]}]}) == "10.1.2.3"


def test_a_powered_off_desktop_is_never_in_use_and_a_running_one_without_facts_always_is():
    assert not GuestState("off").in_use
    assert GuestState("on").in_use
    assert not GuestState("on", ()).in_use


def test_libvirts_guest_info_gives_the_agents_users_and_first_ipv4_address():
    info = {"user.count": 3, "user.0.name": "ana", "user.0.login-time": 1, "user.1.name": "bo", "user.2.name": "ana",
            "if.count": 2, "if.0.name": "lo", "if.0.addr.count": 1, "if.0.addr.0.type": "ipv4",
            "if.0.addr.0.addr": "127.0.0.1", "if.1.name": "eth0", "if.1.addr.count": 2,
            "if.1.addr.0.type": "ipv6", "if.1.addr.0.addr": "fe80::1", "if.1.addr.1.type": "ipv4",
            "if.1.addr.1.addr": "10.1.2.3"}
    assert (libvirt_users(info), libvirt_address(info)) == (("ana", "bo"), "10.1.2.3")
    assert (libvirt_users({"user.count": 0}), libvirt_address({})) == ((), None)
