"""``virtplane lab up|down|status|env``: the simulated endpoints on loopback."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from virtplane.errors import VirtplaneError
from virtplane_lab import fakepve, golden, hyperv, libvirtd, state, vcsim, xenserver

console = Console(highlight=False)

HYPERV_HOST = "LAB-HV1"
HYPERV_PROFILE = "gpu"  # Intel, IOMMU, a DDA GPU and a partitionable GPU, configuration versions 8.0-12.0
HYPERV_SWITCH = "lab-switch"
HYPERV_DDA_GPUS = ("PCIROOT(0)#PCI(0300)#PCI(0000)",)  # the gpu profile's NVIDIA A2, dismounted at start for DDA


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/] {message}")
    sys.exit(1)


def _describe(lab: state.Lab) -> None:
    if lab.vsphere is not None:
        console.print(f"vSphere simulator (vcsim): https://{lab.vsphere.host}/sdk (user {lab.vsphere.user}, "
                      f"CA {lab.vsphere.ca_file})")
    if lab.proxmox is not None:
        console.print(f"Proxmox VE simulator (fakepve, nodes pve1-pve3): {lab.proxmox.url} "
                      f"(user {lab.proxmox.user}, CA {lab.proxmox.ca_file})")
    if lab.hyperv is not None:
        console.print(f"Hyper-V simulator (host {lab.hyperv.host_name}, switch {lab.hyperv.switch or 'none'}): "
                      f"https://{lab.hyperv.server}/wsman (NTLM, user {lab.hyperv.user}, CA {lab.hyperv.ca_file})")
    elif lab.vsphere is not None or lab.proxmox is not None:
        console.print("No Hyper-V simulator: this lab was started by an older virtplane "
                      "(restart it with: virtplane lab down && virtplane lab up).")
    if lab.xenserver is not None:
        console.print(f"XenServer simulator (xapisim, pool lab-pool: xs-gpu, xs-sriov, xs-plain): {lab.xenserver.url} "
                      f"(user {lab.xenserver.user}, CA {lab.xenserver.ca_file})")
    if lab.libvirt is not None:
        console.print(f"libvirt daemon with QEMU (private, TCG; pool and network 'default'): {lab.libvirt.uri}")


@click.group()
def lab() -> None:
    """The embedded lab: a vSphere simulator (vcsim), a Proxmox VE cluster (fakepve), a Hyper-V host (hypervsim)
    and a XenServer pool (xapisim) on loopback, and a private libvirt daemon with QEMU."""


@lab.command()
@click.option("--hosts", default=3, show_default=True, help="ESXi hosts in the simulated vSphere cluster.")
@click.option("--delay-ms", default=0, show_default=True, help="Latency added to every vSphere call.")
@click.option("--pve-time-scale", default=0.01, show_default=True,
              help="Real seconds per Proxmox task second (0: tasks finish at once).")
def up(hosts: int, delay_ms: int, pve_time_scale: float) -> None:
    """Start the lab endpoints; when they already run, bring them back to how `lab up` leaves them (the Hyper-V
    host's DDA GPU dismounted again: deleting the VM that held it mounts it back on the host)."""
    running = state.load()
    if running is not None and running.alive() and running.complete():
        console.print("Lab already running:")
        _describe(running)
        if running.hyperv is not None:
            try:
                remounted = hyperv.dismount_devices(running.hyperv, HYPERV_DDA_GPUS)
            except VirtplaneError as exc:
                _fail(str(exc))
            for path in remounted:
                console.print(f"Dismounted the DDA GPU {path} from {running.hyperv.host_name} again "
                              "(it was mounted back on the host when the VM holding it was deleted).")
        return
    if running is not None:
        running.stop()  # half of an earlier lab, or one without Hyper-V: start afresh
    console.print("Starting the lab (the first start builds the vSphere simulator)…")
    lab_state = state.Lab()
    try:
        lab_state.vsphere = vcsim.start(state.lab_dir(), hosts=hosts, delay_ms=delay_ms)
        lab_state.proxmox = fakepve.start(state.lab_dir(), time_scale=pve_time_scale)
        lab_state.hyperv = hyperv.start(state.lab_dir(), host_name=HYPERV_HOST, profile=HYPERV_PROFILE, tls=True,
                                        switch=HYPERV_SWITCH, dismount=HYPERV_DDA_GPUS)
        lab_state.xenserver = xenserver.start(state.lab_dir())
        lab_state.libvirt = libvirtd.start(state.lab_dir())
        golden.seed(lab_state.vsphere, lab_state.proxmox.environ(), lab_state.hyperv)  # lab-golden, for pools
    except VirtplaneError as exc:
        lab_state.stop()
        _fail(str(exc))
    state.save(lab_state)
    _describe(lab_state)
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
    _describe(running)


@lab.command()
def env() -> None:
    """Print shell exports for the lab's endpoints: eval "$(virtplane lab env)"."""
    running = state.load()
    if running is None or not running.alive():
        _fail("the lab is not running (start it with: virtplane lab up)")
    click.echo(state.shell_exports(running))
