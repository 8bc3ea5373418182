"""The plugin on the real protocol peers (vcsim, fakepve, the Hyper-V and XenServer simulators): a started,
configured plugin per test, and each peer's administrator (tests/conformance/peers.py) for changes behind the
plugin's back.

Every plugin started here is stopped with the same checks: no secret left the plugin outside a secret envelope
(replies, engine messages, stderr) and no Python traceback reached stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.peers import HypervPeer, Peer, ProxmoxPeer, VspherePeer, XenserverPeer
from tests.support.plugin import Plugin, outside_secret_envelopes

# The plugin must take its endpoint from its configuration alone, never from the developer's environment.
BLANK_ENVIRONMENT = {variable: "" for variable in ("VSPHERE_SERVER", "VSPHERE_PASSWORD", "PROXMOX_VE_ENDPOINT",
                                                   "PROXMOX_VE_PASSWORD", "HYPERV_SERVER", "HYPERV_PASSWORD",
                                                   "XENSERVER_URL", "XENSERVER_PASSWORD",
                                                   "VIRTPLANE_ALLOW_DATA_LOSS", "VIRTPLANE_DEBUG")}
PEER_KINDS = ("vsphere", "proxmox", "hyperv", "xenserver")


def started(tmp_path: Path, config: dict[str, Any], environ: dict[str, str] | None = None,
            endpoint: str = "lab") -> Plugin:
    plugin = Plugin(tmp_path, {**BLANK_ENVIRONMENT, **(environ or {})})
    plugin.configure(endpoint, config)
    return plugin


def stopped(plugin: Plugin, password: str, *, tracebacks: bool = False) -> None:
    """Stop the plugin; nothing it said holds the password, and (unless ``tracebacks``: VIRTPLANE_DEBUG) no
    traceback reached stderr."""
    plugin.stop()
    for reply in plugin.replies:
        assert password not in outside_secret_envelopes(reply)
    assert all(password not in message for _, message, _ in plugin.engine.logs)
    assert password not in plugin.stderr()
    if not tracebacks:
        assert "Traceback" not in plugin.stderr()


def connect_peer(request: pytest.FixtureRequest, kind: str) -> tuple[Peer, dict[str, Any]]:
    """A peer of ``kind`` (its own client for checks) and the Endpoint settings the plugin is configured with."""
    if kind == "hyperv":
        host = request.getfixturevalue("fresh_hyperv")
        return HypervPeer(host), {"kind": "hyperv", "server": host.server, "username": host.user,
                                  "password": host.password, "tls": True, "ca_file": host.ca_file,
                                  "switch": host.switch}
    if kind == "xenserver":
        pool = request.getfixturevalue("fresh_xenserver")
        return XenserverPeer(pool), {"kind": "xenserver", "server": pool.url, "username": pool.user,
                                     "password": pool.password, "ca_file": pool.ca_file}
    if kind == "vsphere":
        instance = request.getfixturevalue("vcsim_instance")
        return VspherePeer(instance), {"kind": "vsphere", "server": instance.host, "username": instance.user,
                                       "password": instance.password, "ca_file": instance.ca_file}
    pve = request.getfixturevalue("fakepve")
    for node in ("pve2", "pve3"):
        pve.add_node(node)
    ca_file = request.getfixturevalue("fakepve_cafile")
    return ProxmoxPeer(pve.url, pve.user, pve.password, ca_file), {
        "kind": "proxmox", "endpoint": pve.url, "username": pve.user, "password": pve.password, "ca_file": ca_file}


def id_of(peer: Peer, name: str) -> str:
    """The hypervisor's own stable id, through its own client: vSphere instance UUID, Proxmox vmid, Hyper-V
    VMId, XenServer VM uuid."""
    from tests.support import hyperv as raw_hyperv
    from tests.support import vsphere as raw_vsphere
    from tests.support import xenserver as raw_xen

    if isinstance(peer, XenserverPeer):
        with raw_xen.session(peer.instance) as api:
            return str(api.VM.get_uuid(raw_xen.vm_named(api, name)))
    if isinstance(peer, HypervPeer):
        [vm] = raw_hyperv.run(peer.instance, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name))
        return str(raw_hyperv.prop(vm, "VMId")).lower()
    if isinstance(peer, VspherePeer):
        return str(raw_vsphere.find_vm(peer.si, name).config.instanceUuid)
    assert isinstance(peer, ProxmoxPeer)
    return str(peer._find(name)[1])


Endpoint = tuple[Peer, dict[str, Any], str]


@pytest.fixture(params=PEER_KINDS)
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    """A peer and the Endpoint settings for it (password included), one per hypervisor."""
    peer, config = connect_peer(request, request.param)
    yield peer, config, config["password"]
    peer.close()


@pytest.fixture
def plugin(tmp_path: Path, endpoint: Endpoint) -> Iterator[Plugin]:
    """The plugin configured for the endpoint as a stack's Endpoint named ``lab`` would configure it."""
    _peer, config, password = endpoint
    running = started(tmp_path, config)
    yield running
    stopped(running, password)
