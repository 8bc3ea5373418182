"""``virtplane check``: the stack's VMs against the hosts' facts (policies/), reported as text, JSON, SARIF or
JUnit; and the small gate ``plan`` and ``apply`` run when a stack asks for hardware.

Live by default (evaluate the stack, connect, read every endpoint's hosts); with ``--inventory FILE`` (written by
``virtplane inventory --out``) nothing is contacted and no credentials are needed. An inventory file that could make
a check pass by accident is an error, not an empty result: one that is not a ``virtplane.inventory/1`` document,
or has no hosts for an endpoint the stack's VMs use, or whose hosts there are another hypervisor's. Exit 0: no
mandatory finding; 2: mandatory findings; 1: error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from virtplane.declared import DesiredStack
from virtplane.engine import HostFacts, collect_inventory
from virtplane.errors import VirtplaneError
from virtplane.inventory import Inventory
from virtplane.policies import inventory_file as offline
from virtplane.policies import waivers
from virtplane.policies.evaluate import (
    Report,
    check_stack,
    declared_vms,
    needs_host_facts,
    needs_policy,
    vms_need_policy,
)
from virtplane.policies.report import json_report, junit, sarif, text
from virtplane.providers.base import Provider

EXIT_OK, EXIT_ERROR, EXIT_FINDINGS = 0, 1, 2


def run(stack_dir: Path, stack: str | None, inventory_file: Path | None, fmt: str, out_file: Path | None,
        console: Console) -> int:
    from virtplane.evaluate import evaluate, read_project

    desired = evaluate(stack_dir, stack)
    config = waivers.load(stack_dir.resolve(), desired.project, desired.stack)
    if inventory_file is not None:
        inventory = offline.load(inventory_file)
        used = {vm.endpoint: (desired.endpoints[vm.endpoint].kind if vm.endpoint in desired.endpoints else None)
                for vm in declared_vms(desired)}
        offline.require_coverage(inventory, used, inventory_file)
    else:
        from virtplane.engine import connected

        with connected(desired) as providers:
            inventory = collect_inventory(providers)
    report = check_stack(desired, inventory, config)
    base = Path.cwd()
    if fmt == "text" and out_file is None:
        text.render(console, report, base)
    else:
        document = {"json": lambda: json_report.render(report, base),
                    "sarif": lambda: sarif.render(report, base, str(read_project(stack_dir.resolve())[1])),
                    "junit": lambda: junit.render(report, base),
                    "text": lambda: _plain_text(report, base)}[fmt]()
        if out_file is None:
            sys.stdout.write(document)
        else:
            out_file.write_text(document)
            console.print(f"{len(report.blocking)} mandatory, {report.summary()['advisory']} advisory finding(s); "
                          f"{fmt} written to {out_file}")
    return EXIT_FINDINGS if report.blocking else EXIT_OK


def _plain_text(report: Report, base: Path) -> str:
    import io

    buffer = io.StringIO()
    text.render(Console(file=buffer, width=160, no_color=True, highlight=False), report, base)
    return buffer.getvalue()


def policy_gate(desired: DesiredStack, providers: Mapping[str, Provider], stack_dir: Path,
                facts: HostFacts | None = None) -> Report | None:
    """The policy report ``plan``/``apply`` show, or None when no VM asks for devices or nested virtualization and
    the stack has no containers. Host facts are read only when a rule needs them (devices, nested virtualization).
    An endpoint whose provider cannot read host facts yet contributes no hosts: its VMs get an advisory "cannot
    verify", not a refusal."""
    if not needs_policy(desired):
        return None
    config = waivers.load(stack_dir.resolve(), desired.project, desired.stack)
    facts = facts if facts is not None else HostFacts(providers)
    inventory = facts.inventory(tolerant=True) if needs_host_facts(desired) else Inventory()
    return check_stack(desired, inventory, config, include_vms=vms_need_policy(desired))


def show(console: Console, report: Report | None) -> None:
    if report is not None and report.findings:
        text.render(console, report, Path.cwd())


def with_policy(document: str, report: Report | None) -> str:
    """A plan's JSON document with the policy findings under ``policy`` (unchanged without a report)."""
    if report is None:
        return document
    data = json.loads(document)
    data["policy"] = json_report.document(report, Path.cwd())
    return json.dumps(data, indent=2)


def refuse(report: Report | None) -> None:
    """Stop ``apply`` before anything changes when a mandatory finding is not waived."""
    if report is None or not report.blocking:
        return
    first = report.blocking[0]
    more = f" and {len(report.blocking) - 1} more" if len(report.blocking) > 1 else ""
    raise VirtplaneError(f"apply refused by policy: {first.noun} {first.resource}: {first.rule}: {first.message}{more} "
                         "(see `virtplane check`; waive with a reason in virtplane:policy)")
