"""A fake Proxmox VE cluster per test (fakepve's ``fakepve`` fixture, three nodes), a connected provider on it
over verified TLS, and a plain proxmoxer client for changes made behind virtplane's back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from proxmoxer import ProxmoxAPI

from virtplane.providers.proxmox.provider import ProxmoxProvider

_names = itertools.count()
NODES = ("pve1", "pve2", "pve3")


@pytest.fixture
def pve(fakepve: Any) -> Any:
    """The fake cluster: nodes pve1-pve3, storages local (ISOs, backups) and local-lvm (disks), bridge vmbr0."""
    for node in NODES[1:]:
        fakepve.add_node(node)
    return fakepve


@pytest.fixture
def environ(pve: Any, fakepve_cafile: str) -> dict[str, str]:
    """PROXMOX_VE_* for the fake, verifying its certificate (never insecure)."""
    return {"PROXMOX_VE_ENDPOINT": pve.url, "PROXMOX_VE_USERNAME": pve.user, "PROXMOX_VE_PASSWORD": pve.password,
            "PROXMOX_VE_CA_FILE": fakepve_cafile}


def connect(environ: dict[str, str], **inputs: Any) -> ProxmoxProvider:
    settings = ProxmoxProvider.settings_from("pve", inputs, environ)
    return ProxmoxProvider.connect(settings)


@pytest.fixture
def provider(environ: dict[str, str]) -> Iterator[ProxmoxProvider]:
    connected = connect(environ)
    yield connected
    connected.close()


@pytest.fixture
def raw(pve: Any, fakepve_cafile: str) -> Any:
    """proxmoxer itself, as an administrator (or another tool) would use it."""
    address = urlsplit(pve.url)
    return ProxmoxAPI(address.hostname, port=address.port, user=pve.user, password=pve.password,
                      verify_ssl=fakepve_cafile)


@pytest.fixture
def stack() -> str:
    return f"proj/s{next(_names)}"
