"""The ``virtplane`` command: plan, apply, drift, destroy and inventory without Pulumi; run the lab.

Everything heavy (Pulumi, pydantic, the drivers, rich) is imported inside the commands, so ``--help``
answers at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from virtplane.apply import ApplyResult
    from virtplane.plan import Plan
    from virtplane.policies.evaluate import Report

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

stack_dir_argument = click.argument("stack_dir", type=click.Path(file_okay=False, path_type=Path))
stack_option = click.option("--stack", "stack", default=None, help="Stack name: reads Pulumi.<NAME>.yaml.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document (see README).")


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _silence_stdout() -> None:
    """The reader went away (``| head``): send what is left of stdout nowhere, and say nothing about it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during apply or destroy; ``finished`` holds the changes that ended before it stopped."""

    def __init__(self, finished: list[Any]) -> None:
        super().__init__()
        self.finished = finished


def _say_error(text: str) -> None:
    """Each line of an error (one sentence each) on stderr, marked ``error:``."""
    from rich.markup import escape

    err = console(stderr=True)
    for line in text.splitlines() or [text]:
        err.print(f"[red]error:[/] {escape(line)}", markup=True, highlight=False)


def _interrupted(exc: KeyboardInterrupt) -> None:
    from rich.markup import escape

    err = console(stderr=True)
    made = [o for o in getattr(exc, "finished", []) if o.ok]
    if made:
        past = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
        err.print("[red]interrupted[/] after these changes were made:")
        for outcome in made:
            item = outcome.resource
            err.print(f"  {past[item.action.value]} {item.kind} {escape(item.name)} on {escape(item.endpoint)}")
        err.print("Run the same command again to converge.")
    else:
        err.print("[red]interrupted[/]: run the same command again to converge")


def guarded(command: Callable[..., int]) -> Callable[..., None]:
    """Turn every failure into one sentence per error on stderr and exit 1; never a traceback (with
    VIRTPLANE_DEBUG=1, a traceback with every secret masked). With ``--json``, the error is also a JSON document
    on stdout (see output.error_json)."""

    def wrapper(**kwargs: Any) -> None:
        from virtplane.errors import VirtplaneError
        from virtplane.redact import redact

        failure: BaseException | None = None
        try:
            code = command(**kwargs)
        except BrokenPipeError:
            _silence_stdout()
            code = EXIT_OK
        except VirtplaneError as exc:
            _say_error(redact(str(exc)))
            code, failure = EXIT_ERROR, exc
        except KeyboardInterrupt as exc:
            _interrupted(exc)
            code, failure = EXIT_ERROR, exc
        except Exception as exc:
            if os.environ.get("VIRTPLANE_DEBUG"):
                import traceback

                sys.stderr.write(redact(traceback.format_exc()))
            _say_error(f"unexpected {type(exc).__name__}: {redact(str(exc))} (set VIRTPLANE_DEBUG=1 for a traceback)")
            code, failure = EXIT_ERROR, exc
        try:
            if failure is not None and kwargs.get("as_json"):
                from virtplane.output import error_json

                _emit(error_json(command.__name__, failure))
            elif failure is not None and kwargs.get("fmt") in MACHINE_FORMATS:
                _emit_failure_report(command.__name__, failure, kwargs["fmt"], kwargs.get("out_file"))
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        _exit(code)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return wrapper


def _exit(code: int) -> None:
    """End the process with ``code``. Once the command is done and no other thread runs, the exit handlers run and
    the output is flushed, but the interpreter's teardown is skipped: freeing every object of a 1,000-VM stack one
    by one took 0.15-0.35 s, a third of a drift's fixed cost (bench/drift_proxmox.py)."""
    import atexit
    import threading

    if not _as_program or threading.active_count() > 1:  # called in-process (click's test runner): a normal exit
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.stderr.flush()
    os._exit(code)


_as_program = False  # set by run(): this process is the `virtplane` command itself


def run() -> None:
    """The `virtplane` command (console script and ``python -m virtplane``)."""
    global _as_program
    _as_program = True
    main()


COMMANDS_GROUP = "virtplane.commands"  # entry points of packages that add commands (the lab package adds `lab`)
LAB_MISSING = ("the lab is not installed: install the lab package beside virtplane "
               "(`pip install ./lab` from a virtplane checkout, or run `make lab` there)")


def _plugin_commands() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=COMMANDS_GROUP)}


class _Commands(click.Group):
    """Adds the commands other installed packages register (``virtplane.commands`` entry points), loaded only
    when used; ``lab`` is always listed and says how to install the lab package when it is absent."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands(), "lab"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        point = _plugin_commands().get(cmd_name)
        if point is not None:
            return point.load()
        if cmd_name == "lab":
            return _lab_missing
        return None


@click.command("lab", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def _lab_missing() -> None:
    """The embedded lab (not installed)."""
    console(stderr=True).print(f"[red]error:[/] {LAB_MISSING}")
    sys.exit(EXIT_ERROR)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="virtplane")
def main() -> None:
    """Declarative VMs and networks on vSphere, Proxmox VE and Hyper-V."""


def _emit(text: str) -> None:
    print(text)


MACHINE_FORMATS = ("json", "sarif", "junit")  # `check --format`s a CI parser reads, even when the check fails


def _emit_failure_report(command: str, failure: BaseException, fmt: str, out_file: Path | None) -> None:
    """A failed ``check --format json|sarif|junit`` still writes a document of its format, saying the check did not
    run (to ``--out`` when given), so a CI step reading it reports the error instead of choking on nothing."""
    from virtplane.output import error_json, error_text
    from virtplane.policies.report import junit, sarif
    from virtplane.redact import redact

    message = redact(error_text(failure))
    document = {"json": lambda: error_json(command, failure) + "\n",
                "sarif": lambda: sarif.failed(message, Path.cwd()),
                "junit": lambda: junit.failed(message)}[fmt]()
    if out_file is None:
        sys.stdout.write(document)
    else:
        out_file.write_text(document)


def _plan(stack_dir: Path, stack: str | None, policy: bool = False) -> tuple[Plan, Report | None]:
    from virtplane import timings
    from virtplane.engine import HostFacts, build_plan, connected
    from virtplane.evaluate import evaluate

    timings.begin()
    desired = evaluate(stack_dir, stack)
    timings.mark("evaluate")
    with connected(desired) as providers:
        timings.mark("connect")
        facts = HostFacts(providers)  # host facts are read once, for the policy gate and placement alike
        report = _policy_gate(desired, providers, stack_dir, facts) if policy else None  # see check_command
        timings.mark("policy")
        the_plan = build_plan(desired, providers, facts=facts)
        timings.mark("diff")
    timings.mark("connect")  # logging out
    return the_plan, report


@main.command()
@stack_dir_argument
@stack_option
@json_option
@guarded
def plan(stack_dir: Path, stack: str | None, as_json: bool) -> int:
    """Show what apply would change. Exit 0: nothing to do; 2: changes pending."""
    from virtplane import check_command, output

    the_plan, report = _plan(stack_dir, stack, policy=True)
    if as_json:
        _emit(check_command.with_policy(output.emit_json("plan", the_plan), report))
    else:
        output.render_plan(console(), the_plan, title="Plan")
        check_command.show(console(), report)
    _timings_report()
    return EXIT_CHANGES if the_plan.pending or the_plan.deferred else EXIT_OK


@main.command()
@stack_dir_argument
@stack_option
@json_option
@guarded
def drift(stack_dir: Path, stack: str | None, as_json: bool) -> int:
    """Compare declared and live state field by field. Exit 0: none; 2: drift found."""
    from virtplane import output

    the_plan, _ = _plan(stack_dir, stack)
    drifted = bool(the_plan.pending or the_plan.deferred)
    if as_json:
        _emit(output.emit_json("drift", the_plan, drift=drifted))
    else:
        out = console()
        output.render_plan(out, the_plan, title="Drift")
        output.render_cloud_init(out, the_plan)
        out.print("Drift found." if drifted else "No drift.")
    _timings_report()
    return EXIT_CHANGES if drifted else EXIT_OK


def _timings_report() -> None:
    from virtplane import timings

    timings.mark("report")
    timings.report()


def _backend(name: str, provider: Any) -> str:
    try:
        return f"{provider.name}:{provider.identity()}"
    except NotImplementedError:
        return f"{provider.name}:endpoint {name}"


def _converge(command: str, stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int,
              destroy: bool, allow_data_loss: bool, break_lock: bool) -> int:
    from virtplane import apply as applier
    from virtplane import output
    from virtplane.engine import HostFacts, build_plan, connected
    from virtplane.errors import VirtplaneError
    from virtplane.evaluate import evaluate
    from virtplane.lock import stack_lock

    out = console()
    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers, stack_lock(
            desired.identity, [_backend(name, p) for name, p in providers.items()],
            f"virtplane {command} {stack_dir}", break_lock=break_lock):
        facts = HostFacts(providers)  # read once, for placement and the policy gate alike
        the_plan = build_plan(desired, providers, destroy=destroy, facts=facts)
        if not as_json:
            output.render_plan(out, the_plan, title="Destroy plan" if destroy else "Plan")
        if not the_plan.pending:
            if as_json:
                _emit(output.emit_json(command, the_plan, applier.ApplyResult()))
            else:
                out.print("Nothing to do.")
            return EXIT_OK
        if not destroy:  # policy: mandatory findings stop apply before anything changes (see check_command)
            _refuse_on_policy(desired, providers, stack_dir, facts, out, as_json)
        applier.refuse_changes_to_unowned(the_plan.resources)
        applier.refuse_when_nothing_can_apply(the_plan)
        if not allow_data_loss:
            applier.refuse_data_loss(the_plan)
        if not yes:
            if not sys.stdin.isatty():
                raise VirtplaneError(f"{command} changes live systems: pass --yes to confirm "
                                     "when not running interactively")
            if not click.confirm(f"{command.capitalize()} these changes?", default=False):
                console(stderr=True).print("Cancelled; nothing changed.")
                return EXIT_ERROR
        result = _run_with_progress(the_plan, providers, parallel, quiet=as_json, allow_data_loss=allow_data_loss)
    if as_json:
        _emit(output.emit_json(command, the_plan, result))
    else:
        output.render_result(out, result, command)
    return EXIT_ERROR if result.failed else EXIT_OK


def _run_with_progress(the_plan: Plan, providers: Any, parallel: int, *, quiet: bool,
                       allow_data_loss: bool) -> ApplyResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from virtplane import apply as applier
    from virtplane import output

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    finished: list[Any] = []  # outcomes as changes end (appended from worker threads), for an interrupt's report
    with Progress(*columns, console=console(stderr=True), transient=False, disable=quiet) as progress:
        task = progress.add_task("applying", total=len(the_plan.pending))

        def on_event(event: str, payload: Any) -> None:
            if event == "ended":
                finished.append(payload)
            elif event == "done":
                progress.advance(task)
                if not quiet:
                    progress.console.print("  " + output.describe_outcome(payload))

        try:
            return applier.run(the_plan, providers, parallel=parallel, on_event=on_event,
                               allow_data_loss=allow_data_loss)
        except KeyboardInterrupt:
            raise Interrupted(list(finished)) from None


lock_option = click.option("--break-lock", is_flag=True,
                           help="Remove a lock left by another run (stale or not) before starting.")


@main.command()
@stack_dir_argument
@stack_option
@json_option
@click.option("--yes", is_flag=True, help="Apply without asking.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Resources changed at once.")
@click.option("--allow-data-loss", is_flag=True,
              help="Apply changes that destroy data: removing disks, replacing or deleting VMs.")
@lock_option
@guarded
def apply(stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int, allow_data_loss: bool,
          break_lock: bool) -> int:
    """Make the endpoints match the stack. Exit 0: done or nothing to do; 1: a change failed or was refused."""
    return _converge("apply", stack_dir, stack, as_json, yes, parallel, destroy=False,
                     allow_data_loss=allow_data_loss, break_lock=break_lock)


@main.command()
@stack_dir_argument
@stack_option
@json_option
@click.option("--yes", is_flag=True, help="Destroy without asking.")
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 64))
@lock_option
@guarded
def destroy(stack_dir: Path, stack: str | None, as_json: bool, yes: bool, parallel: int, break_lock: bool) -> int:
    """Delete everything this stack owns (objects carrying its marker), and nothing else."""
    return _converge("destroy", stack_dir, stack, as_json, yes, parallel, destroy=True, allow_data_loss=True,
                     break_lock=break_lock)


@main.command()
@stack_dir_argument
@stack_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the inventory to FILE instead of stdout.")
@guarded
def inventory(stack_dir: Path, stack: str | None, out_file: Path | None) -> int:
    """Read the hosts behind every endpoint of the stack and print their facts as JSON
    (schema virtplane.inventory/1)."""
    from virtplane.engine import collect_inventory, connected
    from virtplane.evaluate import evaluate

    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers:
        document = collect_inventory(providers).to_json()
    if out_file is None:
        sys.stdout.write(document)
    else:
        out_file.write_text(document)
    return EXIT_OK


@main.command()
@stack_dir_argument
@stack_option
@click.option("--pool", "pool", required=True, help="The DesktopPool whose desktops to list.")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@guarded
def desktops(stack_dir: Path, stack: str | None, pool: str, fmt: str) -> int:
    """List a desktop pool's desktops as a broker needs them: host, power, address, vGPU, in use (read live)."""
    from virtplane.engine import connected
    from virtplane.evaluate import evaluate
    from virtplane.pools import listing

    desired = evaluate(stack_dir, stack)
    with connected(desired) as providers:
        rows = listing.desktops(desired, providers, pool)
    sys.stdout.write(listing.render(pool, rows, fmt).rstrip("\n") + "\n")
    return EXIT_OK


@main.command("import")
@click.option("--endpoint-kind", "kind", required=True, help="The hypervisor: vsphere, proxmox, hyperv, xenserver.")
@click.option("--endpoint", "endpoint", default=None,
              help="The Endpoint's name in the stack (default: the kind); settings come from the environment.")
@click.option("--select", "globs", multiple=True, help="VMs whose name matches this glob (repeatable).")
@click.option("--tag", "tags", multiple=True, help="VMs carrying this tag (repeatable).")
@click.option("--id", "ids", multiple=True, help="The VM with this id (repeatable). Nothing given: every VM.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The new stack directory to write (it must not exist or be empty).")
@click.option("--adopt", is_flag=True,
              help="Write the ownership marker on the VMs once the plan of the written stack shows no change.")
@guarded
def import_(kind: str, endpoint: str | None, globs: tuple[str, ...], tags: tuple[str, ...], ids: tuple[str, ...],
            out: Path, adopt: bool) -> int:
    """Write a stack (Pulumi.yaml, __main__.py) declaring existing VMs as they are, and show its plan. Nothing is
    changed on the hypervisor unless --adopt."""
    from virtplane import import_command
    from virtplane.importer import Selection

    return import_command.run(kind, endpoint, Selection(globs, tags, ids), out, adopt, console(),
                              console(stderr=True))


# --- policy (virtplane/check_command.py and policies/) -----------------------------------------------------------

def _policy_gate(desired: Any, providers: Any, stack_dir: Path, facts: Any) -> Report | None:
    from virtplane.check_command import policy_gate

    return policy_gate(desired, providers, stack_dir, facts)


def _refuse_on_policy(desired: Any, providers: Any, stack_dir: Path, facts: Any, out: Console, as_json: bool
                      ) -> None:
    from virtplane import check_command

    report = _policy_gate(desired, providers, stack_dir, facts)
    if not as_json:
        check_command.show(out, report)
    check_command.refuse(report)


@main.command()
@stack_dir_argument
@stack_option
@click.option("--inventory", "inventory_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Host facts from `virtplane inventory --out FILE`; nothing is contacted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "junit"]), default="text",
              show_default=True, help="Report format.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to FILE instead of stdout.")
@guarded
def check(stack_dir: Path, stack: str | None, inventory_file: Path | None, fmt: str, out_file: Path | None) -> int:
    """Check the stack's VMs against the hosts' hardware (policy rules). Exit 0: no mandatory finding;
    2: mandatory findings; 1: error."""
    from virtplane import check_command

    return check_command.run(stack_dir, stack, inventory_file, fmt, out_file, console(stderr=out_file is None
                                                                                      and fmt != "text"))
