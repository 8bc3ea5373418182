"""Run a private libvirtd (with virtlogd) for the lab: the process ``virtplane_lab.libvirtd`` starts inside its own
PID, mount and network namespaces (``unshare``), so nothing it does reaches the machine it runs on.

Inside the namespaces this process is PID 1. It bind-mounts directories of the run directory over libvirt's
system paths (``/etc/libvirt``, ``/var/lib/libvirt``, ``/var/log/libvirt``, ``/var/cache/libvirt``) and a tmpfs
over ``/run``, writes a libvirtd.conf whose UNIX socket lives in a directory of ours (so clients outside reach it)
and a qemu.conf that runs QEMU as root without cgroups or a security driver (a CI machine has neither systemd
nor AppArmor), hides ``/dev/kvm`` unless asked not to (the lab's QEMU runs with TCG wherever it runs, as in CI,
which has no KVM; a nested KVM may also lack what q35 secure boot needs, SMM), starts virtlogd and libvirtd,
defines the lab's storage pool and network, prints one JSON line (``{"uri": …}``) and waits. When it ends (its
``unshare`` parent is stopped), the kernel ends every process of the namespace with it: libvirtd, virtlogd and
every QEMU. The domains' definitions live in the run directory, which the next start clears.

Bridges that networks make live in the private network namespace: a guest NIC reaches no real network.
libvirt's configuration files: https://libvirt.org/daemons.html and the comments of Debian's
/etc/libvirt/libvirtd.conf and qemu.conf (unix_sock_dir, auth_unix_rw, user, group, cgroup_controllers,
security_driver, namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PATHS = {"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
                "cache": "/var/cache/libvirt"}
POOL = "default"
NETWORK = "default"

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:{log}"
"""
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
"""


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _private_paths(run_dir: Path, kvm: bool, ovmf: bool) -> None:
    _mount("--make-rprivate", "/")
    if not ovmf:  # a host without UEFI firmware for QEMU (Debian's ovmf not installed)
        for firmware in ("/usr/share/OVMF", "/usr/share/qemu/firmware"):
            if Path(firmware).is_dir():
                _mount("-t", "tmpfs", "tmpfs", firmware)
    if not kvm and Path("/dev/kvm").exists():
        _dev_without_kvm()
    _mount("-t", "tmpfs", "tmpfs", "/run")
    for name, target in SYSTEM_PATHS.items():
        source = run_dir / name
        source.mkdir(parents=True, exist_ok=True)
        Path(target).mkdir(parents=True, exist_ok=True)
        _mount("--bind", str(source), target)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)


def _dev_without_kvm() -> None:
    """A /dev of the machine's own entries but ``kvm``: QEMU runs with TCG, as on a machine without KVM (CI).
    (Binding /dev/null over /dev/kvm would not do: libvirt sees a usable device node and probes QEMU again on
    every call, as its cached capabilities never match.) Terminals come from a devpts instance of its own, with
    ``/dev/ptmx`` its ``ptmx`` (a bound ``/dev/ptmx`` finds no ``pts`` beside it, and every pseudo-terminal open
    fails: libvirt-lxc gives each container's console one)."""
    original = Path("/run/original-dev")
    original.mkdir(parents=True, exist_ok=True)
    _mount("--rbind", "/dev", str(original))
    _mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/dev")
    for entry in sorted(original.iterdir()):
        if entry.name in ("kvm", "ptmx", "pts"):
            continue
        target = Path("/dev") / entry.name
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
        elif entry.is_dir():
            target.mkdir()
            _mount("--rbind", str(entry), str(target))
        else:
            target.touch()
            _mount("--bind", str(entry), str(target))
    Path("/dev/pts").mkdir()
    _mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", "/dev/pts")
    Path("/dev/ptmx").symlink_to("pts/ptmx")


def _write_config(run_dir: Path, sock: Path) -> Path:
    etc = Path(SYSTEM_PATHS["etc"])
    conf = etc / "libvirtd.conf"
    conf.write_text(LIBVIRTD_CONF.format(sock=sock, log=run_dir / "libvirtd.log"))
    (etc / "qemu.conf").write_text(QEMU_CONF)
    (etc / "virtlogd.conf").write_text("")
    return conf


def _wait_for(path: Path, process: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise SystemExit(f"{what} exited during start-up (exit status {process.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not create {path} within {timeout:.0f} s")
        time.sleep(0.05)


def _seed(uri: str, pool_dir: Path, with_network: bool) -> None:
    import libvirt

    conn = libvirt.open(uri)
    try:
        pool_dir.mkdir(parents=True, exist_ok=True)
        pool = conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{POOL}</name><target><path>{pool_dir}</path></target></pool>", 0)
        pool.create(0)
        pool.setAutostart(1)
        if with_network:
            network = conn.networkDefineXML(
                f"<network><name>{NETWORK}</name><bridge name='virbr0' stp='off'/></network>")
            network.create()
            network.setAutostart(1)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--socket-dir", required=True, help="where the UNIX socket goes (a short path: 107 bytes)")
    parser.add_argument("--no-network", action="store_true", help="define no network (benchmarks)")
    parser.add_argument("--kvm", action="store_true", help="let QEMU use /dev/kvm (hidden by default)")
    parser.add_argument("--no-ovmf", action="store_true", help="hide the UEFI firmware (a host without OVMF)")
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    if os.getpid() != 1:
        raise SystemExit("libvirtd_main runs as PID 1 of its own namespaces (started by virtplane_lab.libvirtd)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _private_paths(run_dir, args.kvm, not args.no_ovmf)
    sock = Path(args.socket_dir)
    sock.mkdir(parents=True, exist_ok=True)
    conf = _write_config(run_dir, sock)
    env = dict(os.environ, LIBVIRT_DEFAULT_URI="")
    log = open(run_dir / "daemons.log", "a")  # noqa: SIM115 - open for the daemons' lifetime
    virtlogd = subprocess.Popen(["virtlogd"], stdout=log, stderr=log, env=env)
    _wait_for(Path("/run/libvirt/virtlogd-sock"), virtlogd, "virtlogd")
    libvirtd = subprocess.Popen(["libvirtd", "-f", str(conf)], stdout=log, stderr=log, env=env)
    _wait_for(sock / "libvirt-sock", libvirtd, "libvirtd")
    uri = f"qemu+unix:///system?socket={sock}/libvirt-sock"
    _seed(uri, run_dir / "pool", not args.no_network)
    print(json.dumps({"uri": uri, "socket": str(sock / "libvirt-sock")}), flush=True)
    while True:
        # PID 1 reaps every orphan of the namespace (QEMU processes whose parent left); it ends with its parent
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            time.sleep(1)
            continue
        if pid == libvirtd.pid:
            raise SystemExit("libvirtd exited")


if __name__ == "__main__":
    main()
