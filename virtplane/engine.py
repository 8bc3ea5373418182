"""Observe the live endpoints and plan: what to create, update, replace or delete, field by field."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pydantic import SecretStr

from virtplane import redact
from virtplane.declared import DeclaredResource, DesiredStack
from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError, SpecError
from virtplane.plan import Action, Plan, PlannedChange, ResourcePlan
from virtplane.providers.base import Declared, ObserveResult, Provider, RefusedChange, Rule
from virtplane.providers.registry import provider_class
from virtplane.specs import CREATE_ONLY

# Kinds in dependency order: a kind may reference kinds before it. Deletes run in reverse.
KIND_ORDER = ("Network", "VirtualMachine")
NOUN = {"Network": "network", "VirtualMachine": "virtual machine"}


@contextmanager
def connected(desired: DesiredStack, environ: Mapping[str, str] | None = None) -> Iterator[dict[str, Provider]]:
    """Connect to every endpoint the stack declares; close them all afterwards."""
    environ = os.environ if environ is None else environ
    providers: dict[str, Provider] = {}
    try:
        for name, endpoint in desired.endpoints.items():
            cls = provider_class(endpoint.kind, name)
            settings = cls.settings_from(name, endpoint.inputs, environ)
            for value in dict(settings).values():
                if isinstance(value, SecretStr):  # passwords, API tokens: never shown
                    redact.register(value.get_secret_value())
            providers[name] = cls.connect(settings)
        yield providers
    finally:
        for provider in providers.values():
            provider.close()


def build_plan(desired: DesiredStack, providers: Mapping[str, Provider], *, destroy: bool = False) -> Plan:
    """Compare declared resources with what each endpoint holds. ``destroy`` plans removing all ours."""
    plan = Plan(stack=desired.identity)
    grouped = {} if destroy else _group_by_endpoint(desired)
    specs: dict[str, Declared] = {
        endpoint: {kind: {name: r.spec for name, r in named.items()} for kind, named in kinds.items()}
        for endpoint, kinds in grouped.items()}
    for endpoint, provider in providers.items():
        for kind in KIND_ORDER:
            declared = grouped.get(endpoint, {}).get(kind, {})
            driver = provider.driver(kind)
            observed = driver.observe(desired.identity, specs.get(endpoint, {}))
            plan.resources.extend(_plan_kind(kind, endpoint, declared, observed, driver, desired.identity))
    _check_references(plan, providers, specs)
    return plan


def _group_by_endpoint(desired: DesiredStack) -> dict[str, dict[str, dict[str, DeclaredResource]]]:
    """endpoint -> kind -> resource name -> declared resource."""
    grouped: dict[str, dict[str, dict[str, DeclaredResource]]] = {}
    for resource in desired.resources.values():
        grouped.setdefault(resource.endpoint, {}).setdefault(resource.kind, {})[resource.name] = resource
    return grouped


def _check_references(plan: Plan, providers: Mapping[str, Provider], by_endpoint: Mapping[str, Declared]) -> None:
    """Ask each driver whether what will be created or changed refers to things that exist."""
    for item in plan.resources:
        if item.spec is None or item.action in (Action.NOOP, Action.DELETE):
            continue
        problems = providers[item.endpoint].driver(item.kind).check(item.spec, by_endpoint.get(item.endpoint, {}))
        if problems:
            raise SpecError(item.kind, item.name, problems)


def _plan_kind(kind: str, endpoint: str, declared: dict[str, DeclaredResource], observed: ObserveResult,
               driver, stack: str) -> list[ResourcePlan]:
    plans = []
    for name, resource in declared.items():
        if name in observed.foreign:
            owner = observed.foreign[name].owner
            whose = f"it belongs to stack '{owner.stack}'" if owner else "it carries no virtplane.owner marker"
            raise OwnershipError(
                f"{kind} '{name}': a {NOUN[kind]} named '{name}' already exists on endpoint '{endpoint}' and is "
                f"not managed by stack '{stack}' ({whose}); rename the resource or remove that object by hand")
        live = observed.owned.get(name)
        item = ResourcePlan(kind, name, endpoint, Action.CREATE, spec=resource.spec, observed=live,
                            depends_on=set(resource.depends_on))
        if live is not None:
            item.changes = _classify(kind, name, driver,
                                     diff(resource.spec.model_dump(), live.state, CREATE_ONLY.get(kind, frozenset())))
            if any(c.rule is Rule.REPLACE for c in item.changes):
                item.action = Action.REPLACE
            elif item.changes or not live.marker_complete:
                item.action = Action.UPDATE
            else:
                item.action = Action.NOOP
            if not live.marker_complete:
                item.note = "finishing an interrupted create"
        plans.append(item)
    for name, live in observed.owned.items():
        if name not in declared:
            plans.append(ResourcePlan(kind, name, endpoint, Action.DELETE, observed=live))
    return plans


def _classify(kind: str, name: str, driver, changes) -> list[PlannedChange]:
    planned = []
    for change in changes:
        try:
            planned.append(PlannedChange(change, driver.rule(change)))
        except RefusedChange as exc:
            raise ProviderError(f"{kind} '{name}': field '{change.path}': {exc}") from None
    return planned
