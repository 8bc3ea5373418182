"""Out-of-band changes with raw proxmoxer, as an administrator would make them behind our back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from proxmoxer import ProxmoxAPI


def admin(env: Mapping[str, str]) -> Any:
    """A proxmoxer client for the cluster the PROXMOX_VE_* variables in ``env`` name."""
    url = urlparse(env["PROXMOX_VE_ENDPOINT"])
    return ProxmoxAPI(url.hostname, port=url.port, user=env["PROXMOX_VE_USERNAME"],
                      password=env["PROXMOX_VE_PASSWORD"], verify_ssl=env["PROXMOX_VE_CA_FILE"])


def vm_names(api: Any) -> list[str]:
    return [r.get("name", "") for r in api.cluster.resources.get(type="vm")]


def qemu(api: Any, name: str) -> Any:
    """The ``/nodes/{node}/qemu/{vmid}`` resource of the one VM named ``name``."""
    matches = [r for r in api.cluster.resources.get(type="vm") if r.get("name") == name]
    assert len(matches) == 1, f"expected one VM named {name}, found {len(matches)}"
    return api.nodes(matches[0]["node"]).qemu(matches[0]["vmid"])


def lxc(api: Any, name: str) -> Any:
    """The ``/nodes/{node}/lxc/{vmid}`` resource of the one container listed as ``name`` (its hostname)."""
    matches = [r for r in api.cluster.resources.get(type="vm") if r.get("type") == "lxc" and r.get("name") == name]
    assert len(matches) == 1, f"expected one container named {name}, found {len(matches)}"
    return api.nodes(matches[0]["node"]).lxc(matches[0]["vmid"])


def create_plain_vm(api: Any, name: str, node: str = "pve1") -> None:
    """A VM made by hand: no virtplane tag, no marker in its description."""
    api.nodes(node).qemu.post(vmid=int(api.cluster.nextid.get()), name=name, memory=512, cores=1)
