"""What the QEMU guest agent tells libvirt of a domain's guest, for deciding whether a desktop is in use.

libvirt asks the agent through ``virDomainGetGuestInfo`` with ``VIR_DOMAIN_GUEST_INFO_USERS`` and
``VIR_DOMAIN_GUEST_INFO_INTERFACES``: one call per domain, answered as typed parameters (``user.count``,
``user.<n>.name``: the users logged in; ``if.count``, ``if.<n>.name``, ``if.<n>.addr.<m>.type`` ``ipv4``/``ipv6``
and ``if.<n>.addr.<m>.addr``: the guest's addresses). It needs the agent's virtio channel
(``org.qemu.guest_agent.0``) in the domain and the agent running in the guest; otherwise libvirt fails the call
(``VIR_ERR_ARGUMENT_UNSUPPORTED``: "QEMU guest agent is not configured", ``VIR_ERR_AGENT_UNRESPONSIVE``), and a
driver without the call says ``VIR_ERR_NO_SUPPORT`` (libvirt's test driver has no ``virDomainGetGuestInfo``).
Then nothing tells whether someone works on the desktop: ``users`` is None, and a running desktop counts as in
use. libvirt has no batched guest call: the running domains asked about are read a few at once.
(``virDomainInterfaceAddresses`` with the agent as source is not used: libvirt 9's test driver crashes on it for a
domain with a network interface.)

Sources: libvirt API reference, libvirt-domain: virDomainGetGuestInfo, virDomainInterfaceAddresses
(https://libvirt.org/html/libvirt-libvirt-domain.html); "QEMU guest agent" in libvirt's domain XML format
(https://libvirt.org/formatdomain.html#channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from virtplane.providers.base import GuestState
from virtplane.providers.libvirt import client

AGENT = "QEMU guest agent"


def users_of(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The user names in ``virDomainGetGuestInfo``'s typed parameters."""
    count = int(info.get("user.count") or 0)
    return tuple(sorted({str(info[f"user.{n}.name"]) for n in range(count) if info.get(f"user.{n}.name")}))


def address_of(info: Mapping[str, Any]) -> str | None:
    """The first IPv4 address that is not loopback in ``virDomainGetGuestInfo``'s interfaces."""
    for n in range(int(info.get("if.count") or 0)):
        for m in range(int(info.get(f"if.{n}.addr.count") or 0)):
            text = str(info.get(f"if.{n}.addr.{m}.addr") or "")
            if info.get(f"if.{n}.addr.{m}.type") == "ipv4" and text and not text.startswith("127."):
                return text
    return None


def read_states(domains: list[tuple[str, Any, bool]]) -> dict[str, GuestState]:
    """name -> guest state, for (name, virDomain, running) of each domain."""
    states = client.each(domains, lambda found: _state(*found))
    return {name: state for (name, _, _), state in zip(domains, states, strict=True)}


def _state(name: str, domain: Any, running: bool) -> GuestState:
    if not running:
        return GuestState("off")
    lib = client.module()
    try:
        info = domain.guestInfo(lib.VIR_DOMAIN_GUEST_INFO_USERS | lib.VIR_DOMAIN_GUEST_INFO_INTERFACES, 0) or {}
    except lib.libvirtError as error:
        return GuestState("on", None, None, f"no {AGENT} answers (libvirt: {client.message(error)})")
    return GuestState("on", users_of(info), address_of(info), AGENT)
