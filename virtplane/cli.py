"""The ``virtplane`` command: plan, apply, drift and destroy stacks without Pulumi; run the lab."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from virtplane import apply as applier
from virtplane import output
from virtplane.engine import build_plan, connected
from virtplane.errors import VirtplaneError
from virtplane.evaluate import evaluate
from virtplane.lab.cli import lab
from virtplane.redact import redact

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

stack_dir_argument = click.argument("stack_dir", type=click.Path(file_okay=False, path_type=Path))
stack_option = click.option("--stack", "stack", default=None, help="Stack name: reads Pulumi.<NAME>.yaml.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document (see README).")


def guarded(command: Callable[..., int]) -> Callable[..., None]:
    """Turn every failure into one sentence on stderr and exit 1; never a traceback."""

    def wrapper(**kwargs: Any) -> None:
        try:
            code = command(**kwargs)
        except VirtplaneError as exc:
            stderr.print(f"[red]error:[/] {redact(str(exc))}", markup=True, highlight=False)
            code = EXIT_ERROR
        except KeyboardInterrupt:
            stderr.print("[red]interrupted[/]: run the same command again to converge")
            code = EXIT_ERROR
        except Exception as exc:
            if os.environ.get("VIRTPLANE_DEBUG"):
                raise
            stderr.print(f"[red]error:[/] unexpected {type(exc).__name__}: {redact(str(exc))} "
                         "(set VIRTPLANE_DEBUG=1 for a traceback)")
            code = EXIT_ERROR
        sys.exit(code)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="virtplane")
def main() -> None:
    """Declarative VMs and networks on vSphere, Proxmox VE and Hyper-V."""


main.add_command(lab)




@main.command()
@stack_dir_argument
@stack_option
@json_option
@guarded
def plan(stack_dir: Path, stack: str | None, as_json: bool) -> int:
    """Show what apply would change. Exit 0: nothing to do; 2: changes pending."""
    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers:
        the_plan = build_plan(desired, providers)
    if as_json:
        print(output.emit_json("plan", the_plan))
    else:
        output.render_plan(stdout, the_plan, title="Plan")
    return EXIT_CHANGES if the_plan.pending else EXIT_OK


@main.command()
@stack_dir_argument
@stack_option
@json_option
@guarded
def drift(stack_dir: Path, stack: str | None, as_json: bool) -> int:
    """Compare declared and live state field by field. Exit 0: none; 2: drift found."""
    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers:
        the_plan = build_plan(desired, providers)
    if as_json:
        print(output.emit_json("drift", the_plan, drift=bool(the_plan.pending)))
    else:
        output.render_plan(stdout, the_plan, title="Drift")
        stdout.print("Drift found." if the_plan.pending else "No drift.")
    return EXIT_CHANGES if the_plan.pending else EXIT_OK


def _converge(command: str, stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int,
              destroy: bool) -> int:
    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers:
        the_plan = build_plan(desired, providers, destroy=destroy)
        if not as_json:
            output.render_plan(stdout, the_plan, title="Destroy plan" if destroy else "Plan")
        if not the_plan.pending:
            if as_json:
                print(output.emit_json(command, the_plan, applier.ApplyResult()))
            else:
                stdout.print("Nothing to do.")
            return EXIT_OK
        if not yes:
            if not sys.stdin.isatty():
                raise VirtplaneError(f"{command} changes live systems: pass --yes to confirm "
                                     "when not running interactively")
            if not click.confirm(f"{command.capitalize()} these changes?", default=False):
                stderr.print("Cancelled; nothing changed.")
                return EXIT_ERROR
        result = _run_with_progress(the_plan, providers, parallel, quiet=as_json)
    if as_json:
        print(output.emit_json(command, the_plan, result))
    else:
        output.render_result(stdout, result)
    return EXIT_ERROR if result.failed else EXIT_OK


def _run_with_progress(the_plan, providers, parallel: int, *, quiet: bool):
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False, disable=quiet) as progress:
        task = progress.add_task("applying", total=len(the_plan.pending))

        def on_event(event: str, payload: Any) -> None:
            if event == "done":
                progress.advance(task)
                if not quiet:
                    progress.console.print("  " + output.describe_outcome(payload))

        return applier.run(the_plan, providers, parallel=parallel, on_event=on_event)


@main.command()
@stack_dir_argument
@stack_option
@json_option
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Resources changed at once.")
@guarded
def apply(stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int) -> int:
    """Make the endpoints match the stack. Exit 0: done or nothing to do; 1: a change failed."""
    return _converge("apply", stack_dir, stack, as_json, yes, parallel, destroy=False)


@main.command()
@stack_dir_argument
@stack_option
@json_option
@click.option("--yes", is_flag=True, help="Destroy without asking.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64))
@guarded
def destroy(stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int) -> int:
    """Delete everything this stack owns (objects carrying its marker), and nothing else."""
    return _converge("destroy", stack_dir, stack, as_json, yes, parallel, destroy=True)
