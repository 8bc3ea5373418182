"""Render plans, drift reports and apply results for people (rich text) and machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from virtplane.apply import ApplyResult, Outcome
from virtplane.cloudinit import short
from virtplane.plan import Action, Plan, ResourcePlan
from virtplane.redact import redact

SCHEMA_VERSION = 1
_SYMBOL = {Action.CREATE: ("+", "green"), Action.UPDATE: ("~", "yellow"), Action.REPLACE: ("±", "magenta"),
           Action.DELETE: ("-", "red"), Action.NOOP: (" ", "dim")}


def _value(value: Any) -> str:
    if isinstance(value, SecretStr) or (isinstance(value, list) and value and isinstance(value[0], SecretStr)):
        return "(secret)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, bool):
        return str(value).lower()
    return "(none)" if value is None else str(value)


def _summary_of_create(item: ResourcePlan) -> str:
    if item.spec is None:
        return ""
    state = item.spec.model_dump()
    if state.get("cloud_init"):
        state["cloud_init"] = short(state["cloud_init"])
    listed = [k for k, v in state.items() if isinstance(v, list) and v and isinstance(v[0], dict)]  # disks, mounts
    parts = [f"{k}={_value(v)}" for k, v in state.items() if v not in (None, [], False) and k not in listed]
    for key in listed:
        parts.append(f"{key}=[" + ", ".join(_value(v) for v in state[key]) + "]")
    return " ".join(parts)


def render_plan(console: Console, plan: Plan, *, title: str, show_unchanged: bool = False) -> None:
    console.print(f"[bold]{escape(title)}[/] for stack [bold]{escape(plan.stack)}[/]")
    for item in plan.resources:
        if item.action is Action.NOOP and not show_unchanged and not item.deferred and not item.unowned:
            continue
        symbol, colour = _SYMBOL[item.action]
        label = "unchanged" if item.action is Action.NOOP else item.action.value
        if item.unowned:
            symbol, colour, label = "=", "cyan", "not owned" if item.action is Action.NOOP else "refused"
        extra = " [dim](powers off to apply)[/]" if item.needs_power_off else ""
        if item.needs_power_off and item.shutdown_seconds:
            extra = (f" [dim](powers off to apply: a clean shutdown, then a hard power-off after "
                     f"{item.shutdown_seconds:g} s)[/]")
        note = f" [dim]({escape(item.note)})[/]" if item.note else ""
        where = f" [dim]→ host {escape(item.placement)}[/]" if item.placement else ""
        loss = " [bold red]\\[destroys data][/]" if item.action in (Action.REPLACE, Action.DELETE) \
            and item.destroys_data else ""
        later = f" [yellow]({escape(item.deferred)})[/]" if item.deferred else ""
        what = f"pool {escape(item.pool)}:" if item.pool is not None else item.kind
        console.print(f"  [{colour}]{symbol} {label:<9}[/] {what} [bold]{escape(item.name)}[/]"
                      f" [dim]on {escape(item.endpoint)}[/]{where}{extra}{note}{loss}{later}")
        if item.action is Action.CREATE:
            console.print(f"      [dim]{escape(redact(_summary_of_create(item)))}[/]")
        for planned in item.changes:
            change = planned.change
            lost = " [bold red]\\[destroys data][/]" if planned.destroys_data else ""
            how = f"[dim]\\[{planned.rule.value}][/]" if planned.refused is None else \
                f"[bold red]\\[cannot apply: {escape(planned.refused)}][/]"
            if planned.reinitializes_guest:
                shown = f"{escape(_value(short(change.new)))} (changed)" if change.old is not None else \
                    f"{escape(_value(short(change.new)))} (new)"
                console.print(f"      {escape(change.path)}: {shown} [dim]\\[{planned.rule.value}][/] "
                              "[bold yellow]\\[guest re-init][/]")
                continue
            console.print(f"      {escape(change.path)}: {escape(_value(change.old))} → "
                          f"{escape(_value(change.new))} {how}{lost}")
        if item.volumes is not None and item.action in (Action.DELETE, Action.REPLACE):
            for volume in item.volumes.destroyed:
                console.print(f"      [red]destroys[/] {escape(volume)}")
            for volume in item.volumes.kept:
                console.print(f"      [green]keeps[/] {escape(volume)} [dim](detached first)[/]")
        for field, value in item.kept.items():
            shown = "[" + ", ".join(_value(v) for v in value) + "]" if isinstance(value, list) else _value(value)
            console.print(f"      [dim]{escape(field)}: {escape(redact(shown))} (kept)[/]")
    counts = plan.counts()
    unowned = f" ({counts['not_owned']} not owned by this stack)" if counts["not_owned"] else ""
    console.print(f"{counts['create']} to create, {counts['update']} to update, {counts['replace']} to "
                  f"replace, {counts['delete']} to delete, {counts['noop']} unchanged{unowned}.")
    from virtplane.pools.planning import deferred_lines

    for line in deferred_lines(plan):
        console.print(f"[yellow]{escape(line)}[/]")


def render_cloud_init(console: Console, plan: Plan) -> None:
    """One line per VM the stack gives cloud-init: the digest of its documents and whether the VM holds them (the
    documents are never shown: they may hold secrets)."""
    for item in plan.resources:
        digest = getattr(item.spec, "cloud_init", None)
        if digest is None:
            continue
        changed = any(planned.reinitializes_guest for planned in item.changes) or item.action is Action.CREATE
        state = "to deliver" if changed else "delivered"
        console.print(f"  cloud-init {item.kind} [bold]{escape(item.name)}[/] [dim]on {escape(item.endpoint)}[/]: "
                      f"{short(digest.digest)} [dim]({state})[/]")


def render_result(console: Console, result: ApplyResult, command: str = "apply") -> None:
    ok = sum(1 for o in result.outcomes if o.ok)
    for outcome in result.failed:
        console.print(f"  [red]✗[/] {escape(outcome.error)}")
    what = command.capitalize()
    status = f"[green]{what} complete[/]" if not result.failed else f"[red]{what} failed[/]"
    console.print(f"{status}: {ok} succeeded, {len(result.failed)} failed.")


def describe_outcome(outcome: Outcome) -> str:
    item = outcome.resource
    if outcome.ok:
        past = {Action.CREATE: "created", Action.UPDATE: "updated", Action.REPLACE: "replaced",
                Action.DELETE: "deleted"}[item.action]
        return f"[green]✓[/] {past} {item.kind} {escape(item.name)} [dim]({outcome.seconds:.1f}s)[/]"
    return f"[red]✗[/] {escape(outcome.error)}"


def emit_json(command: str, plan: Plan, result: ApplyResult | None = None, **extra: Any) -> str:
    document: dict[str, Any] = {"schema": SCHEMA_VERSION, "command": command, **plan.to_json(), **extra}
    if result is not None:
        document["result"] = result.to_json()
    return redact(json.dumps(document, indent=2, sort_keys=False, default=str))


def error_json(command: str, error: BaseException) -> str:
    """The JSON document of a command that failed (exit 1): ``error`` is the whole message; ``errors`` has one
    entry per problem, with the resource (``Kind/name``) and field where there is one."""
    from virtplane.errors import SpecError, StackInvalid

    errors: list[dict[str, Any]] = []
    for item in error.errors if isinstance(error, StackInvalid) else [error]:
        if isinstance(item, SpecError):
            errors += [{"resource": f"{item.kind}/{item.name}", "field": field, "message": message}
                       for field, message in item.problems]
        else:
            errors.append({"resource": None, "field": None, "message": error_text(item)})
    document = {"schema": SCHEMA_VERSION, "command": command, "error": error_text(error), "errors": errors}
    return redact(json.dumps(document, indent=2))


def error_text(error: BaseException) -> str:
    from virtplane.errors import VirtplaneError

    if isinstance(error, KeyboardInterrupt):
        return "interrupted: run the same command again to converge"
    if isinstance(error, VirtplaneError):
        return str(error)
    return f"unexpected {type(error).__name__}: {error}"
