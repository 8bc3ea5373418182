"""What the QEMU guest agent tells of a VM's guest, for deciding whether a desktop is in use.

PVE passes agent commands through ``/nodes/{node}/qemu/{vmid}/agent/{command}``: ``get-users`` lists the users
logged in to the guest (``{"result": [{"user": …, "login-time": …}]}``) and ``network-get-interfaces`` its
addresses. The agent answers only when the VM's ``agent`` option enables it and the agent runs in the guest;
otherwise PVE fails the call ("No QEMU guest agent configured", "QEMU guest agent is not running"), and nothing
tells whether someone works on the desktop (``users`` None: counted as in use). PVE has no batched agent call:
the running VMs asked about are read concurrently, two calls each.

Sources: PVE API viewer, ``/nodes/{node}/qemu/{vmid}/agent/get-users`` and ``…/network-get-interfaces``; the
Administration Guide, "QEMU Guest Agent"; QEMU's guest agent protocol reference (guest-get-users).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from virtplane.errors import ProviderError
from virtplane.providers.base import GuestState
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.config import split_options
from virtplane.providers.proxmox.vm_reader import CONCURRENT_READS, VmRow

AGENT = "QEMU guest agent"


def agent_enabled(config: Mapping[str, Any]) -> bool:
    """``agent: 1`` or ``agent: enabled=1,…`` in the VM's configuration."""
    first, options = split_options(str(config.get("agent", "0")))
    return (options.get("enabled", first) or "0") == "1"


def users_of(answer: Any) -> tuple[str, ...]:
    """The user names of a ``get-users`` answer."""
    rows = answer.get("result") if isinstance(answer, Mapping) else answer
    return tuple(sorted({str(row.get("user")) for row in rows or [] if isinstance(row, Mapping)}))


def address_of(answer: Any) -> str | None:
    """The first IPv4 address that is not loopback in a ``network-get-interfaces`` answer."""
    interfaces = answer.get("result") if isinstance(answer, Mapping) else answer
    for interface in interfaces or []:
        for address in interface.get("ip-addresses") or []:
            text = str(address.get("ip-address") or "")
            if address.get("ip-address-type") == "ipv4" and text and not text.startswith("127."):
                return text
    return None


class GuestReader:
    def __init__(self, client: PveClient) -> None:
        self._client = client

    def states(self, vms: list[tuple[str, VmRow, Mapping[str, Any]]]) -> dict[str, GuestState]:
        """name -> guest state, for (name, listed row, configuration) of each VM."""
        if not vms:
            return {}
        with ThreadPoolExecutor(max_workers=min(CONCURRENT_READS, len(vms))) as pool:
            return dict(zip((name for name, _, _ in vms), pool.map(lambda vm: self._state(*vm), vms), strict=True))

    def _state(self, name: str, row: VmRow, config: Mapping[str, Any]) -> GuestState:
        if not row.running:
            return GuestState("off")
        if not agent_enabled(config):
            return GuestState("on", None, None, f"no {AGENT} is configured")
        try:
            users = users_of(self._client.get(f"{row.path}/agent/get-users", f"ask the {AGENT} of VM {name} who "
                                              "is logged in"))
        except ProviderError:
            return GuestState("on", None, None, f"the {AGENT} does not answer")
        try:
            address = address_of(self._client.get(f"{row.path}/agent/network-get-interfaces",
                                                   f"ask the {AGENT} of VM {name} for its addresses"))
        except ProviderError:
            address = None
        return GuestState("on", users, address, AGENT)
