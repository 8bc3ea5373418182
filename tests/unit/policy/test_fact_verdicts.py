"""What a host's facts say to a request shape is judged once per check (virtplane/fact_verdicts.py), and the answer
is the one judging afresh gives: the checks it remembers read no other field of the request, and what depends on
the plan's earlier choices (memory reserved, devices taken) is still judged VM after VM."""

from __future__ import annotations

from pydantic import BaseModel

from tests.unit.policy.test_placement_agrees_with_policy import HOSTS, REQUESTS, spec
from virtplane.fact_verdicts import FactVerdicts
from virtplane.host_checks import HOST_FACT_CHECKS, request_shape
from virtplane.inventory import Host, SriovFunction
from virtplane.placement import Usage, judge, record
from virtplane.policies.chooser import HostChooser
from virtplane.verdicts import MEMORY_RESERVATION, Judgement

SHAPE_FIELDS = {"machine", "clone_from", "nested_virtualization", "gpus", "gpus[].mode", "gpus[].profile",
                "gpus[].device", "gpus[].vendor", "nics", "nics[].adapter", "nics[].device"}


class Recording:
    """A request (or one of its GPUs or NICs) that notes every field read from it."""

    def __init__(self, model: BaseModel, read: set[str], prefix: str = "") -> None:
        self._model, self._read, self._prefix = model, read, prefix

    def __getattr__(self, name: str) -> object:
        self._read.add(self._prefix + name)
        value = getattr(self._model, name)
        if isinstance(value, list):
            return [Recording(item, self._read, f"{name}[].") if isinstance(item, BaseModel) else item
                    for item in value]
        return value


def test_the_checks_judged_once_per_shape_read_no_field_of_the_request_outside_its_shape():
    read: set[str] = set()
    for host in HOSTS:
        for request in REQUESTS.values():
            for extra in ({}, {"clone_from": "golden"}):
                for check in HOST_FACT_CHECKS:
                    check(Recording(spec(request, **extra).with_creation_defaults(), read), host, Usage(),
                          Judgement())
    assert read <= SHAPE_FIELDS, f"request_shape misses {sorted(read - SHAPE_FIELDS)}"
    assert {"machine", "nested_virtualization", "gpus[].mode", "nics[].adapter"} <= read  # the recording works


def test_requests_that_differ_in_a_field_the_checks_read_have_different_shapes():
    base = spec({"gpus": [{"mode": "passthrough"}], "nics": [{"network": "n", "adapter": "sriov"}]})
    variants = [spec({"gpus": [{"mode": "passthrough"}], "nics": [{"network": "n", "adapter": "sriov"}]}, **more)
                for more in ({"machine": "vmx-19"}, {"clone_from": "golden"}, {"nested_virtualization": True})]
    variants += [spec({"gpus": [gpu], "nics": [{"network": "n", "adapter": "sriov"}]})
                 for gpu in ({"mode": "vgpu", "profile": "grid_a100-20c"}, {"mode": "passthrough", "device": "t4"},
                             {"mode": "passthrough", "vendor": "amd"})]
    variants += [spec({"gpus": [{"mode": "passthrough"}], "nics": [nic]})
                 for nic in ({"network": "n"}, {"network": "n", "adapter": "sriov", "device": "0000:5e:00.0"})]
    shapes = {request_shape(s) for s in [base, *variants]}
    assert len(shapes) == 1 + len(variants)


def test_every_host_judges_every_request_alike_with_and_without_remembered_facts():
    facts = FactVerdicts()
    for _ in range(2):  # the second pass answers from what the first remembered
        for host in HOSTS:
            for request in REQUESTS.values():
                wanted = spec(request).with_creation_defaults()
                assert judge(wanted, host, Usage(), facts) == judge(wanted, host, Usage())


def filling_hosts() -> list[Host]:
    """a has 30,000 MiB free and says so; b does not say (an advisory unknown, so a is preferred while it fits)."""
    def host(name: str, free: int | None) -> Host:
        return Host(name=name, endpoint="pve", hypervisor="proxmox", online=True, cpu_vendor="intel",
                    hardware_virtualization=True, slat=True, iommu=True, nested=True, memory_free_mib=free,
                    sriov=[SriovFunction(address="0000:5e:00.0", enabled=True, vfs_max=8, vfs_enabled=8,
                                         vfs_free=8)])
    return [host("a", 30000), host("b", None)]


def test_a_host_that_fills_up_mid_stack_moves_the_later_vms_elsewhere_though_its_facts_are_remembered():
    hosts = filling_hosts()
    facts = FactVerdicts()
    chooser = HostChooser(hosts, facts)
    usage = Usage()
    chosen = []
    for _ in range(4):  # each reserves 12,000 MiB (an SR-IOV NIC pins memory): a holds two, then is full
        wanted = spec({"memory": 12000, "nics": [{"network": "n", "adapter": "sriov"}]}).with_creation_defaults()
        for host in hosts:  # what the check sees of every host at this point, remembered or not
            assert judge(wanted, host, usage, facts) == judge(wanted, host, usage)
        assignment, judgement, _ = chooser.choose_judged(wanted, usage)
        assert assignment is not None and judgement is not None
        assert (assignment, judgement) == judge(wanted, hosts[[h.name for h in hosts].index(assignment.host)], usage)
        record(wanted, assignment, usage)
        chosen.append(assignment.host)
    assert chosen == ["a", "a", "b", "b"]
    full, refusal = judge(wanted, hosts[0], usage, facts)
    assert full is None and [r.rule for r in refusal.refusals] == [MEMORY_RESERVATION]
