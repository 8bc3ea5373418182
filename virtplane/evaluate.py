"""Run a stack program without the Pulumi engine and collect what it declares.

Pulumi's mock runtime stands in for the engine so ``pulumi.Config`` and ``pulumi.export`` work;
virtplane's own resources are recorded by the collector instead of being registered.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import pulumi
import yaml

from virtplane import declared
from virtplane.errors import SpecError, VirtplaneError

NO_SECRETS_HINT = (
    "virtplane's own CLI cannot decrypt Pulumi secrets; give credentials through the endpoint's "
    "environment variables (e.g. VSPHERE_PASSWORD) instead"
)


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
    try:
        runpy.run_path(str(main), run_name="__main__")
    except SpecError:
        raise
    except VirtplaneError:
        raise
    except pulumi.ConfigMissingError as exc:
        hint = f"; {NO_SECRETS_HINT}" if exc.key in secret_keys else ""
        raise VirtplaneError(f"stack program needs config '{exc.key}', which is not set{hint}") from None
    except Exception as exc:
        raise VirtplaneError(_describe_failure(main, exc)) from None
    finally:
        declared.set_collector(None)
        sys.path[:] = saved_path
    return _assemble(project, stack_name, collector)


def _describe_failure(main: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == main]
    where = f"{main.name} line {frames[-1].lineno}" if frames else main.name
    return f"stack program failed at {where}: {type(exc).__name__}: {exc}"


def _assemble(project: str, stack: str, collector: declared.Collector) -> declared.DesiredStack:
    desired = declared.DesiredStack(project=project, stack=stack, endpoints=collector.endpoints)
    only_endpoint = next(iter(collector.endpoints)) if len(collector.endpoints) == 1 else None
    for kind, name, spec, endpoint, deps, site in collector.resources:
        endpoint_name = getattr(endpoint, "resource_name", None) or only_endpoint
        if endpoint is not None and getattr(endpoint, "resource_name", None) not in collector.endpoints:
            raise SpecError(kind, name, [("opts.provider", "must be a virtplane.Endpoint")])
        if endpoint_name is None:
            raise SpecError(kind, name, [("opts.provider", "no endpoint: pass "
                                          "opts=pulumi.ResourceOptions(provider=<virtplane.Endpoint>)")])
        resource = declared.DeclaredResource(kind, name, spec, endpoint_name, deps, *(site or (None, None)))
        if resource.key in desired.resources:
            raise SpecError(kind, name, [("name", "is declared twice")])
        desired.resources[resource.key] = resource
    for resource in desired.resources.values():
        resource.depends_on = {d for d in resource.depends_on if d in desired.resources}
    return desired
