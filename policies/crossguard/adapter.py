"""Turn what the Pulumi engine sends a policy pack into the policy layer's input, and its findings into
violations: one source of rules (policies/rules), two front ends (``virtplane check`` and this pack).

Every rule is a ``StackValidationPolicy`` named by its id (run on ``AnalyzeStack``, which sees the whole stack, so
capacity is counted across it) at the rule's level; a mandatory rule's advisory findings (facts the host does not
report, downgrades) go to a companion advisory policy ``<id>.advisory`` so they never block. One
``ResourceValidationPolicy``, ``virtplane-spec``, checks each VM's and container's inputs on ``Analyze``. Containers
get the container rules (``ct.*``), as in ``virtplane check``. Host facts come from the
file named by the policy config value ``inventory`` (``virtplane inventory --out FILE``) of any of the pack's stack
policies (set it on ``hw.placement``, which runs first; the others share it), or the environment variable
``VIRTPLANE_INVENTORY``; relative paths are taken from the pack's directory, where the CLI runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from virtplane.container_specs import ContainerSpec
from virtplane.errors import SpecError, VirtplaneError
from virtplane.inventory import Inventory
from virtplane.kinds import build_spec
from virtplane.policies import inventory_file
from virtplane.policies.containers import ContainerUnderCheck, under_check
from virtplane.policies.evaluate import DeclaredVm, Report, check_vms
from virtplane.policies.model import ADVISORY, MANDATORY
from virtplane.policies.rules import EVERY
from virtplane.wire_names import from_wire_map

VM_TYPE = "virtplane:index:VirtualMachine"
CONTAINER_TYPE = "virtplane:index:Container"
_KIND_OF_TYPE = {VM_TYPE: "VirtualMachine", CONTAINER_TYPE: "Container"}
CONFIG_SCHEMA = PolicyConfigSchema(properties={"inventory": {"type": "string"}})
_LEVELS = {MANDATORY: EnforcementLevel.MANDATORY, ADVISORY: EnforcementLevel.ADVISORY}


def plain(value: Any) -> Any:
    """Wire numbers are doubles: whole floats back to ints, recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def spec_inputs(kind_name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's properties as build_spec takes them: Python's names (the wire's are camelCase), only the spec's
    fields (outputs add ``networks``), and digests (a VM's cloud-init output) left out: outputs hold only those."""
    from virtplane.kinds import kind

    values = from_wire_map(plain(dict(props)))
    registered = kind(kind_name)
    return {key: value for key, value in values.items() if key in registered.spec.model_fields
            and not (key in registered.digest_only and not isinstance(value, Mapping))}


def endpoint_of(provider: Any) -> tuple[str, str | None]:
    """(endpoint name, hypervisor kind) of a resource's provider (a ``virtplane.Endpoint``)."""
    if provider is None:
        return "default", None
    return provider.name, (provider.props or {}).get("kind")


def vms_from(resources: Sequence[Any]) -> tuple[list[DeclaredVm], dict[str, str], dict[str, str]]:
    """(VMs, endpoint -> hypervisor, name -> URN) of the stack's VirtualMachine resources with valid inputs (the URNs
    of its containers too)."""
    vms, kinds, urns = [], {}, {}
    for resource in resources:
        kind_name = _KIND_OF_TYPE.get(resource.resource_type)
        if kind_name is None:
            continue
        endpoint, kind = endpoint_of(resource.provider)
        try:
            spec = build_spec(kind_name, resource.name, spec_inputs(kind_name, resource.props))
        except SpecError:
            continue  # reported by virtplane-spec
        urns[resource.name] = resource.urn
        if kind:
            kinds[endpoint] = kind
        if kind_name == "VirtualMachine":
            vms.append(DeclaredVm(resource.name, endpoint, spec))  # type: ignore[arg-type]
    return vms, kinds, urns


def containers_from(resources: Sequence[Any], inventory: Inventory, kinds: Mapping[str, str]
                    ) -> list[ContainerUnderCheck]:
    """The stack's Container resources with valid inputs, each with the host it names."""
    found = []
    for resource in resources:
        if resource.resource_type != CONTAINER_TYPE:
            continue
        endpoint, _ = endpoint_of(resource.provider)
        try:
            spec = build_spec("Container", resource.name, spec_inputs("Container", resource.props))
        except SpecError:
            continue
        assert isinstance(spec, ContainerSpec)
        found.append(under_check(resource.name, endpoint, spec, inventory, kinds.get(endpoint)))
    return found


def inventory_path(config: Mapping[str, Any]) -> Path | None:
    value = config.get("inventory") or os.environ.get("VIRTPLANE_INVENTORY")
    return Path(value) if value else None


class _Evaluations:
    """One evaluation per AnalyzeStack call, shared by every rule's policy."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._value: tuple[Report, dict[str, str]] | None = None
        self._path: Path | None = None

    def get(self, args: StackValidationArgs) -> tuple[Report, dict[str, str]]:
        path = inventory_path(args.get_config()) or self._path
        self._path = path
        if path is None:
            raise VirtplaneError("no host inventory: set the policy config value 'inventory' (a file written by "
                                 "`virtplane inventory --out`) or VIRTPLANE_INVENTORY")
        key = (str(path), tuple(r.urn for r in args.resources), tuple(repr(r.props) for r in args.resources))
        if key != self._key or self._value is None:
            vms, kinds, urns = vms_from(args.resources)
            stack = f"{os.environ.get('PULUMI_PROJECT', 'pulumi')}/{os.environ.get('PULUMI_STACK', 'stack')}"
            inventory = inventory_file.load(path)
            inventory_file.require_coverage(inventory, {vm.endpoint: kinds.get(vm.endpoint) for vm in vms}, path)
            containers = containers_from(args.resources, inventory, kinds)
            self._value = (check_vms(stack, vms, inventory, kinds, containers=containers), urns)
            self._key = key
        return self._value


def _validator(rule_id: str, level: str, evaluations: _Evaluations) -> Callable[..., None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            report, urns = evaluations.get(args)
        except VirtplaneError as exc:
            if rule_id == "hw.placement" and level == MANDATORY:
                report_violation(str(exc), None)
            return
        for finding in report.findings:
            if finding.rule == rule_id and finding.level == level:
                where = f" (host {finding.host})" if finding.host else ""
                field = f" field '{finding.field}':" if finding.field else ""
                fix = f" Fix: {finding.remediation}." if finding.remediation and level == MANDATORY else ""
                report_violation(f"{finding.noun} {finding.resource}{where}:{field} {finding.message}.{fix}",
                                 urns.get(finding.resource))

    return validate


def _validate_spec(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    kind_name = _KIND_OF_TYPE.get(args.resource_type)
    if kind_name is None:
        return
    try:
        build_spec(kind_name, args.name, spec_inputs(kind_name, args.props))
    except SpecError as exc:
        report_violation(str(exc), None)


def policies() -> list[Any]:
    evaluations = _Evaluations()
    made: list[Any] = [ResourceValidationPolicy(
        name="virtplane-spec", description="A VirtualMachine's or Container's inputs are valid (fields, sizes, device "
                                           "requests).",
        validate=_validate_spec, enforcement_level=EnforcementLevel.MANDATORY)]
    for module in EVERY:
        rule = module.RULE
        made.append(StackValidationPolicy(
            name=rule.id, description=f"{rule.title}. {rule.help}", validate=_validator(rule.id, rule.level,
                                                                                         evaluations),
            enforcement_level=_LEVELS[rule.level], config_schema=CONFIG_SCHEMA, url=rule.help_uri))
        if rule.level == MANDATORY:
            made.append(StackValidationPolicy(
                name=f"{rule.id}.advisory", description=f"{rule.title}: facts that cannot be verified, downgrades.",
                validate=_validator(rule.id, ADVISORY, evaluations), enforcement_level=EnforcementLevel.ADVISORY,
                config_schema=CONFIG_SCHEMA, url=rule.help_uri))
    return made
