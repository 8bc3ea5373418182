"""A clone whose declared disks differ from its template's converges in one apply or is refused at plan time in one
sentence, never replaced on every later plan: a full clone's datastore and thinness are asked for at clone time
(RelocateSpec disk locators); a bus, a smaller size, or a linked clone's disk placement are refused at plan."""

from __future__ import annotations

import pytest

from tests.integration.vsphere.helpers import EngineStack
from tests.integration.vsphere.test_contract import template
from virtplane import apply
from virtplane.errors import SpecError
from virtplane.plan import Action


def thin_template(provider, raw_si, name: str) -> str:
    return template(provider, raw_si, f"{name}-tpl", disks=[{"size": 4, "thin": True}])


@pytest.mark.parametrize(("disk", "field", "fragment"), [
    ({"size": 4, "bus": "sata"}, "disks[0].bus", "keeps its disk scsi0:0's bus ('paravirtual')"),
    ({"size": 2}, "disks[0].size", "a clone's disk can grow, never shrink"),
])
def test_what_a_vsphere_clone_cannot_make_of_its_template_disk_is_refused_at_plan(provider, raw_si, name, disk,
                                                                                   field, fragment):
    source = thin_template(provider, raw_si, name)
    stack = EngineStack(provider, name).vm(name, clone_from=source, cpus=1, memory=512, disks=[disk])
    with pytest.raises(SpecError) as refused:
        stack.plan()
    assert f"field '{field}'" in str(refused.value) and fragment in str(refused.value)


def test_a_linked_clone_cannot_change_its_template_disks_thinness_and_says_so_at_plan(provider, raw_si, name):
    source = thin_template(provider, raw_si, name)
    stack = EngineStack(provider, name).vm(name, clone_from=source, linked_clone=True,
                                           disks=[{"size": 4, "thin": False}])
    with pytest.raises(SpecError, match=r"field 'disks\[0\].thin': a vSphere clone of .* keeps its disk scsi0:0"):
        stack.plan()


def test_a_thick_disk_declared_on_a_clone_of_a_thin_template_is_asked_for_at_clone_time_and_never_replaced(
        provider, raw_si, name, soap_methods):
    source = thin_template(provider, raw_si, name)
    stack = EngineStack(provider, name).vm(name, clone_from=source, cpus=1, memory=512,
                                           disks=[{"size": 4, "thin": False}])
    assert stack.item(name).action is Action.CREATE
    result = apply.run(stack.plan(), {"ep": provider})
    clone_spec = soap_methods.args["CloneVM_Task"][-1]
    [locator] = clone_spec.location.disk
    assert locator.diskBackingInfo.thinProvisioned is False  # what vCenter applies to a full clone's disk
    if result.failed:  # a hypervisor that ignored the locator: refused, the clone gone, never an endless replace
        [failed] = result.failed
        assert "field 'disks[scsi0:0].thin'" in failed.error and "the new clone was deleted again" in failed.error
        assert stack.item(name).action is Action.CREATE
    else:
        assert stack.item(name).action is Action.NOOP


def test_a_clone_onto_its_templates_own_disk_settings_converges_in_one_apply(provider, raw_si, name):
    source = thin_template(provider, raw_si, name)
    stack = EngineStack(provider, name).vm(name, clone_from=source, cpus=1, memory=512,
                                           disks=[{"size": 6, "thin": True}])
    stack.apply()
    assert stack.item(name).action is Action.NOOP
