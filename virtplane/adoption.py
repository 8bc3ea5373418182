"""Resources declared with ``opts=pulumi.ResourceOptions(import_=ID)``: objects that exist already (``virtplane import``
writes such stacks) and that the stack compares but does not own until it adopts them.

Planning reads them by id in one batched pass per endpoint and kind. An object without this stack's marker is **not
owned**: the plan shows it with its differences, ``apply`` refuses to change it, ``destroy`` never touches it;
``virtplane import --adopt`` writes the marker once the plan shows no difference, and refuses an object another stack
owns, naming that stack. An id that does not exist is an error. Once adopted, the object is the stack's like any other
(found by its marker), and ``import_`` only has to name it still.
"""

from __future__ import annotations

from collections.abc import Mapping

from virtplane.declared import DeclaredResource
from virtplane.errors import OwnershipError, SpecError, VirtplaneError, raise_all
from virtplane.kinds import kind
from virtplane.providers.base import Declared, KindDriver, Observed, ObserveResult, Owner

NOT_OWNED = "exists, not owned by this stack: `virtplane import --adopt` takes it over once the plan shows no change"


def not_owned_note(owner: Owner | None) -> str:
    if owner is None:
        return NOT_OWNED
    return f"exists, owned by stack '{owner.stack}': this stack compares it and never changes it"


def adoption_refusal(kind_name: str, name: str, live: Observed, endpoint: str) -> OwnershipError | None:
    """Why ``live`` cannot be adopted as ``name`` (another stack's marker), or None."""
    if live.owner is None:
        return None
    return OwnershipError(f"{kind_name} '{name}': refusing to adopt {kind(kind_name).noun} {live.name} (id {live.id}) "
                          f"on endpoint '{endpoint}': it belongs to stack '{live.owner.stack}'"
                          + (f" (endpoint '{live.owner.endpoint}')" if live.owner.endpoint else ""))


def read_imported(kind_name: str, endpoint: str, declared: Mapping[str, DeclaredResource], observed: ObserveResult,
                  driver: KindDriver, stack: str, specs: Declared) -> dict[str, Observed]:
    """The live objects of the declared resources that name an ``import_`` id and are not owned by the stack yet, by
    resource name. The same-named objects they are leave ``observed.foreign``."""
    errors: list[VirtplaneError] = []
    wanted: dict[str, str] = {}
    for name, resource in declared.items():
        if resource.import_id is None:
            continue
        owned = observed.owned.get(name)
        if owned is None:
            wanted[name] = resource.import_id
        elif owned.id is not None and owned.id != resource.import_id:
            errors.append(SpecError(kind_name, name, [("opts.import_", (
                f"names id {resource.import_id}, but the {kind(kind_name).noun} this stack owns as '{name}' on "
                f"endpoint '{endpoint}' has id {owned.id}"))]))
    found = driver.observe_ids(stack, sorted(set(wanted.values())), specs) if wanted else {}
    imported: dict[str, Observed] = {}
    for name, object_id in wanted.items():
        live = found.get(object_id)
        noun = kind(kind_name).noun
        if live is None:
            errors.append(SpecError(kind_name, name, [("opts.import_", (
                f"names id {object_id}, but no {noun} with that id exists on endpoint '{endpoint}'"))]))
            continue
        if live.owner is not None and live.owner.belongs_to(stack, endpoint) and live.owner.resource != name:
            errors.append(OwnershipError(f"{kind_name} '{name}': opts.import_ names {noun} {live.name} "
                                         f"(id {object_id}) "
                                         f"on endpoint '{endpoint}', which this stack owns as '{live.owner.resource}'"))
            continue
        foreign = observed.foreign.get(name)
        if foreign is not None and foreign.id == object_id:
            del observed.foreign[name]
        imported[name] = live
    raise_all(errors)
    return imported


def refuse_changes_to_unowned(items: list[object]) -> None:
    """Raise naming every object not owned by the stack that the plan would change (nothing is changed)."""
    from virtplane.plan import Action, ResourcePlan

    refused = [item for item in items if isinstance(item, ResourcePlan) and item.unowned
               and item.action is not Action.NOOP]
    if not refused:
        return
    described = "; ".join(
        f"{item.kind} {item.name} on {item.endpoint} (id {item.observed.id if item.observed else '?'}) would change "
        + ", ".join(change.change.path for change in item.changes) for item in refused)
    raise VirtplaneError(f"refusing to apply: {described}, but it exists and is not owned by this stack "
                         "(opts.import_). Nothing was changed; make the stack match it until `virtplane plan` shows no "
                         "change, then adopt it with `virtplane import --adopt`")
