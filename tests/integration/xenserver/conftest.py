"""The session's simulated pool, reseeded per test (``fresh_xenserver``, tests/conftest.py), a virtplane provider
connected to it, and stacks declared in code (the conformance suite's ``Stack``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.conformance.peers import XenserverPeer
from tests.conformance.stack import Stack
from virtplane_lab.xenserver import XenserverInstance

_names = itertools.count()


@pytest.fixture
def peer(fresh_xenserver: XenserverInstance) -> Iterator[XenserverPeer]:
    connected = XenserverPeer(fresh_xenserver)
    yield connected
    connected.close()


@pytest.fixture
def stack(peer: XenserverPeer) -> Stack:
    return Stack(peer, f"xs{next(_names)}")


def calls_during(instance: XenserverInstance, action: object) -> list[str]:
    """The XML-RPC methods the pool received while ``action()`` ran."""
    before = len(instance.calls())
    action()  # type: ignore[operator]
    return instance.calls()[before:]
