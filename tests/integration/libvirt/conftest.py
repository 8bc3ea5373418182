"""libvirt peers for the driver's own tests: the test driver on the lab's node file (a connection per test, so a
fresh host each time) and the session's private libvirtd with QEMU."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.peers import LibvirtPeer
from virtplane_lab import libvirtd


@pytest.fixture
def test_host() -> Iterator[LibvirtPeer]:
    """libvirt's test driver on our node file: an A100 with mdev types, an L4, an X710 with four VFs."""
    peer = LibvirtPeer(libvirtd.test_driver_uri())
    yield peer
    peer.close()


@pytest.fixture
def qemu_host(fresh_libvirtd: libvirtd.LibvirtInstance) -> Iterator[LibvirtPeer]:
    peer = LibvirtPeer(fresh_libvirtd.uri)
    yield peer
    peer.close()
