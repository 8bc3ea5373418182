"""``virtplane lab up|down|status|env``: the simulated endpoints on loopback."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from virtplane.errors import VirtplaneError
from virtplane.lab import state, vcsim

console = Console(highlight=False)


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/] {message}")
    sys.exit(1)


@click.group()
def lab() -> None:
    """The embedded lab: a vSphere simulator (vcsim) on loopback."""


@lab.command()
@click.option("--hosts", default=3, show_default=True, help="ESXi hosts in the simulated cluster.")
@click.option("--delay-ms", default=0, show_default=True, help="Latency added to every vSphere call.")
def up(hosts: int, delay_ms: int) -> None:
    """Start the lab endpoints (no-op when they already run)."""
    running = state.load()
    if running is not None and running.alive():
        console.print(f"Lab already running: vSphere at https://{running.host}/sdk")
        return
    console.print("Starting the lab (the first start builds the vSphere simulator)…")
    try:
        vsphere = vcsim.start(state.lab_dir(), hosts=hosts, delay_ms=delay_ms)
    except VirtplaneError as exc:
        _fail(str(exc))
    state.save(vsphere)
    console.print(f"vSphere simulator: https://{vsphere.host}/sdk (user {vsphere.user}, "
                  f"CA {vsphere.ca_file})")
    console.print('Use it from a shell with: eval "$(virtplane lab env)"')
    console.print("Stop it with: virtplane lab down")


@lab.command()
def down() -> None:
    """Stop the lab endpoints."""
    running = state.load()
    if running is None:
        console.print("Lab is not running.")
        return
    running.stop()
    state.clear()
    console.print("Lab stopped.")


@lab.command()
def status() -> None:
    """Say whether the lab runs and where. Exit 1 when it does not."""
    running = state.load()
    if running is None or not running.alive():
        console.print("Lab is not running (start it with: virtplane lab up).")
        sys.exit(1)
    console.print(f"vSphere simulator: running, pid {running.pid}, https://{running.host}/sdk")


@lab.command()
def env() -> None:
    """Print shell exports for the lab's endpoints: eval "$(virtplane lab env)"."""
    running = state.load()
    if running is None or not running.alive():
        _fail("the lab is not running (start it with: virtplane lab up)")
    click.echo(state.shell_exports(running))
