"""Every provider runs the same conformance tests: a ``peer`` fixture per hypervisor."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.conformance.peers import HypervPeer, LibvirtPeer, Peer, ProxmoxPeer, VspherePeer, XenserverPeer
from virtplane_lab import libvirtd

_names = itertools.count()


@pytest.fixture(params=["vsphere", "proxmox", "hyperv", "xenserver", "libvirt-test", "libvirt-qemu"])
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    yield from _peer(request)


@pytest.fixture(params=["vsphere", "proxmox", "xenserver", "libvirt-qemu"])
def cloning_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """A peer whose hypervisor virtplane can clone on (Hyper-V cannot, yet), reachable by a second process
    (tests/conformance/kill.py)."""
    yield from _peer(request)


@pytest.fixture(params=["vsphere", "proxmox", "hyperv", "xenserver", "libvirt-qemu"])
def killable_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """A peer a second process can reach with the same settings (tests/conformance/kill.py kills an apply running in
    one): libvirt through the lab's libvirtd, not libvirt's test driver (each connection to a ``test:///`` URI is a
    world of its own)."""
    yield from _peer(request)


@pytest.fixture(params=["vsphere", "proxmox", "hyperv", "libvirt-qemu"])
def replacing_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """A peer on which some declaration replaces a VM (``Peer.replacing``): on the lab's XenServer pool only a disk's
    SR or thinness would, and it has one SR, whose thinness its checks hold a declaration to; libvirt's test driver
    reads every volume as allocated in full, so a thin disk made thick is no change there (the lab's libvirtd)."""
    yield from _peer(request)


def _peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    if request.param == "vsphere":
        connected: Peer = VspherePeer(request.getfixturevalue("vcsim_instance"))
    elif request.param == "libvirt-test":
        connected = LibvirtPeer(libvirtd.test_driver_uri())  # a fresh copy of the node file per connection
    elif request.param == "libvirt-qemu":
        instance = request.getfixturevalue("fresh_libvirtd")
        connected = LibvirtPeer(instance.uri)
    elif request.param == "hyperv":
        connected = HypervPeer(request.getfixturevalue("fresh_hyperv"))  # the session's host, emptied per test
    elif request.param == "xenserver":
        connected = XenserverPeer(request.getfixturevalue("fresh_xenserver"))  # the session's pool, reseeded per test
    else:
        pve = request.getfixturevalue("fakepve")  # a fresh fake PVE cluster per test (fakepve's plugin)
        for node in ("pve2", "pve3"):
            pve.add_node(node)
        connected = ProxmoxPeer(pve.url, pve.user, pve.password, request.getfixturevalue("fakepve_cafile"))
    yield connected
    connected.close()


@pytest.fixture(params=["proxmox"])
def container_peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """The peers with system containers (Proxmox VE LXC on fakepve; libvirt-lxc joins when its provider has them)."""
    pve = request.getfixturevalue("fakepve")
    for node in ("pve2", "pve3"):
        pve.add_node(node)
    connected = ProxmoxPeer(pve.url, pve.user, pve.password, request.getfixturevalue("fakepve_cafile"))
    yield connected
    connected.close()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A name prefix no other test uses (the vSphere simulator is shared by the session)."""
    return f"c{next(_names)}"
