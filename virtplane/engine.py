"""Observe the live endpoints and plan: what to create, update, replace or delete, field by field.

Between observe and apply the plan decides everything that needs the whole picture: each declared disk
and NIC gets its slot (virtplane/slots.py), new VMs are placed on a host (the driver's ``place``, counting
what the same plan already placed), and every change that destroys data is marked so apply can refuse it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from virtplane import redact, timings
from virtplane.adoption import not_owned_note, read_imported
from virtplane.declared import DeclaredResource, DesiredStack
from virtplane.diff import diff
from virtplane.errors import OwnershipError, ProviderError, SpecError, VirtplaneError, raise_all
from virtplane.inventory import Host, Inventory
from virtplane.kinds import ORDER, kind
from virtplane.placement import Usage, needs_hardware, place
from virtplane.plan import Action, Plan, PlannedChange, ResourcePlan
from virtplane.pools.placement import PoolPlacer
from virtplane.pools.planning import pool_errors
from virtplane.pools.planning import refine as refine_pools
from virtplane.providers.base import (
    Declared,
    FieldChange,
    KindDriver,
    Observed,
    ObserveResult,
    Owner,
    Provider,
    RefusedChange,
    Rule,
    undelivered,
)
from virtplane.providers.registry import provider_class
from virtplane.slots import resolve_slots
from virtplane.specs import Spec, VirtualMachineSpec


@contextmanager
def connected(desired: DesiredStack, environ: Mapping[str, str] | None = None) -> Iterator[dict[str, Provider]]:
    """Connect to every endpoint the stack declares; close them all afterwards. Two Endpoints that reach
    one backend (the same vCenter, the same Proxmox cluster) are refused: they would take each other's
    objects for strays."""
    environ = os.environ if environ is None else environ
    providers: dict[str, Provider] = {}
    settings: dict[str, tuple[type[Provider], Any]] = {}
    problems: list[VirtplaneError] = []
    for name, endpoint in desired.endpoints.items():  # every endpoint's settings are judged before any connects
        try:
            cls = provider_class(endpoint.kind, name)
            settings[name] = (cls, cls.settings_from(name, endpoint.inputs, environ))
        except SpecError as error:
            problems.append(error)
    raise_all(problems)
    timings.mark(timings.FIRST)  # the drivers' modules were imported for their settings
    try:
        for name, (cls, endpoint_settings) in settings.items():
            for value in dict(endpoint_settings).values():
                if isinstance(value, SecretStr):  # passwords, API tokens: never shown
                    redact.register(value.get_secret_value())
            providers[name] = cls.connect(endpoint_settings)
        refuse_shared_backends(providers)
        yield providers
    finally:
        for provider in providers.values():
            provider.close()


def refuse_shared_backends(providers: Mapping[str, Provider]) -> None:
    seen: dict[str, str] = {}
    for name, provider in providers.items():
        try:
            identity = provider.identity()
        except NotImplementedError:
            continue
        key = f"{provider.name}:{identity}"
        if key in seen:
            raise VirtplaneError(
                f"Endpoints '{seen[key]}' and '{name}' reach the same {provider.name} backend ({identity}); "
                "declare it once and use that Endpoint for all its resources, or each would delete the "
                "other's objects")
        seen[key] = name


def build_plan(desired: DesiredStack, providers: Mapping[str, Provider], *, destroy: bool = False,
               facts: HostFacts | None = None) -> Plan:
    """Compare declared resources with what each endpoint holds. ``destroy`` plans removing all ours. ``facts``
    shares host facts already read in this command (placement reads them only when a VM needs devices)."""
    facts = facts if facts is not None else HostFacts(providers)
    plan = Plan(stack=desired.identity, destroy=destroy)
    grouped = {} if destroy else _group_by_endpoint(desired)
    specs: dict[str, Declared] = {
        endpoint: {kind: {name: r.spec for name, r in named.items()} for kind, named in kinds.items()}
        for endpoint, kinds in grouped.items()}
    errors: list[VirtplaneError] = []
    for endpoint, provider in providers.items():
        placer = Placer(endpoint, provider, facts)
        pools = {} if destroy else {name: pool for name, pool in desired.pools.items() if pool.endpoint == endpoint}
        for kind_name in ORDER:
            declared = grouped.get(endpoint, {}).get(kind_name, {})
            if not provider.serves(kind_name):
                refuse_unserved(kind_name, endpoint, provider, declared)
                continue
            driver = provider.driver(kind_name)
            timings.mark("diff")
            live = driver.observe(desired.identity, specs.get(endpoint, {}))
            observed = _only_this_endpoint(live, endpoint, declared)
            imported = read_imported(kind_name, endpoint, declared, observed, driver, desired.identity,
                                     specs.get(endpoint, {}))
            timings.mark("read")
            items = _plan_kind(kind_name, endpoint, declared, observed, driver, desired.identity, errors, imported)
            if kind_name == "VirtualMachine" and pools:  # desktop pools: recompose, shrink, in use, batches
                refine_pools(items, pools, driver)
                placer.pools = PoolPlacer(endpoint, {name: p.spec.spread for name, p in pools.items()}, items)
            for item in sorted(items, key=_pinned_first):  # as the policy layer counts: pinned VMs first
                placer.place(item, driver)
            plan.resources.extend(items)
    if destroy:
        for item in plan.resources:
            item.destroying = True
    _check_references(plan, providers, specs, errors)
    raise_all(errors)
    return plan


def _group_by_endpoint(desired: DesiredStack) -> dict[str, dict[str, dict[str, DeclaredResource]]]:
    """endpoint -> kind -> resource name -> declared resource."""
    grouped: dict[str, dict[str, dict[str, DeclaredResource]]] = {}
    for resource in desired.resources.values():
        grouped.setdefault(resource.endpoint, {}).setdefault(resource.kind, {})[resource.name] = resource
    return grouped


def refuse_unserved(kind_name: str, endpoint: str, provider: Provider, declared: Mapping[str, object]) -> None:
    """A kind the endpoint's provider has no driver for may not be declared on it (and has nothing to delete)."""
    if declared:
        name = sorted(declared)[0]
        reason = provider.unserved_reasons.get(kind_name)
        because = f" ({reason})" if reason else ""
        problem = (f"endpoint '{endpoint}' is a {provider.name} endpoint, which has no {kind(kind_name).noun}s"
                   f"{because}; declare it on an endpoint that does (see docs/containers.md)")
        raise SpecError(kind_name, name, [("opts.provider", problem)])


def _only_this_endpoint(observed: ObserveResult, endpoint: str, declared: Mapping[str, object]) -> ObserveResult:
    """Objects whose marker names another Endpoint of this stack are that Endpoint's: never ours to change or
    delete (a declared name held by one is foreign)."""
    for name, live in list(observed.owned.items()):
        if live.owner is not None and live.owner.endpoint not in (None, endpoint):
            del observed.owned[name]
            if name in declared:
                observed.foreign[name] = live
    return observed


def _check_references(plan: Plan, providers: Mapping[str, Provider], by_endpoint: Mapping[str, Declared],
                      errors: list[VirtplaneError]) -> None:
    """Ask each driver whether what will be created or changed refers to things that exist; every resource's
    problems are collected into ``errors`` (reported at once with the plan's other errors)."""
    desktops: dict[str, list[tuple[str, str]]] = {}  # a pool's desktops share their problems: said once per pool
    for item in plan.resources:
        if item.spec is None or item.action in (Action.NOOP, Action.DELETE):
            continue
        provider = providers[item.endpoint]
        driver, declared = provider.driver(item.kind), by_endpoint.get(item.endpoint, {})
        problems = undelivered(driver, item.spec, provider.name) + driver.check(item.spec, declared)
        if item.action in (Action.CREATE, Action.REPLACE):
            problems += driver.creation_problems(item.spec, declared)
        if problems and item.pool is not None:
            desktops.setdefault(item.pool, []).extend(problems)
        elif problems:
            errors.append(SpecError(item.kind, item.name, problems))
    errors.extend(pool_errors(desktops))


def foreign_object(kind_name: str, name: str, endpoint: str, stack: str, owner: Owner | None) -> OwnershipError:
    """The error for a declared name held on the endpoint by an object this stack's endpoint does not own."""
    if owner is None:
        whose = "it carries no virtplane.owner marker"
    elif owner.stack == stack:
        whose = f"it belongs to this stack's endpoint '{owner.endpoint}'"
    else:
        whose = f"it belongs to stack '{owner.stack}'"
    return OwnershipError(
        f"{kind_name} '{name}': a {kind(kind_name).noun} named '{name}' already exists on endpoint "
        f"'{endpoint}' and is not managed by stack '{stack}' ({whose}); rename the resource or remove "
        "that object by hand")


def _plan_kind(kind_name: str, endpoint: str, declared: dict[str, DeclaredResource], observed: ObserveResult,
               driver: KindDriver, stack: str, errors: list[VirtplaneError],
               imported: Mapping[str, Observed] | None = None) -> list[ResourcePlan]:
    """``imported``: declared resources' objects that exist and are not owned yet (opts.import_; adoption.py). A
    declared name held by an object the stack does not own is an error collected into ``errors``."""
    plans = []
    create_only = kind(kind_name).create_only
    imported = imported or {}
    for name, resource in declared.items():
        if name in observed.foreign and name not in imported:
            errors.append(foreign_object(kind_name, name, endpoint, stack, observed.foreign[name].owner))
            continue
        live = observed.owned.get(name) or imported.get(name)
        spec = _with_slots(resource.spec, live.state if live is not None else None, driver)
        item = ResourcePlan(kind_name, name, endpoint, Action.CREATE, spec=spec, observed=live,
                            depends_on=set(resource.depends_on), shutdown_seconds=driver.shutdown_seconds)
        if live is not None:
            item.changes = classify(kind_name, name, driver, diff(spec.model_dump(), live.state, create_only),
                                    live.state, collect=True, observed=live)
            if any(c.rule is Rule.REPLACE and c.refused is None for c in item.changes):
                item.action = Action.REPLACE
                if isinstance(spec, VirtualMachineSpec):  # the new VM keeps what the stack leaves unset
                    kept_spec, item.kept = spec.keeping(live.state)
                    item.spec = _with_slots(kept_spec, None, driver)  # kept disks and NICs: the new VM's slots
                    item.volumes = driver.volumes(live)
            elif item.changes or not live.marker_complete:
                item.action = Action.UPDATE
            else:
                item.action = Action.NOOP
            if not live.marker_complete:
                item.note = "finishing an interrupted create"
            elif live.restore_power is not None and item.action is not Action.REPLACE:
                _restore_power(item, live.restore_power)
            if name in imported:
                item.unowned, item.note = True, not_owned_note(live.owner)
                if item.action is Action.REPLACE:
                    item.action = Action.UPDATE  # never replaced: apply refuses any change to it
        plans.append(item)
    for name, live in observed.owned.items():
        if name not in declared:
            plans.append(ResourcePlan(kind_name, name, endpoint, Action.DELETE, observed=live,
                                      volumes=driver.volumes(live) if kind_name == "VirtualMachine" else None))
    return plans


def _restore_power(item: ResourcePlan, power: str) -> None:
    """The VM was switched off by virtplane for a change and the run was killed before starting it again
    (providers/marker.py): power it on again, also when the stack leaves power unset; a declared power wins. The
    update clears the record either way."""
    assert isinstance(item.spec, VirtualMachineSpec) and item.observed is not None
    item.action = Action.UPDATE
    live = item.observed.state.get("power")
    if item.spec.power is None and live != power:
        item.changes.append(PlannedChange(FieldChange("power", live, power), Rule.IN_PLACE))
        item.spec = item.spec.model_copy(update={"power": power})
        item.note = f"virtplane switched it off for a change that was interrupted: powering it {power} again"
    else:
        item.note = "clearing the power record of an interrupted change"


def _pinned_first(item: ResourcePlan) -> bool:
    """Sort key: VMs (and containers) that name their node are placed before those placement chooses a host for,
    so a pinned one is never crowded out of its host by one that could have gone elsewhere."""
    return getattr(item.spec, "node", None) is None


def _with_slots(spec: Spec, live_state: dict | None, driver: KindDriver) -> Spec:
    if live_state is None and getattr(spec, "clone_from", None):
        return spec  # a clone's unnamed slots are its template's: the driver resolves them once it has cloned
    return resolve_slots(spec, live_state, driver.slots_for(spec))


class Placer:
    """Decides where each new VM of one endpoint goes, now, so the plan shows it and one plan's VMs spread out
    and never take the same last device. VMs asking for devices or nested virtualization are placed on the
    endpoint's inventory (virtplane/placement.py); the others by the driver (or the hypervisor).

    Also used by the Pulumi plugin (one per plugin process, with a lock around ``place``): not thread-safe."""

    def __init__(self, endpoint: str, provider: Provider, facts: HostFacts | None = None) -> None:
        self.endpoint = endpoint
        self.provider = provider
        self.usage = Usage()
        self._facts = facts if facts is not None else HostFacts({endpoint: provider})
        self.pools: PoolPlacer | None = None  # the endpoint's desktop pools (spread or pack, capacity)

    def hosts(self) -> list[Host]:
        try:
            return self._facts.of(self.endpoint)
        except NotImplementedError as exc:
            raise VirtplaneError(f"endpoint '{self.endpoint}': cannot place VMs that need devices: {exc}") from None

    def place(self, item: ResourcePlan, driver: KindDriver) -> None:
        if item.action not in (Action.CREATE, Action.REPLACE) or "node" not in type(item.spec).model_fields:
            return
        spec = item.spec.with_creation_defaults()
        if isinstance(spec, VirtualMachineSpec) and needs_hardware(spec) and item.pool is not None \
                and self.pools is not None:
            item.assignment = self.pools.place(item, spec, self.hosts(), self.usage)
            item.placement = item.assignment.host
            return
        if isinstance(spec, VirtualMachineSpec) and needs_hardware(spec):
            hosts = self.hosts()
            if item.action is Action.REPLACE:  # what the VM being replaced holds is its own again
                hosts = [host.released(item.name) for host in hosts]
            item.assignment = place(item.name, self.endpoint, spec, hosts, self.usage)
            item.placement = item.assignment.host
            return
        if getattr(spec, "node", None) is not None:
            return
        node = driver.place(spec, self.usage.memory_mib)
        if node is not None:
            item.placement = node
            self.usage.memory_mib[node] += getattr(spec, "memory", None) or 0


def classify(kind_name: str, name: str, driver: KindDriver, changes: list[FieldChange],
             live: Mapping[str, Any] | None = None, *, collect: bool = False,
             observed: Observed | None = None) -> list[PlannedChange]:
    """Each change with how the driver applies it to the live object (its observed state ``live``). A change it
    cannot make is kept, marked with the reason, when ``collect`` (the plan reports it beside every other
    difference and apply refuses only its resource); otherwise it raises, naming the field (the Pulumi plugin,
    whose Diff has no way to say "cannot apply"). With the live ``observed`` object, each change also says what else
    it destroys (driver.destroys)."""
    planned = []
    for change in changes:
        try:
            rule = driver.rule_in(change, live)
            destroys = tuple(driver.destroys(observed, change)) if observed is not None else ()
            planned.append(PlannedChange(change, rule, destroys=destroys))
        except RefusedChange as exc:
            if not collect:
                raise ProviderError(f"{kind_name} '{name}': field '{change.path}': {exc}") from None
            planned.append(PlannedChange(change, Rule.IN_PLACE, refused=str(exc)))
    return planned


class HostFacts:
    """The host facts of each connected endpoint, read at most once (one batched ``Provider.hosts()`` each) and
    shared by placement, the policy gate and ``inventory`` within one command. Hosts carry the stack's
    Endpoint name, whatever the provider reports."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self.providers = providers
        self._read: dict[str, list[Host] | NotImplementedError] = {}

    def of(self, endpoint: str) -> list[Host]:
        """The endpoint's hosts; NotImplementedError when its provider cannot read host facts."""
        if endpoint not in self._read:
            try:
                self._read[endpoint] = [host.model_copy(update={"endpoint": endpoint})
                                        for host in self.providers[endpoint].hosts()]
            except NotImplementedError as exc:
                self._read[endpoint] = exc
        found = self._read[endpoint]
        if isinstance(found, NotImplementedError):
            raise found
        return found

    def inventory(self, *, tolerant: bool = False) -> Inventory:
        """Every endpoint's hosts. ``tolerant``: an endpoint whose provider cannot read host facts contributes
        none (the policy layer then says "cannot verify"); otherwise that is an error naming it."""
        hosts = []
        for name in self.providers:
            try:
                hosts.extend(self.of(name))
            except NotImplementedError as exc:
                if not tolerant:
                    raise VirtplaneError(f"endpoint '{name}': {exc}") from None
        return Inventory(hosts=hosts)


def collect_inventory(providers: Mapping[str, Provider]) -> Inventory:
    """Every endpoint's hosts, one batched read each."""
    return HostFacts(providers).inventory()
