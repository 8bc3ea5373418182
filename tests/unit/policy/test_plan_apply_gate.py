"""plan shows and apply enforces the policy, but only for stacks that ask for hardware (devices, nested)."""

import json

import pytest

from tests.unit.memory_hypervisor import MemoryProvider
from tests.unit.policy.inventories import esx
from tests.unit.test_planning import stack, vm
from virtplane import check_command
from virtplane.errors import VirtplaneError


class HostlessProvider(MemoryProvider):
    def hosts(self):
        raise AssertionError("host facts were read for a stack that needs none")


class OneHostProvider(MemoryProvider):
    def hosts(self):
        return [esx("esx-1", endpoint="ep", nested=False)]


def test_a_stack_without_hardware_needs_reads_no_host_facts(tmp_path):
    assert check_command.policy_gate(stack(vm("plain")), {"ep": HostlessProvider()}, tmp_path) is None


def test_apply_is_refused_with_one_sentence_naming_the_vm_and_rule(tmp_path):
    report = check_command.policy_gate(stack(vm("a", nested_virtualization=True, node="esx-1")),
                                       {"ep": OneHostProvider()}, tmp_path)
    assert report is not None and [f.rule for f in report.blocking] == ["hw.nested"]
    with pytest.raises(VirtplaneError, match=r"^apply refused by policy: VM a: hw.nested: host esx-1 does not "
                                             r"support nested virtualization \(see `virtplane check`"):
        check_command.refuse(report)


def test_a_waived_finding_does_not_stop_apply(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  virtplane:policy: "
                                              "'{\"waive\": {\"hw.nested\": \"lab host, accepted\"}}'\n")
    report = check_command.policy_gate(stack(vm("a", nested_virtualization=True, node="esx-1")),
                                       {"ep": OneHostProvider()}, tmp_path)
    assert report is not None and report.findings and not report.blocking
    check_command.refuse(report)


def test_the_plan_json_carries_the_findings_under_policy(tmp_path):
    report = check_command.policy_gate(stack(vm("a", nested_virtualization=True, node="esx-1")),
                                       {"ep": OneHostProvider()}, tmp_path)
    document = json.loads(check_command.with_policy(json.dumps({"schema": 1, "command": "plan"}), report))
    assert document["policy"]["findings"][0]["rule"] == "hw.nested"
    assert check_command.with_policy('{"schema": 1}', None) == '{"schema": 1}'


def test_an_endpoint_that_cannot_read_host_facts_yet_gives_advisories_not_a_refusal(tmp_path):
    report = check_command.policy_gate(stack(vm("a", nested_virtualization=True)), {"ep": MemoryProvider()},
                                       tmp_path)
    assert report is not None and not report.blocking
    assert [(f.rule, f.level) for f in report.findings] == [("hw.placement", "advisory")]
    assert "the inventory has no hosts of endpoint 'ep'" in report.findings[0].message


class ForeignNamedHostProvider(MemoryProvider):
    def hosts(self):
        return [esx("esx-1", endpoint="vcenter.example.com", nested=False)]


def test_hosts_are_matched_to_vms_by_the_stacks_endpoint_name_whatever_the_provider_calls_them(tmp_path):
    report = check_command.policy_gate(stack(vm("a", nested_virtualization=True, node="esx-1")),
                                       {"ep": ForeignNamedHostProvider()}, tmp_path)
    assert report is not None and [f.rule for f in report.blocking] == ["hw.nested"]


def test_the_gate_and_placement_share_one_read_of_the_host_facts(tmp_path):
    from virtplane.engine import HostFacts, build_plan

    class CountingProvider(MemoryProvider):
        reads = 0

        def hosts(self):
            CountingProvider.reads += 1
            return [esx("esx-1", endpoint="ep")]

    providers = {"ep": CountingProvider()}
    desired = stack(vm("a", nested_virtualization=True))
    facts = HostFacts(providers)
    check_command.policy_gate(desired, providers, tmp_path, facts)
    build_plan(desired, providers, facts=facts)
    assert CountingProvider.reads == 1
