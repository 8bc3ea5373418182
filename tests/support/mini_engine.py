"""Run a stack program as `pulumi up` would, without the Pulumi CLI: Pulumi's mock monitor registers every resource
(components included, with their parents), and each virtplane resource is checked and created by the plugin over
gRPC (tests/support/plugin.py), as the engine's step executor would for a new stack."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tests.support.plugin import PROJECT, STACK, Plugin, unwrap


class _Forwarding(pulumi.runtime.Mocks):
    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin
        self.created: dict[str, tuple[str, dict[str, Any]]] = {}  # resource name -> (id, outputs)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id" if args.custom else "", dict(args.inputs) if args.custom else {}
        kind = args.typ.rsplit(":", 1)[-1]
        inputs = {key: value for key, value in args.inputs.items() if value is not None}
        failures = self.plugin.check(kind, args.name, inputs)["failures"]
        assert failures == [], failures
        created = self.plugin.create(kind, args.name, inputs)
        self.created[args.name] = (created["id"], unwrap(created["properties"]))
        return created["id"], self.created[args.name][1]

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def up(program: Path, plugin: Plugin) -> tuple[dict[str, tuple[str, dict[str, Any]]], list[str]]:
    """Run ``program``: (each created virtplane resource by name -> (id, outputs), every registered URN)."""
    mocks = _Forwarding(plugin)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    monitor = SETTINGS.monitor
    return mocks.created, sorted(monitor.get_registered_resources())
