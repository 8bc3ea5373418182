"""Carry out a plan as a dependency graph with bounded parallelism, reporting progress as it goes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from virtplane import redact
from virtplane.adoption import refuse_changes_to_unowned
from virtplane.errors import VirtplaneError
from virtplane.graph import Graph
from virtplane.kinds import later_kinds
from virtplane.plan import Action, Plan, ResourcePlan
from virtplane.providers.base import Owner, Provider
from virtplane.specs import Spec, VirtualMachineSpec


class DataLossRefused(VirtplaneError):
    """The plan destroys data and --allow-data-loss was not given: nothing was changed."""


@dataclass
class Outcome:
    resource: ResourcePlan
    ok: bool
    seconds: float = 0.0
    error: str = ""
    skipped: bool = False


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def to_json(self) -> dict[str, object]:
        return {"succeeded": [o.resource.key for o in self.outcomes if o.ok],
                "failed": [{"resource": o.resource.key, "error": o.error, "skipped": o.skipped}
                           for o in self.outcomes if not o.ok]}


def dependency_graph(plan: Plan) -> Graph[str]:
    """Creates and updates wait for what they reference; deletes wait for the deletes of referrers.

    A delete of a kind waits for every pending change of later kinds on the same endpoint (a network
    is removed only after the VMs that may use it are gone or changed)."""
    pending = {r.key: r for r in plan.pending}
    graph: Graph[str] = Graph()
    for key, item in pending.items():
        graph.add(key, {d for d in item.depends_on if d in pending})
        if item.action in (Action.DELETE, Action.REPLACE):
            later = later_kinds(item.kind)
            graph.add(key, {k for k, other in pending.items()
                            if other.kind in later and other.endpoint == item.endpoint
                            and other.action in (Action.DELETE, Action.UPDATE, Action.REPLACE)})
    return graph


CLI_ALLOWANCE = "pass --allow-data-loss"


def refuse_when_nothing_can_apply(plan: Plan) -> None:
    """Raise VirtplaneError, one sentence per resource, when every pending resource holds a change the hypervisor
    cannot make: apply refuses each of them as a whole and there is nothing else to apply (docs/safety.md)."""
    if plan.pending and all(item.refused for item in plan.pending):
        raise VirtplaneError("\n".join(item.refusal() for item in plan.pending))


def refuse_data_loss(plan: Plan, allowance: str = CLI_ALLOWANCE) -> None:
    """Raise DataLossRefused naming every VM, slot and size the plan would destroy; ``allowance`` says how to allow
    it (the CLI's flag, the plugin's ``allowDataLoss``)."""
    if lost := plan.data_loss():
        kept = " and ".join(sorted({"mount points" if item.kind == "Container" else "disks"
                                    for item in plan.pending if item.pool is None and item.data_loss()}))
        tail = f", or declare the {kept} to keep" if kept else ""  # a pool's shrink: log users off instead
        raise DataLossRefused("refusing to apply: " + "; ".join(lost) + f". Nothing was changed; {allowance} to "
                              f"apply it anyway{tail}")


def run(plan: Plan, providers: Mapping[str, Provider], *, parallel: int = 4, allow_data_loss: bool = False,
        on_event: Callable[[str, Outcome | ResourcePlan], None] | None = None) -> ApplyResult:
    """Apply every pending resource; a failure skips what depends on it and lets the rest finish.
    A plan that destroys data is refused before anything changes unless ``allow_data_loss``.

    ``on_event``: ``start`` (a resource) and ``ended`` (its Outcome) from the worker thread as a change starts and
    ends, ``ended`` also while an interrupt (Ctrl-C) waits for the changes under way to finish; ``done`` (the
    Outcome, or a skip) from the calling thread."""
    refuse_changes_to_unowned(plan.resources)
    if not allow_data_loss:
        refuse_data_loss(plan)
    graph = dependency_graph(plan)
    order = graph.order()  # raises on cycles before anything is touched
    items = {r.key: r for r in plan.pending}
    result = ApplyResult()
    done: set[str] = set()
    failed: set[str] = set()
    lock = threading.Lock()
    notify = on_event or (lambda event, payload: None)

    def execute(item: ResourcePlan) -> Outcome:
        outcome = attempt(item)
        notify("ended", outcome)  # from the worker, at once: an interrupted run still learns what was done
        return outcome

    def attempt(item: ResourcePlan) -> Outcome:
        started = time.monotonic()
        notify("start", item)
        if item.refused:  # a change the hypervisor cannot make: none of this resource's changes are made
            return Outcome(item, False, 0.0, redact.redact(item.refusal()))
        try:
            _apply_one(plan.stack, item, providers[item.endpoint])
        except VirtplaneError as exc:
            return Outcome(item, False, time.monotonic() - started, redact.redact(str(exc)))
        except Exception as exc:  # a bug or an unexpected library error: report it, keep going
            return Outcome(item, False, time.monotonic() - started,
                           redact.redact(f"{item.kind} '{item.name}': unexpected {type(exc).__name__}: {exc}"))
        return Outcome(item, True, time.monotonic() - started)

    remaining = list(order)
    running: dict[Future[Outcome], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while remaining or running:
            for key in list(remaining):
                deps = graph.dependencies(key)
                if deps & failed:
                    remaining.remove(key)
                    failed.add(key)
                    skipped = Outcome(items[key], False, error=f"{key} skipped: a resource it depends on failed",
                                      skipped=True)
                    result.outcomes.append(skipped)
                    notify("done", skipped)
                elif deps <= done and len(running) < parallel:
                    remaining.remove(key)
                    running[pool.submit(execute, items[key])] = key
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                outcome = future.result()
                with lock:
                    (done if outcome.ok else failed).add(key)
                result.outcomes.append(outcome)
                notify("done", outcome)
    return result


def creation_spec(item: ResourcePlan) -> Spec:
    """The spec a create gets: the planned spec, with the creation defaults for what the stack leaves unset
    (a VM or container made from nothing) and the host placement chose."""
    assert item.spec is not None
    spec = item.spec.with_creation_defaults()
    if isinstance(spec, VirtualMachineSpec) and item.assignment is not None:
        spec = item.assignment.apply_to(spec)
    elif getattr(spec, "node", "") is None and item.placement is not None:
        spec = spec.model_copy(update={"node": item.placement})
    return spec


def owner_of(stack: str, name: str, endpoint: str, spec: Spec | None) -> Owner:
    """The marker a create writes: a clone's names the template it was made from."""
    source = spec.clone_from if isinstance(spec, VirtualMachineSpec) else None
    return Owner(stack, name, endpoint, source or None)


def _apply_one(stack: str, item: ResourcePlan, provider: Provider) -> None:
    driver = provider.driver(item.kind)
    owner = owner_of(stack, item.name, item.endpoint, item.spec)
    if item.action is Action.CREATE:
        driver.create(owner, creation_spec(item))
    elif item.action is Action.UPDATE:
        assert item.spec is not None and item.observed is not None
        driver.update(item.observed, item.spec, [c.change for c in item.changes])
    elif item.action is Action.REPLACE:
        assert item.spec is not None and item.observed is not None
        driver.delete(item.observed)
        driver.create(owner, creation_spec(item))
    elif item.action is Action.DELETE:
        assert item.observed is not None
        driver.delete(item.observed)
