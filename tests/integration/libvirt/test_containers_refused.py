"""Containers on a libvirt endpoint are refused at plan in one sentence that says why (libvirt-lxc is not supported
yet: docs/containers.md), before anything is made."""

from __future__ import annotations

import pytest

from tests.conformance.stack import Stack
from virtplane.errors import SpecError


def test_a_container_on_a_libvirt_endpoint_is_refused_at_plan_saying_why(test_host):
    stack = Stack(test_host, "ct").container("ct-1", template="debian-12-rootfs")
    with pytest.raises(SpecError) as caught:
        stack.plan()
    assert str(caught.value) == (
        "Container 'ct-1': field 'opts.provider': endpoint 'ep' is a libvirt endpoint, which has no containers "
        "(libvirt-lxc is not supported yet: it needs cgroups managed for each container and a root filesystem "
        "already on the host, which libvirt's API cannot bring there from a template); declare it on an endpoint "
        "that does (see docs/containers.md)")
    assert "ct-1" not in test_host.names()
