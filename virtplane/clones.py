"""What a clone can make of its template's disks, decided at plan time so a clone converges in one apply.

A clone starts as a copy of its template's disks, each at the template's slot. What the hypervisor's clone call
can set at clone time (``settable``: vSphere's RelocateSpec disk locators set a full clone's datastore and
thinness, Proxmox's ``storage`` a full clone's storage) is applied then; a declared disk grows after the clone.
Anything else a declared disk asks of a template's disk (another bus, a smaller size, a thinness or storage the
clone call cannot set) would leave the new VM different from its declaration, and every later plan would replace
it again: such a declaration is refused at plan time, naming the field, in one sentence.

After the clone, ``after_clone`` lists what the update that follows must still change. A change that would replace
the new VM means the hypervisor did not make it as declared (a part of the call it ignored): the clone is deleted
again and the apply stops with one sentence (``not_as_declared``), never a VM that every later plan replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from virtplane.diff import diff
from virtplane.errors import ProviderError
from virtplane.providers.base import FieldChange, RefusedChange, Rule
from virtplane.slots import NewSlot, resolve
from virtplane.specs import VirtualMachineSpec


def not_as_declared(what: str, path: str, problem: str) -> ProviderError:
    """The error for a clone the hypervisor did not make as asked (the driver deletes it again first): every later
    plan would replace it, so the apply stops here. ``what``: "VM web clones 'tpl'"."""
    return ProviderError(f"{what}: field '{path}': {problem}, which no change in place can fix; the new clone was "
                         "deleted again (declare what the template has, or leave the field unset)")


def after_clone(rule: Callable[[FieldChange], Rule], declared: dict[str, Any], cloned: dict[str, Any],
                ignore: frozenset[str], what: str, delete: Callable[[], None]) -> list[FieldChange]:
    """The changes a fresh clone still needs to be as declared (``declared``: the slot-resolved spec dumped;
    ``cloned``: the clone read back), for the update that follows. A change the hypervisor cannot make stops the
    create, naming the field (``what``: "VM web clones 'golden'"); one that would replace the clone deletes it
    (``delete``) and stops the create (not_as_declared)."""
    changes = []
    for change in diff(declared, cloned, ignore):
        try:
            applied = rule(change)
        except RefusedChange as exc:
            raise ProviderError(f"{what}: field '{change.path}': {exc}") from None
        if applied is Rule.REPLACE:
            delete()
            raise not_as_declared(what, change.path, f"the clone has {change.old!r}, not {change.new!r}")
        changes.append(change)
    return changes


def clone_disk_problems(spec: VirtualMachineSpec, template: str, template_disks: list[dict[str, Any]],
                        settable: frozenset[str], new_slot: NewSlot, hypervisor: str) -> list[tuple[str, str]]:
    """(field, message) for each declared disk attribute a clone of ``template`` cannot have."""
    if not spec.disks:
        return []
    declared = resolve("disks", [disk.model_dump() for disk in spec.disks], template_disks, new_slot)
    theirs = {disk["slot"]: disk for disk in template_disks if disk.get("slot")}
    problems = []
    for index, disk in enumerate(declared):
        have = theirs.get(disk["slot"])
        if have is None:
            continue  # a disk the template lacks: added once the clone exists
        for attribute in ("bus", "storage", "thin"):
            want = disk.get(attribute)
            if want is None or want == have.get(attribute) or attribute in settable:
                continue
            problems.append((f"disks[{index}].{attribute}",
                             f"a {hypervisor} clone of '{template}' keeps its disk {disk['slot']}'s {attribute} "
                             f"({have.get(attribute)!r}), which the clone cannot change; declare "
                             f"{attribute}={have.get(attribute)!r} or leave it unset"))
        if have.get("size") and disk["size"] < have["size"]:
            problems.append((f"disks[{index}].size", f"disk {disk['slot']} of '{template}' is {have['size']} GiB; a "
                                                      "clone's disk can grow, never shrink"))
    return problems
