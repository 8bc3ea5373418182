"""A VM no host of the endpoint can serve is refused when the plan is made, in one sentence naming the VM,
the field and each host, before anything is created."""

from __future__ import annotations

import pytest

from tests.conformance.stack import Stack
from virtplane.errors import VirtplaneError


def test_a_vgpu_profile_no_host_offers_is_refused_at_plan_time_naming_vm_field_and_host(peer, name):
    vm = f"{name}-gpu"
    stack = Stack(peer, f"{name}-stack").vm(vm, cpus=2, memory="1GiB", power="off",
                                             gpus=[{"mode": "vgpu", "profile": "no-such-profile"}])
    with pytest.raises(VirtplaneError) as refused:
        stack.plan()
    message = str(refused.value)
    assert message.startswith(f"VM {vm}: field 'gpus': ") and "\n" not in message, message
    assert "no-such-profile" in message
    hosts = [host.name for host in peer.provider.hosts()]
    assert hosts and all(host in message for host in hosts), (hosts, message)
    assert peer.count(vm) == 0
