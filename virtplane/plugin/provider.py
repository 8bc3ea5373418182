"""The ResourceProvider: each RPC handed to virtplane's own pieces (specs, slots, diff, the drivers).

No business logic lives here: Check is ``build_spec``, Diff is the generic diff over the slot-resolved spec
plus the driver's rules, Create/Update/Delete are the driver's, Read is a batched observe (reads.py).
Create places a new VM as ``virtplane plan`` does (placing.py), after looking for an object that already
carries the resource's marker — an interrupted create's, which it finishes, as ``virtplane apply`` does.
What ``pulumi up`` may do is what ``pulumi preview`` showed (guards.py): data loss only when allowed, no
update of what the preview did not show. Driver calls block (SOAP, HTTPS), so they run in worker threads and
RPCs stay concurrent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from pulumi.provider.experimental import provider as api
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.provider import PropertyDiff, PropertyDiffKind

from virtplane import redact
from virtplane.apply import owner_of
from virtplane.diff import diff
from virtplane.engine import classify, foreign_object
from virtplane.errors import OwnershipError, SpecError, VirtplaneError
from virtplane.import_inputs import importable, inputs_from_state
from virtplane.kinds import KINDS, build_spec, secret_fields
from virtplane.kinds import kind as registered_kind
from virtplane.plan import Action, ResourcePlan
from virtplane.plugin import checking, config_diff, diffing, guards, networks
from virtplane.plugin.endpoint import Endpoint, check_settings, endpoint_name, variables_config
from virtplane.plugin.engine_log import EngineLog
from virtplane.plugin.placing import Placement
from virtplane.plugin.reads import Reads
from virtplane.plugin.schema import PACKAGE, package_schema
from virtplane.plugin.values import (
    UNKNOWN,
    has_unknown,
    inputs_of,
    outputs_map,
    secrets_of,
    to_property,
)
from virtplane.providers.base import Created, Declared, KindDriver, Observed, Rule, undelivered
from virtplane.slots import resolve_slots
from virtplane.specs import NetworkSpec, Spec
from virtplane.wire_names import from_wire, from_wire_map, to_wire, to_wire_map, wire_path

_KIND_NAMES = {kind.name for kind in KINDS}


def resource_kind(request_type: str) -> str:
    """``pulumi:pulumi:Stack$virtplane:index:VirtualMachine`` -> ``VirtualMachine``."""
    token = request_type.split("$")[-1]
    package, _, name = token.rpartition(":")
    if not package.startswith(f"{PACKAGE}:") or name not in _KIND_NAMES:
        raise VirtplaneError(f"the virtplane provider has no resource type {token!r}; it serves "
                             + ", ".join(f"{PACKAGE}:index:{k}" for k in sorted(_KIND_NAMES)))
    return name


def stack_identity(urn: str) -> str:
    """``urn:pulumi:STACK::PROJECT::TYPE::NAME`` -> ``PROJECT/STACK`` (the ownership marker's stack)."""
    parts = urn.split("::")
    if len(parts) >= 4 and parts[0].startswith("urn:pulumi:"):
        return f"{parts[1]}/{parts[0].removeprefix('urn:pulumi:')}"
    return f"{os.environ.get('PULUMI_PROJECT', 'project')}/{os.environ.get('PULUMI_STACK', 'stack')}"


class VirtplaneProvider(api.Provider):
    def __init__(self, version: str, engine_log: EngineLog) -> None:
        self.version = version
        self.log = engine_log
        self.endpoint = Endpoint()
        self.reads = Reads()
        self.provider_urn = ""
        self.provider_name = ""
        self.networks = networks.KnownNetworks()
        self.configured = False
        self.refresh_before_update = False  # the engine said (Handshake) it refreshes resources that ask for it
        self.placement = Placement(self.endpoint)
        self.adopted: set[str] = set()  # ids a Create of this process took over (an interrupted create's object)
        self.new_resources: dict[str, dict[str, Spec]] = {}  # kind -> name -> spec: Checked, not created yet

    # -- schema and configuration -------------------------------------------------------------------------

    async def get_schema(self, request: api.GetSchemaRequest) -> api.GetSchemaResponse:
        return api.GetSchemaResponse(json.dumps(package_schema(self.version)))

    async def check_config(self, request: api.CheckRequest) -> api.CheckResponse:
        config = inputs_of(request.new_inputs)
        name = endpoint_name(request.urn)
        endpoint = Endpoint()
        endpoint.configure(name, {k: v for k, v in config.items() if not has_unknown(v)})  # registers secrets
        unknown = {key for key, value in config.items() if has_unknown(value)}
        problems = [] if "kind" in unknown else check_settings(
            name, {k: v for k, v in config.items() if k not in unknown})
        secret = endpoint.secret_names()
        inputs = {key: to_property(value, from_wire(key) in secret) for key, value in request.new_inputs.items()}
        return api.CheckResponse(inputs=inputs, failures=[api.CheckFailure(wire_path(field), reason)
                                                          for field, reason in problems if field not in unknown])

    async def diff_config(self, request: api.DiffRequest) -> api.DiffResponse:
        """A changed endpoint identity replaces the provider (config_diff.py); any other setting changes in place."""
        news = inputs_of(request.new_inputs)
        result = config_diff.diff_config(endpoint_name(request.urn), inputs_of(request.old_state), news)
        for key in result.replaces:
            if has_unknown(news.get(key)):
                await self.log.warning(f"Endpoint '{endpoint_name(request.urn)}': '{key}' is known only at apply "
                                       "time; if it names another backend, every resource of this Endpoint is "
                                       "replaced", request.urn)
        return api.DiffResponse(changes=bool(result.changed), replaces=[wire_path(k) for k in result.replaces],
                                diffs=[wire_path(k) for k in result.changed],
                                detailed_diff={wire_path(k): v for k, v in result.detailed.items()},
                                delete_before_replace=bool(result.replaces))

    async def configure(self, request: api.ConfigureRequest) -> api.ConfigureResponse:
        config = inputs_of(request.args) if request.args else from_wire_map(variables_config(request.variables))
        self.endpoint.configure(endpoint_name(self.provider_urn, self.provider_name), config)
        self.configured = True
        return api.ConfigureResponse(accept_secrets=True, supports_preview=True, accept_resources=False,
                                     accept_outputs=False)

    # -- resources ----------------------------------------------------------------------------------------

    async def check(self, request: api.CheckRequest) -> api.CheckResponse:
        kind = resource_kind(request.type)
        inputs = inputs_of(request.new_inputs)
        problems = checking.failures(kind, request.name, inputs)
        known = not any(has_unknown(v) for v in inputs.values())
        if not problems and known:
            spec = build_spec(kind, request.name, inputs)
            if kind == "Network":
                self.networks.learn(request.name, spec)
            if not request.old_inputs:  # a resource to create: its Create looks for it in one read with the others
                self.new_resources.setdefault(kind, {})[request.name] = spec
        if not problems and kind == "VirtualMachine" and known and not request.old_inputs and self.configured:
            problems = await self.placement.failures(request.name, inputs)
        return api.CheckResponse(inputs=request.new_inputs,
                                 failures=[api.CheckFailure(wire_path(field), reason) for field, reason in problems])

    async def diff(self, request: api.DiffRequest) -> api.DiffResponse:
        kind, name = resource_kind(request.type), request.name
        known, unknown = checking.known_inputs(inputs_of(request.new_inputs))
        old = inputs_of(request.old_state)
        driver = await self._driver(kind)
        spec = self._resolved(kind, name, known, old, driver, unknown)
        ignore = registered_kind(kind).create_only | {from_wire(diffing.top_field(p)) for p in request.ignore_changes}
        planned = classify(kind, name, driver, diff(spec.model_dump(), old, frozenset(ignore | unknown)), old)
        desired = spec.model_dump()
        result = diffing.pulumi_diff(kind, name, self.endpoint.name, planned, desired, old, unknown - ignore,
                                     driver.replaceable)
        for key in sorted(registered_kind(kind).create_only - {diffing.top_field(p) for p in request.ignore_changes}
                          - unknown):
            if old.get(key) is not None and known.get(key) is not None and known[key] != old[key]:
                # read only when the object is made: an update records it; a resource declaring replaceOnChanges
                # for it (a DesktopPool's desktops: clone_from) is made again from it by the engine
                result.detailed[key] = PropertyDiff(PropertyDiffKind.UPDATE, False)
                result.diffs = sorted({*result.diffs, key})
        if result.data_loss and result.item is not None:
            guards.refuse_unallowed_loss(result.item, self.endpoint.allow_data_loss)
        for sentence in result.data_loss:
            await self.log.warning(f"destroys data: {sentence}", request.urn)
        for sentence in result.possible_loss:
            await self.log.warning(f"may destroy data: {sentence}", request.urn)
        if result.item is not None and not result.replaces and result.item.needs_power_off and old.get("power") == "on":
            fields = ", ".join(c.change.path for c in planned if c.rule is Rule.POWER_OFF)
            again = "" if getattr(spec, "power", None) == "off" else ", then started again"
            await self.log.warning(f"powers off: {kind} '{name}' is shut down to change {fields}{again}", request.urn)
        return api.DiffResponse(changes=bool(result.detailed), replaces=[wire_path(k) for k in result.replaces],
                                diffs=[wire_path(k) for k in result.diffs],
                                detailed_diff={wire_path(k): v for k, v in result.detailed.items()},
                                delete_before_replace=bool(result.replaces))

    async def create(self, request: api.CreateRequest) -> api.CreateResponse:
        kind, name = resource_kind(request.type), request.name
        known, unknown = checking.known_inputs(inputs_of(request.properties))
        secret = secrets_of(request.properties)
        driver = await self._driver(kind)
        if request.preview:
            if not unknown:
                await self._check_references(driver, name, build_spec(kind, name, known), new=True)
            return api.CreateResponse("", self._preview_outputs(kind, name, known, unknown, secret))
        spec = self._resolved(kind, name, known, None, driver)
        await self._check_references(driver, name, spec, new=True)
        stack = stack_identity(request.urn)
        if isinstance(spec, NetworkSpec):
            self.networks.learn(name, spec)
        finished = await self._finish_interrupted_create(driver, stack, name, known, spec, request.urn)
        if finished is not None:
            created_only = {k: v for k, v in spec.model_dump(exclude=secret_fields(kind)).items()
                            if k in registered_kind(kind).create_only}
            return api.CreateResponse(finished.id or "", outputs_map(
                self._outputs(kind, {**created_only, **finished.state}), secret))
        creation = await self.placement.creation_spec(name, spec, driver)
        owner = owner_of(stack, name, self.endpoint.name, spec)
        created = await asyncio.to_thread(driver.create, owner, creation)
        if not isinstance(created, Created) or not created.id:
            raise VirtplaneError(f"{kind} '{name}': the {self.endpoint.kind} driver created it but returned no "
                                 "stable id (it does not implement the Created contract yet)")
        self.reads.forget(kind, created.id)
        made = creation.model_dump(exclude=secret_fields(kind))
        created_only = {k: made[k] for k in registered_kind(kind).create_only if k in made}  # a live VM cannot tell
        outputs = self._outputs(kind, {**made, **created.outputs, **created_only})
        return api.CreateResponse(created.id, outputs_map(outputs, secret))

    async def read(self, request: api.ReadRequest) -> api.ReadResponse:
        kind, name = resource_kind(request.type), request.name
        importing = not request.inputs
        driver = await self._driver(kind)
        stack = stack_identity(request.urn)
        previous = inputs_of(request.properties)
        through_owned_pass = not importing
        if kind == "Network" and not importing:
            self._learn_network(name, inputs_of(request.inputs))
        if _has_nics(kind):
            recorded = self.networks.learn_recorded(previous)
            named_by_pass = self.reads.owned_pass_declared(kind)
            if named_by_pass is not None and not recorded <= set(named_by_pass.get("Network", {})):
                through_owned_pass = False  # that pass named NICs without some of this VM's networks
        live = await self.reads.lookup(driver, stack, request.resource_id, lambda: self._declared(driver, stack),
                                       through_owned_pass=through_owned_pass)
        if live is None:
            return api.ReadResponse(resource_id="")  # gone: a refresh drops it
        secret = secrets_of(request.inputs, request.properties)
        outputs = self._outputs(kind, {**_kept(kind, previous), **live.state})
        inputs = request.inputs
        if importing:
            described, unmanaged = importable(kind, name, inputs_from_state(kind, live.state))
            for field, reason in unmanaged:
                await self.log.warning(f"{kind} '{name}': imported without '{field}', which stays unmanaged: "
                                       f"{reason}", request.urn)
            inputs = outputs_map(described, secret)
            if kind == "Network":
                self._learn_network(name, inputs_from_state(kind, live.state))
        return api.ReadResponse(live.id or request.resource_id, outputs_map(outputs, secret), inputs)

    async def update(self, request: api.UpdateRequest) -> api.UpdateResponse:
        kind, name = resource_kind(request.type), request.name
        known, _unknown = checking.known_inputs(inputs_of(request.news))
        secret = secrets_of(request.news)
        old = inputs_of(request.olds)
        if request.preview:
            return api.UpdateResponse({**outputs_map(old, secret), **{
                key: value for key, value in request.news.items()
                if from_wire(key) not in registered_kind(kind).create_only}})
        driver = await self._driver(kind)
        stack = stack_identity(request.urn)
        live = await self._owned_live(driver, stack, request.resource_id, name, "update")
        ignore = frozenset(registered_kind(kind).create_only
                           | {from_wire(diffing.top_field(p)) for p in request.ignore_changes})
        spec = self._resolved(kind, name, known, live.state, driver)
        planned = classify(kind, name, driver, diff(spec.model_dump(), live.state, ignore), live.state)
        shown = self._resolved(kind, name, known, old, driver)  # what the preview compared: the state
        guards.refuse_unpreviewed(kind, name, registered_kind(kind).noun, planned,
                                  {change.path: change for change in diff(shown.model_dump(), old, ignore)})
        item = ResourcePlan(kind, name, self.endpoint.name, Action.UPDATE, spec=spec, observed=live, changes=planned)
        if item.data_loss():
            guards.refuse_unallowed_loss(item, self.endpoint.allow_data_loss)
        if planned:
            await self._check_references(driver, name, spec)
        if planned or not live.marker_complete:
            await asyncio.to_thread(driver.update, live, spec, [p.change for p in planned])
        if isinstance(spec, NetworkSpec):
            self.networks.learn(name, spec)
        self.reads.forget(kind, request.resource_id)
        fresh = await self.reads.lookup(driver, stack, request.resource_id,
                                        lambda: self._declared(driver, stack), fresh=True)
        state = fresh.state if fresh is not None else {**old, **spec.model_dump(exclude_none=True)}
        declared_now = {k: known[k] for k in registered_kind(kind).create_only
                        if k in known}  # what it was made from, as declared now (diff: UPDATE)
        outputs = self._outputs(kind, {**_kept(kind, old), **declared_now, **state})
        return api.UpdateResponse(outputs_map(outputs, secret))

    async def delete(self, request: api.DeleteRequest) -> None:
        kind, name = resource_kind(request.type), request.name
        if request.resource_id in self.adopted:
            # A replacement made create-before-delete: this run's Create took the object over (it carries the
            # resource's marker), so it is the new resource now, not the old one.
            await self.log.warning(f"{kind} '{name}': not deleting {registered_kind(kind).noun} {request.resource_id}:"
                                   " this run's Create took it over as the resource's replacement", request.urn)
            return
        driver = await self._driver(kind)
        stack = stack_identity(request.urn)
        live = await self.reads.lookup(driver, stack, request.resource_id, lambda: self._declared(driver, stack),
                                       fresh=True)
        if live is None:
            return  # already gone
        self._refuse_unless_ours(live, stack, kind, name, "delete")
        await asyncio.to_thread(driver.delete, live)
        self.reads.forget(kind, request.resource_id)
        if kind == "Network":
            self.networks.forget(name)

    # -- helpers ------------------------------------------------------------------------------------------

    async def _driver(self, kind: str) -> KindDriver:
        return (await self.endpoint.provider()).driver(kind)

    async def _finish_interrupted_create(self, driver: KindDriver, stack: str, name: str, inputs: dict[str, Any],
                                         spec: Spec, urn: str) -> Observed | None:
        """An object already carrying this resource's marker (a create interrupted after the hypervisor made it,
        whose pending operation the engine then forgot) is taken over and finished, as ``virtplane apply``
        finishes an interrupted create: changed in place to the inputs. One that would need replacing is refused,
        never deleted, and so is a same-named object that is not this endpoint's (as the plan refuses it)."""
        kind, endpoint = driver.kind, self.endpoint.name
        self.new_resources.get(kind, {}).pop(name, None)
        claimed = await self.reads.claimed(driver, stack, name, spec, lambda: self._declared(driver, stack),
                                           lambda: dict(self.new_resources.get(kind, {})))
        live = claimed.owned
        if live is not None and live.owner is not None and live.owner.endpoint not in (None, endpoint):
            raise foreign_object(kind, name, endpoint, stack, live.owner)
        if live is None:
            if claimed.foreign is not None:
                raise foreign_object(kind, name, endpoint, stack, claimed.foreign.owner)
            return None
        resolved = self._resolved(kind, name, inputs, live.state, driver)
        create_only = registered_kind(kind).create_only
        planned = classify(kind, name, driver, diff(resolved.model_dump(), live.state, create_only), live.state)
        replaced = [change.change.path for change in planned if change.rule is Rule.REPLACE]
        if replaced:  # never deleted here: it may be a VM retainOnDelete kept when its resource was replaced
            raise VirtplaneError(
                f"{kind} '{name}': {registered_kind(kind).noun} {live.name} (id {live.id}) on endpoint '{endpoint}' "
                f"already carries this resource's ownership marker (left by an interrupted create, or kept by "
                f"retainOnDelete) and differs in {', '.join(replaced)}, which cannot change in place. Nothing was "
                "changed: delete it by hand, or give the resource its values and run again")
        item = ResourcePlan(kind, name, endpoint, Action.UPDATE, spec=resolved, observed=live, changes=planned,
                            note="finishing an interrupted create")
        if item.data_loss():
            guards.refuse_unallowed_loss(item, self.endpoint.allow_data_loss)
        if planned or not live.marker_complete or _has_nics(kind):  # not a VLAN network: it always exists
            await self.log.warning(f"{kind} '{name}': finishing an interrupted create: {registered_kind(kind).noun} "
                                   f"{live.name} (id {live.id}) already carries this resource's ownership marker, so "
                                   "it is taken over, not made a second time", urn)
        if not planned and live.marker_complete:
            finished: Observed | None = live  # nothing to finish: as it was read
        else:
            if planned:
                await self._check_references(driver, name, resolved)
            await asyncio.to_thread(driver.update, live, resolved, [change.change for change in planned])
            self.reads.forget(kind, live.id or "")
            finished = (await self.reads.claimed(driver, stack, name, resolved,
                                                 lambda: self._declared(driver, stack))).owned
        if finished is None or not finished.id:
            raise VirtplaneError(f"{kind} '{name}': the {registered_kind(kind).noun} left by an interrupted create "
                                 f"was finished but cannot be read back on endpoint '{endpoint}'")
        self.adopted.add(finished.id)
        return finished

    async def _check_references(self, driver: KindDriver, name: str, spec: Spec, *, new: bool = False) -> None:
        """What the endpoint cannot satisfy (an unknown node, network or storage; for a new object, a name
        the hypervisor does not take, where the provider has such a rule), as the plan checks it."""
        problems: list[tuple[str, str]] = []
        name_problem = getattr(await self.endpoint.provider(), "name_problem", None)
        if new and callable(name_problem) and (problem := name_problem(driver.kind, name)):
            problems.append(("name", problem))
        declared: Declared = {"Network": self.networks.all(), driver.kind: {name: spec}}
        problems += undelivered(driver, spec, self.endpoint.kind or "this endpoint")
        problems += await asyncio.to_thread(driver.check, spec, declared)
        if problems:
            raise SpecError(driver.kind, name, problems)

    def _resolved(self, kind: str, name: str, inputs: dict[str, Any], live_state: dict[str, Any] | None,
                  driver: KindDriver, unknown: set[str] | frozenset[str] = frozenset()) -> Spec:
        spec = checking.spec_of(kind, name, inputs, set(unknown))
        return resolve_slots(spec, live_state, driver.slots_for(spec))

    def _outputs(self, kind: str, state: dict[str, Any]) -> dict[str, Any]:
        """A resource's outputs: its spec-shaped state; a VM's or container's also records the Networks its NICs are
        on."""
        if not _has_nics(kind):
            return state
        return {**state, networks.OUTPUT: self.networks.output_for(state)}

    def _learn_network(self, name: str, inputs: dict[str, Any]) -> None:
        if inputs and not any(has_unknown(value) for value in inputs.values()):
            with contextlib.suppress(SpecError):  # not a valid declaration (Check reports it): nothing to learn
                self.networks.learn(name, build_spec("Network", name, inputs))

    def _preview_outputs(self, kind: str, name: str, known: dict[str, Any], unknown: set[str],
                         secret: set[str]) -> dict[str, PropertyValue]:
        spec = checking.spec_of(kind, name, known, unknown).with_creation_defaults()
        outputs = to_wire_map(spec.model_dump(exclude=secret_fields(kind)))
        outputs.update({to_wire(key): UNKNOWN for key in unknown})
        wire_secret = {to_wire(key) for key in secret}
        return {key: to_property(UNKNOWN if value is None else _unknown_inside(value), key in wire_secret)
                for key, value in outputs.items()}

    async def _declared(self, driver: KindDriver, stack: str) -> Declared:
        """What helps a driver read objects and references back: the stack's Networks (seen here, recorded by
        VMs, or owned on the endpoint) — a VM's or container's NICs are named after them, and so are VLAN networks
        read by id."""
        if not _has_nics(driver.kind):
            return {"Network": self.networks.all()}
        network_driver = await self._driver("Network")
        owned = await self.reads.owned(network_driver, stack, lambda: _nothing())
        known = self.networks.all()  # after the last await: what a pass is told is what it is told (read())
        for live in owned.values():
            if live.owner is not None and live.owner.resource not in known:
                try:
                    known[live.owner.resource] = build_spec("Network", live.owner.resource,
                                                            inputs_from_state("Network", live.state))
                except SpecError:
                    continue
        return {"Network": known}

    async def _owned_live(self, driver: KindDriver, stack: str, resource_id: str, name: str,
                          action: str) -> Observed:
        live = await self.reads.lookup(driver, stack, resource_id, lambda: self._declared(driver, stack),
                                       fresh=True)
        if live is None:
            raise VirtplaneError(f"{driver.kind} '{name}': no {registered_kind(driver.kind).noun} with id "
                                 f"{resource_id} exists on endpoint '{self.endpoint.name}' any more; run "
                                 "`pulumi refresh` to forget it")
        self._refuse_unless_ours(live, stack, driver.kind, name, action)
        return live

    def _refuse_unless_ours(self, live: Observed, stack: str, kind: str, name: str, action: str) -> None:
        owner = live.owner
        if owner is not None and owner.belongs_to(stack, self.endpoint.name):
            return
        if owner is None:
            whose = f"it carries no virtplane.owner marker, so stack '{stack}' did not create it"
        else:
            whose = (f"its virtplane.owner marker names stack '{owner.stack}'"
                     + (f" and endpoint '{owner.endpoint}'" if owner.endpoint else "")
                     + f", not stack '{stack}' and endpoint '{self.endpoint.name}'")
        raise OwnershipError(redact.redact(
            f"{kind} '{name}': refusing to {action} {registered_kind(kind).noun} {live.name} (id {live.id}) on "
            f"endpoint '{self.endpoint.name}': {whose}"))


def _has_nics(kind: str) -> bool:
    """Whether objects of ``kind`` have NICs named after the stack's Networks (VMs, containers)."""
    return "nics" in registered_kind(kind).spec.model_fields


async def _nothing() -> Declared:
    return {}


def _kept(kind: str, previous: dict[str, Any]) -> dict[str, Any]:
    """What a read keeps of a resource's previous outputs: fields a live object cannot tell (create-only) and digests
    the driver did not read this time (a driver leaves ``cloud_init`` out of a state it did not read)."""
    registered = registered_kind(kind)
    return {key: previous[key] for key in registered.create_only | registered.digest_only if key in previous}


def _unknown_inside(value: Any) -> Any:
    """Unset (None) parts of a value the hypervisor will choose at creation, as unknowns."""
    if isinstance(value, dict):
        return {key: UNKNOWN if item is None else _unknown_inside(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unknown_inside(item) for item in value]
    return value
