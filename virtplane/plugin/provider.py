"""The ResourceProvider: each RPC handed to virtplane's own pieces (specs, slots, diff, the drivers).

No business logic lives here: Check is ``build_spec``, Diff is the generic diff over the slot-resolved spec
plus the driver's rules, Create/Update/Delete are the driver's, Read is a batched observe (reads.py).
Create places a new VM as ``virtplane plan`` does (the engine's Placer: devices and nested virtualization on
the endpoint's hosts, the driver's ``place`` otherwise), counting what this process placed already.
Driver calls block (SOAP, HTTPS), so they run in worker threads and RPCs stay concurrent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
from typing import Any

from pulumi.provider.experimental import provider as api
from pulumi.provider.experimental.property_value import PropertyValue

from virtplane import redact
from virtplane.apply import creation_spec, owner_of
from virtplane.diff import diff
from virtplane.engine import Placer, classify
from virtplane.errors import OwnershipError, SpecError, VirtplaneError
from virtplane.kinds import KINDS, build_spec
from virtplane.kinds import kind as registered_kind
from virtplane.placement import PlacementError, needs_hardware, place
from virtplane.plan import Action, PlannedChange, ResourcePlan
from virtplane.plugin import checking, diffing
from virtplane.plugin.endpoint import Endpoint, check_settings, endpoint_name, variables_config
from virtplane.plugin.engine_log import EngineLog
from virtplane.plugin.reads import Reads
from virtplane.plugin.schema import PACKAGE, package_schema
from virtplane.plugin.values import (
    UNKNOWN,
    has_unknown,
    plain_map,
    secret_keys,
    to_property,
    to_property_map,
)
from virtplane.providers.base import Created, Declared, KindDriver, Observed
from virtplane.slots import resolve_vm
from virtplane.specs import NetworkSpec, Spec, VirtualMachineSpec

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
        self.networks: dict[str, Spec] = {}  # Networks seen by this process: how a NIC's network is read back
        self.configured = False
        self._placer: Placer | None = None  # what this process placed, per host; used under _placement only
        self._placement = asyncio.Lock()  # Creates run concurrently: one placement at a time

    # -- schema and configuration -------------------------------------------------------------------------

    async def get_schema(self, request: api.GetSchemaRequest) -> api.GetSchemaResponse:
        return api.GetSchemaResponse(json.dumps(package_schema(self.version)))

    async def check_config(self, request: api.CheckRequest) -> api.CheckResponse:
        config = plain_map(request.new_inputs)
        name = endpoint_name(request.urn)
        endpoint = Endpoint()
        endpoint.configure(name, {k: v for k, v in config.items() if not has_unknown(v)})  # registers secrets
        unknown = {key for key, value in config.items() if has_unknown(value)}
        problems = [] if "kind" in unknown else check_settings(
            name, {k: v for k, v in config.items() if k not in unknown})
        secret = endpoint.secret_names()
        inputs = {key: to_property(value, key in secret) for key, value in request.new_inputs.items()}
        return api.CheckResponse(inputs=inputs, failures=[api.CheckFailure(field, reason)
                                                          for field, reason in problems if field not in unknown])

    async def diff_config(self, request: api.DiffRequest) -> api.DiffResponse:
        """DIFF_UNKNOWN and no replacement: the engine compares the settings itself, and a changed setting
        reconfigures the endpoint; it never replaces the resources on it."""
        return api.DiffResponse()

    async def configure(self, request: api.ConfigureRequest) -> api.ConfigureResponse:
        config = plain_map(request.args) if request.args else variables_config(request.variables)
        self.endpoint.configure(endpoint_name(self.provider_urn, self.provider_name), config)
        self.configured = True
        return api.ConfigureResponse(accept_secrets=True, supports_preview=True, accept_resources=False,
                                     accept_outputs=False)

    # -- resources ----------------------------------------------------------------------------------------

    async def check(self, request: api.CheckRequest) -> api.CheckResponse:
        kind = resource_kind(request.type)
        inputs = plain_map(request.new_inputs)
        problems = checking.failures(kind, request.name, inputs)
        known = not any(has_unknown(v) for v in inputs.values())
        if not problems and kind == "Network" and known:
            self.networks[request.name] = build_spec(kind, request.name, inputs)
        if not problems and kind == "VirtualMachine" and known and not request.old_inputs and self.configured:
            problems = await self._placement_failures(request.name, inputs)
        return api.CheckResponse(inputs=request.new_inputs,
                                 failures=[api.CheckFailure(field, reason) for field, reason in problems])

    async def diff(self, request: api.DiffRequest) -> api.DiffResponse:
        kind, name = resource_kind(request.type), request.name
        known, unknown = checking.known_inputs(plain_map(request.new_inputs))
        old = plain_map(request.old_state)
        driver = await self._driver(kind)
        spec = self._resolved(kind, name, known, old, driver, unknown)
        ignore = registered_kind(kind).create_only | {diffing.top_field(p) for p in request.ignore_changes}
        planned = classify(kind, name, driver, diff(spec.model_dump(), old, frozenset(ignore | unknown)))
        desired = spec.model_dump()
        result = diffing.pulumi_diff(kind, name, self.endpoint.name, planned, desired, old, unknown - ignore)
        for sentence in result.data_loss:
            await self.log.warning(f"destroys data: {sentence}", request.urn)
        return api.DiffResponse(changes=bool(result.detailed), replaces=result.replaces, diffs=result.diffs,
                                detailed_diff=result.detailed, delete_before_replace=bool(result.replaces))

    async def create(self, request: api.CreateRequest) -> api.CreateResponse:
        kind, name = resource_kind(request.type), request.name
        known, unknown = checking.known_inputs(plain_map(request.properties))
        secret = secret_keys(request.properties)
        driver = await self._driver(kind)
        if request.preview:
            if not unknown:
                await self._check_references(driver, name, build_spec(kind, name, known), new=True)
            return api.CreateResponse("", self._preview_outputs(kind, name, known, unknown, secret))
        spec = self._resolved(kind, name, known, None, driver)
        await self._check_references(driver, name, spec, new=True)
        creation = await self._placed_creation_spec(name, spec, driver)
        owner = owner_of(stack_identity(request.urn), name, self.endpoint.name, spec)
        created = await asyncio.to_thread(driver.create, owner, creation)
        if not isinstance(created, Created) or not created.id:
            raise VirtplaneError(f"{kind} '{name}': the {self.endpoint.kind} driver created it but returned no "
                                 "stable id (it does not implement the Created contract yet)")
        if isinstance(spec, NetworkSpec):
            self.networks[name] = spec
        self.reads.forget(kind, created.id)
        outputs = {**creation.model_dump(), **created.outputs}
        return api.CreateResponse(created.id, to_property_map(outputs, secret))

    async def read(self, request: api.ReadRequest) -> api.ReadResponse:
        kind, name = resource_kind(request.type), request.name
        importing = not request.inputs
        driver = await self._driver(kind)
        live = await self.reads.lookup(driver, stack_identity(request.urn), request.resource_id,
                                       lambda: self._declared(driver, stack_identity(request.urn)),
                                       through_owned_pass=not importing)
        if live is None:
            return api.ReadResponse(resource_id="")  # gone: a refresh drops it
        secret = secret_keys(request.inputs) | secret_keys(request.properties)
        previous = plain_map(request.properties)
        outputs = {**{k: previous[k] for k in registered_kind(kind).create_only if k in previous}, **live.state}
        inputs = request.inputs
        if importing:
            described, unmanaged = _importable(kind, name, _inputs_from_state(kind, live.state))
            for field, reason in unmanaged:
                await self.log.warning(f"{kind} '{name}': imported without '{field}', which stays unmanaged: "
                                       f"{reason}", request.urn)
            inputs = to_property_map(described, secret)
        if kind == "Network" and importing:
            self.networks[name] = build_spec(kind, name, _inputs_from_state(kind, live.state))
        return api.ReadResponse(live.id or request.resource_id, to_property_map(outputs, secret), inputs)

    async def update(self, request: api.UpdateRequest) -> api.UpdateResponse:
        kind, name = resource_kind(request.type), request.name
        known, _unknown = checking.known_inputs(plain_map(request.news))
        secret = secret_keys(request.news)
        old = plain_map(request.olds)
        if request.preview:
            return api.UpdateResponse({**to_property_map(old, secret), **{
                key: value for key, value in request.news.items() if key not in registered_kind(kind).create_only}})
        driver = await self._driver(kind)
        stack = stack_identity(request.urn)
        live = await self._owned_live(driver, stack, request.resource_id, name, "update")
        spec = self._resolved(kind, name, known, live.state, driver)
        ignore = registered_kind(kind).create_only | {diffing.top_field(p) for p in request.ignore_changes}
        planned = classify(kind, name, driver, diff(spec.model_dump(), live.state, frozenset(ignore)))
        previewed = {change.path for change in diff(spec.model_dump(), old, frozenset(ignore))}
        refuse_unpreviewed_data_loss(kind, name, planned, previewed)
        if planned:
            await self._check_references(driver, name, spec)
        if planned or not live.marker_complete:
            await asyncio.to_thread(driver.update, live, spec, [p.change for p in planned])
        if isinstance(spec, NetworkSpec):
            self.networks[name] = spec
        self.reads.forget(kind, request.resource_id)
        fresh = await self.reads.lookup(driver, stack, request.resource_id,
                                        lambda: self._declared(driver, stack), fresh=True)
        state = fresh.state if fresh is not None else {**old, **spec.model_dump(exclude_none=True)}
        outputs = {**{k: old[k] for k in registered_kind(kind).create_only if k in old}, **state}
        return api.UpdateResponse(to_property_map(outputs, secret))

    async def delete(self, request: api.DeleteRequest) -> None:
        kind, name = resource_kind(request.type), request.name
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
            self.networks.pop(name, None)

    # -- helpers ------------------------------------------------------------------------------------------

    async def _driver(self, kind: str) -> KindDriver:
        return (await self.endpoint.provider()).driver(kind)

    async def _check_references(self, driver: KindDriver, name: str, spec: Spec, *, new: bool = False) -> None:
        """What the endpoint cannot satisfy (an unknown node, network or storage; for a new object, a name
        the hypervisor does not take, where the provider has such a rule), as the plan checks it."""
        problems: list[tuple[str, str]] = []
        name_problem = getattr(await self.endpoint.provider(), "name_problem", None)
        if new and callable(name_problem) and (problem := name_problem(driver.kind, name)):
            problems.append(("name", problem))
        declared: Declared = {"Network": dict(self.networks), driver.kind: {name: spec}}
        problems += await asyncio.to_thread(driver.check, spec, declared)
        if problems:
            raise SpecError(driver.kind, name, problems)

    def _resolved(self, kind: str, name: str, inputs: dict[str, Any], live_state: dict[str, Any] | None,
                  driver: KindDriver, unknown: set[str] | frozenset[str] = frozenset()) -> Spec:
        spec = checking.spec_of(kind, name, inputs, set(unknown))
        if isinstance(spec, VirtualMachineSpec):
            return resolve_vm(spec, live_state, driver.new_slot)
        return spec

    async def _endpoint_placer(self) -> Placer:
        if self._placer is None:
            self._placer = Placer(self.endpoint.name, await self.endpoint.provider())
        return self._placer

    async def _placed_creation_spec(self, name: str, spec: Spec, driver: KindDriver) -> Spec:
        """What the driver's create gets, as ``virtplane apply`` makes it: the creation defaults, the host and
        the devices placement chose (counting what this process placed already)."""
        if not isinstance(spec, VirtualMachineSpec):
            return spec
        item = ResourcePlan(driver.kind, name, self.endpoint.name, Action.CREATE, spec=spec)
        async with self._placement:
            placer = await self._endpoint_placer()
            await asyncio.to_thread(placer.place, item, driver)
        return creation_spec(item)

    async def _placement_failures(self, name: str, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        """Check's view of placement, without taking anything: a new VM that needs devices or nested
        virtualization no host of the endpoint can serve (as it stands, after what this process placed) is a
        failure. Anything else that goes wrong here (the endpoint unreachable) is left for Create to report."""
        spec = build_spec("VirtualMachine", name, inputs)
        assert isinstance(spec, VirtualMachineSpec)
        spec = spec.with_creation_defaults()
        if not needs_hardware(spec):
            return []
        try:
            async with self._placement:
                placer = await self._endpoint_placer()
                trial = copy.deepcopy(placer.usage)
                await asyncio.to_thread(lambda: place(name, placer.endpoint, spec, placer.hosts(), trial))
        except PlacementError as error:
            field = re.search(r"field '([^']+)'", str(error))
            return [(field.group(1) if field else "gpus", redact.redact(str(error)))]
        except Exception:  # the endpoint unreachable, a library's fault: Create reports it, as one sentence
            return []
        return []

    def _preview_outputs(self, kind: str, name: str, known: dict[str, Any], unknown: set[str],
                         secret: set[str]) -> dict[str, PropertyValue]:
        spec = checking.spec_of(kind, name, known, unknown)
        if isinstance(spec, VirtualMachineSpec):
            spec = spec.with_creation_defaults()
        outputs = spec.model_dump()
        outputs.update({key: UNKNOWN for key in unknown})
        return {key: to_property(UNKNOWN if value is None else _unknown_inside(value), key in secret)
                for key, value in outputs.items()}

    async def _declared(self, driver: KindDriver, stack: str) -> Declared:
        """What helps a driver read references back: the stack's Networks (seen here, or owned on the
        endpoint), for a VM's NICs."""
        if driver.kind != "VirtualMachine":
            return {}
        networks = dict(self.networks)
        network_driver = await self._driver("Network")
        for live in (await self.reads.owned(network_driver, stack, lambda: _nothing())).values():
            if live.owner is not None and live.owner.resource not in networks:
                try:
                    networks[live.owner.resource] = build_spec("Network", live.owner.resource,
                                                               _inputs_from_state("Network", live.state))
                except SpecError:
                    continue
        return {"Network": networks}

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


async def _nothing() -> Declared:
    return {}


def _unknown_inside(value: Any) -> Any:
    """Unset (None) parts of a value the hypervisor will choose at creation, as unknowns."""
    if isinstance(value, dict):
        return {key: UNKNOWN if item is None else _unknown_inside(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unknown_inside(item) for item in value]
    return value


def _importable(kind: str, name: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The imported inputs Check accepts: a field the spec cannot express as the object has it (a Hyper-V
    adapter connected to no switch has no network) is left out — unset, so not managed — with the reason."""
    inputs = dict(inputs)
    left_out: list[tuple[str, str]] = []
    while True:
        try:
            build_spec(kind, name, inputs)
            return inputs, left_out
        except SpecError as error:
            failing = [(checking.pulumi_path(path), reason) for path, reason in error.problems
                       if re.split(r"[.\[]", checking.pulumi_path(path))[0] in inputs]
            if not failing:
                return inputs, left_out  # not about a field (the name): Check reports it as it is
            for path, reason in failing:
                top = re.split(r"[.\[]", path)[0]
                if inputs.pop(top, None) is not None:
                    left_out.append((top, f"{path} {reason}"))


def _inputs_from_state(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    """The inputs that describe a live object as it is (an import): every field it reports, unset parts
    and create-only fields left out."""
    fields = registered_kind(kind).spec.model_fields
    create_only = registered_kind(kind).create_only
    inputs: dict[str, Any] = {}
    for key, value in state.items():
        if key not in fields or key in create_only or value is None:
            continue
        if isinstance(value, list):
            value = [{k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                     for item in value]
        inputs[key] = value
    return inputs


def refuse_unpreviewed_data_loss(kind: str, name: str, planned: list[PlannedChange], previewed: set[str]) -> None:
    """The preview compared the inputs with the state Pulumi holds; the update compares them with the live
    object. A disk that only the live object has (attached out of band since the last refresh) would be removed
    without anyone having seen it in a preview: refuse, and change nothing."""
    unseen = [c for c in planned if c.destroys_data and c.change.path not in previewed]
    if unseen:
        disks = ", ".join(f"{c.change.path} ({(c.change.old or {}).get('size', '?')} GiB)" for c in unseen)
        raise VirtplaneError(f"{kind} '{name}': the live VM has disks the preview did not show ({disks}); removing "
                             "them would destroy data nobody reviewed. Nothing was changed: run `pulumi refresh`, "
                             "then preview again")
