"""Run a stack program without the Pulumi engine and collect what it declares.

Pulumi's mock runtime stands in for the engine so ``pulumi.Config`` and ``pulumi.export`` work;
virtplane's own resources are recorded by the collector instead of being registered.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import yaml

from virtplane import declared
from virtplane.errors import SpecError, VirtplaneError, raise_all

NO_SECRETS_HINT = (
    "virtplane's own CLI cannot decrypt Pulumi secrets; give credentials through the endpoint's "
    "environment variables (e.g. VSPHERE_PASSWORD) instead"
)


DEFAULT_ENDPOINT = "default"  # the name of Pulumi's default provider, as the plugin takes it (plugin/endpoint.py)
PACKAGE = "virtplane"


class _Mocks(pulumi.runtime.Mocks):
    """Other packages' resources get their inputs echoed back as outputs; calls return nothing."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def read_project(stack_dir: Path) -> tuple[str, Path]:
    """The project name and main program file from ``Pulumi.yaml``."""
    project_file = stack_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise VirtplaneError(f"{stack_dir} is not a stack directory: it has no Pulumi.yaml")
    project = yaml.safe_load(project_file.read_text()) or {}
    name = project.get("name")
    if not name:
        raise VirtplaneError(f"{project_file} has no 'name'")
    main = stack_dir / str(project.get("main", "."))
    if main.is_dir():
        main = main / "__main__.py"
    if not main.is_file():
        raise VirtplaneError(f"stack program {main} does not exist")
    return str(name), main


def pick_stack(stack_dir: Path, stack: str | None) -> str:
    """``--stack`` when given; else the only ``Pulumi.<name>.yaml``; with none, ``dev``; with several, an
    error listing them (picking one silently would plan against the wrong configuration)."""
    if stack:
        return stack
    names = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stack_dir.glob("Pulumi.*.yaml"))
    if len(names) > 1:
        raise VirtplaneError(f"{stack_dir} has several stack configurations ({', '.join(names)}); "
                             "choose one with --stack NAME")
    return names[0] if names else "dev"


def read_config(stack_dir: Path, project: str, stack: str) -> tuple[dict[str, str], set[str]]:
    """Plain config values from ``Pulumi.<stack>.yaml``, keyed ``namespace:key``; secure keys left out."""
    config_file = stack_dir / f"Pulumi.{stack}.yaml"
    if not config_file.is_file():
        return {}, set()
    content = yaml.safe_load(config_file.read_text()) or {}
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in (content.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and "secure" in value:
            secret_keys.add(full)
            continue
        values[full] = _config_text(value)
    return values, secret_keys


def _config_text(value: object) -> str:
    """Config values as Pulumi hands them to programs: strings as-is, structured values as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def evaluate(stack_dir: Path, stack: str | None = None) -> declared.DesiredStack:
    """Run the program in ``stack_dir`` and return the desired stack it declares."""
    stack_dir = stack_dir.resolve()
    project, main = read_project(stack_dir)
    stack_name = pick_stack(stack_dir, stack)
    config, secret_keys = read_config(stack_dir, project, stack_name)

    pulumi.runtime.set_mocks(_Mocks(), project=project, stack=stack_name, preview=False)
    pulumi.runtime.set_all_config(config)
    collector = declared.Collector()
    collector.root = str(stack_dir)
    declared.set_collector(collector)
    saved_path = list(sys.path)
    sys.path.insert(0, str(stack_dir))
    failure: VirtplaneError | None = None
    try:
        runpy.run_path(str(main), run_name="__main__")
    except VirtplaneError as exc:
        failure = exc
    except pulumi.ConfigMissingError as exc:
        hint = f"; {NO_SECRETS_HINT}" if exc.key in secret_keys else ""
        failure = VirtplaneError(f"stack program needs config '{exc.key}', which is not set{hint}")
    except Exception as exc:
        failure = VirtplaneError(_describe_failure(main, exc))
    finally:
        declared.set_collector(None)
        sys.path[:] = saved_path
    if failure is not None:  # what the program declared before it stopped is judged too
        raise_all([*collector.errors(), failure])
    desired = _assemble(project, stack_name, collector, lambda: _default_endpoint(config, secret_keys))
    raise_all(collector.errors())
    return desired


def _default_endpoint(config: dict[str, str], secret_keys: set[str]) -> tuple[declared.DeclaredEndpoint,
                                                                               list[tuple[str, str]]]:
    """The endpoint of resources declared without ``opts.provider``, configured as Pulumi's default provider is:
    by the ``virtplane:*`` keys of the stack configuration (``virtplane:kind``, ``virtplane:server``, ...), each
    setting falling back to its environment variable; and the problems with those keys. Secret keys are left
    to the environment (the CLI cannot decrypt them); ``virtplane:policy`` belongs to the policy layer, and
    ``virtplane:allowDataLoss`` to ``pulumi up`` (the CLI asks for ``--allow-data-loss`` on each run)."""
    from virtplane.endpoint_settings import PLUGIN_ONLY, endpoint_settings
    from virtplane.policies.waivers import CONFIG_KEY as POLICY_KEY
    from virtplane.providers.registry import KINDS, provider_class
    from virtplane.wire_names import from_wire

    prefix = f"{PACKAGE}:"
    inputs = {from_wire(key[len(prefix):]): _setting(value) for key, value in config.items()
              if key.startswith(prefix) and key not in secret_keys and key != POLICY_KEY
              and key[len(prefix):] not in PLUGIN_ONLY}  # virtplane:caFile as Pulumi writes it, or virtplane:ca_file
    kind = str(inputs.pop("kind", None) or next(iter(KINDS)))  # the plugin's default kind too
    endpoint = declared.DeclaredEndpoint(DEFAULT_ENDPOINT, kind, {})
    try:
        known = [setting.name for setting in endpoint_settings(provider_class(kind, DEFAULT_ENDPOINT))]
    except SpecError as error:
        return endpoint, [(f"{prefix}kind", message) for _, message in error.problems]
    endpoint.inputs = {key: value for key, value in inputs.items() if key in known}
    return endpoint, [(f"{prefix}{key}", f"is not a setting of a {kind} endpoint; known: {', '.join(known)}")
                      for key in inputs if key not in known]


def _setting(text: str) -> object:
    """A config value as the settings take it: structured values (JSON) decoded, text as it is."""
    try:
        return json.loads(text) if text[:1] in "{[" else text
    except ValueError:
        return text


def _describe_failure(main: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == main]
    where = f"{main.name} line {frames[-1].lineno}" if frames else main.name
    return f"stack program failed at {where}: {type(exc).__name__}: {exc}"


def _assemble(project: str, stack: str, collector: declared.Collector,
              default_endpoint: Callable[[], tuple[declared.DeclaredEndpoint, list[tuple[str, str]]]]
              ) -> declared.DesiredStack:
    """The desired stack from what the program declared; every problem found is noted on ``collector``: a resource
    given something that is not an Endpoint, a name declared twice, a name the endpoint's hypervisor refuses.
    ``default_endpoint`` is asked only when a resource names no Endpoint (it imports that endpoint's driver)."""
    from virtplane.providers.registry import provider_class

    desired = declared.DesiredStack(project=project, stack=stack, endpoints=dict(collector.endpoints))
    for kind, name, spec, endpoint, deps, site in collector.resources:
        endpoint_name = getattr(endpoint, "resource_name", None)
        if endpoint is not None and endpoint_name not in collector.endpoints:
            collector.refuse(SpecError(kind, name, [("opts.provider", "must be a virtplane.Endpoint")]))
            continue
        if endpoint is None:  # as under `pulumi up`: the default provider, configured by `virtplane:*` config
            if DEFAULT_ENDPOINT in collector.endpoints:
                collector.refuse(SpecError(kind, name, [("opts.provider", (
                    f"is not given, so the resource goes to the default endpoint, whose name '{DEFAULT_ENDPOINT}' an "
                    "Endpoint of this stack already has; rename that Endpoint or pass "
                    "opts=pulumi.ResourceOptions(provider=...)"))]))
                continue
            if DEFAULT_ENDPOINT not in desired.endpoints:
                default, default_problems = default_endpoint()
                desired.endpoints[DEFAULT_ENDPOINT] = default
                if default_problems:
                    collector.refuse(SpecError("Endpoint", DEFAULT_ENDPOINT, default_problems))
            endpoint_name = DEFAULT_ENDPOINT
        assert endpoint_name is not None
        resource = declared.DeclaredResource(kind, name, spec, endpoint_name, deps, *(site or (None, None)),
                                             pool=collector.pool_of.get(name) if kind == "VirtualMachine" else None,
                                             import_id=collector.imports.get((kind, name)))
        if resource.key in desired.resources:
            collector.refuse(SpecError(kind, name, [("name", "is declared twice")]))
            continue
        try:
            problem = provider_class(desired.endpoints[endpoint_name].kind, endpoint_name).name_problem(kind, name)
        except SpecError as error:  # the endpoint's kind is unknown
            collector.refuse(error)
            continue
        if problem:
            collector.refuse(SpecError(kind, name, [("name", problem)]))
            continue
        desired.resources[resource.key] = resource
    for resource in desired.resources.values():
        resource.depends_on = {d for d in resource.depends_on if d in desired.resources}
    _assemble_pools(desired, collector)
    return desired


def _assemble_pools(desired: declared.DesiredStack, collector: declared.Collector) -> None:
    """Each pool with its endpoint (its desktops') and its desktops by number."""
    from virtplane.pools.spec import DeclaredPool

    for name, (spec, endpoint) in collector.pools.items():
        members = [r for r in desired.resources.values() if r.pool == name]
        pool = DeclaredPool(name, spec, getattr(endpoint, "resource_name", None) or DEFAULT_ENDPOINT)
        pool.members = {number: r.name for r in members if (number := pool.number_of(r.name)) is not None}
        desired.pools[name] = pool
