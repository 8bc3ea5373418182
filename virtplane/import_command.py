"""``virtplane import``: write a stack for existing VMs (virtplane/importer.py, virtplane/stackgen.py), show its plan,
and with ``--adopt`` write the ownership marker on them once that plan shows no change.

Nothing is written to the hypervisor without ``--adopt``; with it, only markers, only on VMs no stack owns, and only
after a plan of the written stack found every VM as it is (0 changes).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from rich.console import Console

from virtplane import output, stackgen
from virtplane.adoption import adoption_refusal
from virtplane.declared import DeclaredEndpoint, DesiredStack
from virtplane.engine import build_plan, connected
from virtplane.errors import VirtplaneError, raise_all
from virtplane.evaluate import evaluate
from virtplane.importer import Selection, read
from virtplane.plan import Plan
from virtplane.providers.base import Owner

STACK = "dev"  # the stack name of a generated stack (it has no Pulumi.<stack>.yaml: evaluate picks dev)


def run(kind: str, endpoint: str | None, selection: Selection, out: Path, adopt: bool, out_console: Console,
        err_console: Console) -> int:
    endpoint_name = endpoint or kind
    identity = f"{stackgen.project_name(out)}/{STACK}"
    desired = DesiredStack(*identity.split("/"), endpoints={endpoint_name: DeclaredEndpoint(endpoint_name, kind, {})})
    with connected(desired, os.environ) as providers:
        provider = providers[endpoint_name]
        imported = read(provider, kind, endpoint_name, identity, selection)
        if imported.missing_ids:
            raise VirtplaneError(f"no VM with id {', '.join(imported.missing_ids)} exists on the {kind} endpoint; "
                                 "nothing was written")
        if not imported.vms:
            raise VirtplaneError(f"no VM on the {kind} endpoint matches {_described(selection)}; nothing was written")
        stackgen.write(imported, out, _command(kind, endpoint, selection, out, adopt))
        for vm in imported.vms:
            if vm.not_expressed:
                err_console.print(f"VM '{vm.name}': {'; '.join(vm.not_expressed)} cannot be expressed in a stack; "
                                  f"listed in a comment above it in {out / '__main__.py'} and left as it is.",
                                  markup=False, highlight=False)
        out_console.print(f"Wrote {out / 'Pulumi.yaml'} and {out / '__main__.py'}: "
                          f"{stackgen.plural(len(imported.vms), 'VM')}, "
                          f"{stackgen.plural(len(imported.networks), 'network')}.", markup=False)
        plan = _plan(out, provider, endpoint_name)
        output.render_plan(out_console, plan, title="Plan of the imported stack")
        if adopt:
            _adopt(plan, provider, identity, endpoint_name, out_console)
            output.render_plan(out_console, _plan(out, provider, endpoint_name), title="Plan after adopting")
    return 0


def _plan(out: Path, provider: object, endpoint: str) -> Plan:
    desired = evaluate(out, STACK)
    return build_plan(desired, {endpoint: provider})  # type: ignore[dict-item]


def _adopt(plan: Plan, provider: object, identity: str, endpoint: str, console: Console) -> None:
    """Write the marker on every VM the plan found as it is and no stack owns: refused, with nothing written, when the
    plan would change anything or a VM belongs to another stack."""
    changing = [f"{item.kind} {item.name} ({', '.join(c.change.path for c in item.changes) or item.action.value})"
                for item in plan.pending]
    if changing:
        raise VirtplaneError("nothing was adopted: the plan of the imported stack is not clean: "
                             + "; ".join(changing) + ". Fix the stack (or the VMs) until `virtplane plan` shows no "
                             "change, then adopt again")
    refusals = [refusal for item in plan.resources if item.unowned and item.observed is not None
                and (refusal := adoption_refusal(item.kind, item.name, item.observed, endpoint)) is not None]
    raise_all(list(refusals))
    adopted = 0
    for item in plan.resources:
        if item.unowned and item.observed is not None:
            provider.driver(item.kind).adopt(item.observed, Owner(identity, item.name, endpoint))  # type: ignore[attr-defined]
            adopted += 1
    console.print(f"Adopted {stackgen.plural(adopted, 'VM')}: they carry the ownership marker of stack {identity} "
                  "now.", markup=False)


def _described(selection: Selection) -> str:
    parts = [f"--select {glob}" for glob in selection.globs] + [f"--tag {tag}" for tag in selection.tags]
    return " or ".join(parts) or "the selection"


def _command(kind: str, endpoint: str | None, selection: Selection, out: Path, adopt: bool) -> str:
    words = ["virtplane", "import", "--endpoint-kind", kind]
    words += ["--endpoint", endpoint] if endpoint else []
    for option, values in (("--select", selection.globs), ("--tag", selection.tags), ("--id", selection.ids)):
        for value in values:
            words += [option, value]
    words += ["--out", str(out)] + (["--adopt"] if adopt else [])
    return " ".join(shlex.quote(word) for word in words)
