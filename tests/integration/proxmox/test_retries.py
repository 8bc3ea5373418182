"""The client's retry policy: reads retried on transient trouble, writes never blindly, lost answers re-read."""

from __future__ import annotations

import re

import pytest

from tests.integration.proxmox.helpers import converge, count, create, observe, requests_to, vm_spec
from tests.integration.proxmox.transports import LoseAnswer, wrap
from virtplane.errors import ProviderError
from virtplane.providers.base import Owner


def test_a_create_whose_answer_is_lost_is_found_by_its_marker_and_not_made_twice(provider, stack, pve, raw):
    lost = wrap(provider, LoseAnswer, "POST", "/nodes/pve1/qemu")
    observe(provider, stack, {"web1": vm_spec()})
    provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1"))
    assert lost.lost == 1
    assert count(raw, "web1") == 1 and len(requests_to(pve, "POST", "/nodes/pve1/qemu")) == 1
    assert observe(provider, stack, {"web1": vm_spec()}).owned["web1"].state["power"] == "on"


def test_a_config_write_whose_answer_is_lost_is_re_read_and_completed_without_a_second_disk(provider, stack, raw):
    create(provider, stack, "web1", vm_spec(power="off"))
    wrap(provider, LoseAnswer, "POST", "/config")
    wanted = vm_spec(power="off", memory=1024, disks=[{"size": 8}, {"size": 2}])
    assert converge(provider, stack, "web1", wanted).state["memory"] == 1024
    config = raw.nodes("pve1").qemu(100).config.get()
    assert sorted(key for key in config if re.fullmatch(r"(scsi|unused)\d+", key)) == ["scsi0", "scsi1"]


def test_a_read_refused_for_a_transient_reason_is_retried(provider, stack, pve):
    pve.fail("GET", "/cluster/resources", 503, "service unavailable", times=2)
    assert observe(provider, stack, {}).owned == {}
    assert len(requests_to(pve, "GET", "/cluster/resources")) == 3


def test_lost_quorum_on_reads_is_retried_a_few_times_then_one_sentence(provider, stack, pve):
    pve.fail("GET", "/cluster/resources", 500, "cluster not ready - no quorum?")
    with pytest.raises(ProviderError) as failed:
        observe(provider, stack, {})
    assert str(failed.value) == ("Proxmox could not list the cluster's VMs: cluster not ready - no quorum? (the "
                                 "cluster has lost quorum, so its configuration is read-only until enough nodes are "
                                 "back)")
    assert len(requests_to(pve, "GET", "/cluster/resources")) == 4


def test_a_write_refused_for_lost_quorum_is_not_retried(provider, stack, pve):
    observe(provider, stack, {})
    pve.lose_quorum()
    with pytest.raises(ProviderError, match="no quorum"):
        provider.driver("VirtualMachine").create(Owner(stack, "web1"), vm_spec(node="pve1"))
    assert len(requests_to(pve, "POST", "/nodes/pve1/qemu")) == 1


def test_a_read_whose_connection_is_dropped_is_retried_then_named_in_one_sentence(provider, stack, pve):
    """Reads go through the client's own connection pool (not requests): its errors are read the same way."""
    assert provider.client.direct_reads
    pve.flaky_network(drop_rate=1.0)
    try:
        with pytest.raises(ProviderError) as failed:
            observe(provider, stack, {})
    finally:
        pve.flaky_network(drop_rate=0.0)
    assert re.fullmatch(r"Proxmox could not list the cluster's VMs: cannot reach endpoint '\w+' at https://\S+ "
                        r"\((the connection was closed before an answer came|Connection reset by peer); tried 4 "
                        r"times\)", str(failed.value)), str(failed.value)
    assert observe(provider, stack, {}).owned == {}
