"""`virtplane lab up|status|env|down` start and stop the four simulated endpoints and the private libvirt
daemon."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN_CACHE
from tests.support import hyperv
from tests.support import libvirt as raw_libvirt
from tests.support import xenserver as raw_xen
from tests.support.cli import virtplane
from virtplane_lab import cli as lab_cli
from virtplane_lab import state


def test_lab_up_starts_every_endpoint_and_down_stops_them(tmp_path: Path, vcsim_instance,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """Without VIRTPLANE_LAB_DIR the lab lives in the user's state directory, found from any working directory."""
    lab_dir = tmp_path / "state" / "virtplane" / "lab"
    lab_dir.mkdir(parents=True)
    # vcsim_instance has built the simulator into BIN_CACHE; the lab reuses that build.
    (lab_dir / "bin").symlink_to(BIN_CACHE, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTPLANE_LAB_DIR"}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), COLUMNS="200")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        up = virtplane("lab", "up", "--pve-time-scale", "0", env=env, cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert "vSphere simulator" in up.stdout and "Proxmox VE simulator" in up.stdout
        assert "Hyper-V simulator (host LAB-HV1, switch lab-switch)" in up.stdout
        assert "XenServer simulator (xapisim, pool lab-pool" in up.stdout
        assert "libvirt daemon with QEMU" in up.stdout
        assert not (tmp_path / ".lab").exists()

        assert virtplane("lab", "status", env=env, cwd=elsewhere).returncode == 0
        exports = virtplane("lab", "env", env=env, cwd=elsewhere).stdout
        assert "export PROXMOX_VE_ENDPOINT=https://127.0.0.1:" in exports
        assert "export VSPHERE_SERVER=" in exports
        assert "export HYPERV_SERVER=127.0.0.1:" in exports
        assert "export HYPERV_TLS=true" in exports and "export HYPERV_SWITCH=lab-switch" in exports
        assert f"export HYPERV_CA_FILE={lab_dir / 'hyperv' / 'ca.pem'}" in exports
        assert f"export VIRTPLANE_LOCK_DIR={lab_dir / 'locks'}" in exports  # this lab's runs lock each other only
        assert "export XENSERVER_URL=https://127.0.0.1:" in exports
        assert f"export XENSERVER_CA_FILE={lab_dir / 'xenserver' / 'ca.pem'}" in exports
        assert "export LIBVIRT_DEFAULT_URI='qemu+unix:///system?socket=/tmp/virtplane-libvirt-" in exports
        for name in ("VSPHERE_USER", "VSPHERE_CA_FILE", "PROXMOX_VE_USERNAME", "PROXMOX_VE_CA_FILE",
                     "HYPERV_USERNAME", "XENSERVER_USERNAME"):
            assert f"export {name}=" in exports
        for secret_file in (lab_dir / "vcsim" / "password", lab_dir / "fakepve" / "password",
                            lab_dir / "hyperv" / "password", lab_dir / "xenserver" / "password"):
            assert secret_file.read_text().strip() not in exports
            assert f'"$(cat {secret_file})"' in exports

        # The exported settings reach the host over verified TLS with NTLM, and the switch is there.
        monkeypatch.setenv("VIRTPLANE_LAB_DIR", str(lab_dir))
        lab = state.load()
        assert lab is not None and lab.hyperv is not None
        switches = hyperv.run(lab.hyperv, lambda ps: ps.add_cmdlet("Get-VMSwitch"))
        assert [(hyperv.prop(s, "Name"), str(hyperv.prop(s, "SwitchType"))) for s in switches] == [
            ("lab-switch", "Internal")]
        assert lab.xenserver is not None  # and the pool answers over verified TLS
        with raw_xen.session(lab.xenserver) as api:
            assert sorted(api.host.get_name_label(h) for h in api.host.get_all()) == ["xs-gpu", "xs-plain", "xs-sriov"]

        # Deleting the VM that held the DDA GPU mounts it back on the host (as `virtplane destroy` does); `lab up`
        # on the running lab dismounts it again, so `make lab` converges after a destroy.
        gpu = lab_cli.HYPERV_DDA_GPUS[0]
        hyperv.run(lab.hyperv,
                   lambda ps: ps.add_cmdlet("Mount-VMHostAssignableDevice").add_parameter("LocationPath", gpu))
        assignable = hyperv.run(lab.hyperv, lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
        assert gpu not in {hyperv.prop(d, "LocationPath") for d in assignable}  # the NVMe drive stays dismounted
        again = virtplane("lab", "up", env=env, cwd=elsewhere)
        assert again.returncode == 0, again.stderr
        assert "Lab already running" in again.stdout and f"Dismounted the DDA GPU {gpu}" in again.stdout
        listed = hyperv.run(lab.hyperv, lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
        assert gpu in [hyperv.prop(d, "LocationPath") for d in listed]
        third = virtplane("lab", "up", env=env, cwd=elsewhere)
        assert third.returncode == 0 and "Dismounted" not in third.stdout
        assert lab.libvirt is not None
        qemu = raw_libvirt.start_tiny_domain(lab.libvirt.uri, "lab-probe")  # a QEMU process of the lab's
    finally:
        down = virtplane("lab", "down", env=env, cwd=elsewhere)
    assert down.returncode == 0 and "Lab stopped." in down.stdout
    assert virtplane("lab", "status", env=env).returncode == 1
    assert lab.hyperv is not None and not lab.hyperv.alive()
    assert lab.xenserver is not None and not lab.xenserver.alive()
    assert not lab.libvirt.alive() and not raw_libvirt.process_exists(qemu)
    assert not Path(lab.libvirt.socket_dir).exists()


def test_the_lab_directory_is_the_one_named_else_the_users_state_directory(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VIRTPLANE_LAB_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert state.lab_dir() == tmp_path / "home" / ".local" / "state" / "virtplane" / "lab"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state.lab_dir() == tmp_path / "xdg" / "virtplane" / "lab"
    monkeypatch.setenv("VIRTPLANE_LAB_DIR", "relative-lab")
    assert state.lab_dir() == tmp_path / "relative-lab"
    assert state.lock_dir() == tmp_path / "relative-lab" / "locks"


def test_a_state_file_from_before_hyperv_still_loads_and_its_lab_still_stops(tmp_path: Path):
    """A lab started by an older virtplane (vSphere and Proxmox only) is still described, exported and stopped."""
    stand_ins = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2)]
    try:
        (tmp_path / "state.json").write_text(json.dumps({
            "vsphere": {"pid": stand_ins[0].pid, "ca_file": "/x/vcsim/ca.pem", "password_file": "/x/vcsim/password",
                        "user": "virtplane", "host": "127.0.0.1:1"},
            "proxmox": {"pid": stand_ins[1].pid, "ca_file": "/x/fakepve/ca.pem",
                        "password_file": "/x/fakepve/password", "user": "root@pam", "url": "https://127.0.0.1:2"}}))
        env = dict(os.environ, VIRTPLANE_LAB_DIR=str(tmp_path), COLUMNS="200")
        status = virtplane("lab", "status", env=env)
        assert status.returncode == 0, status.stderr
        assert "No Hyper-V simulator" in status.stdout and "virtplane lab down && virtplane lab up" in status.stdout
        exports = virtplane("lab", "env", env=env)
        assert exports.returncode == 0 and "export VSPHERE_SERVER=127.0.0.1:1" in exports.stdout
        assert "HYPERV_" not in exports.stdout
        down = virtplane("lab", "down", env=env)
        assert down.returncode == 0 and "Lab stopped." in down.stdout
        assert [p.wait(timeout=30) for p in stand_ins] == [-15, -15]
    finally:
        for process in stand_ins:
            process.kill()
            process.wait()


def test_virtplane_lab_says_how_to_install_the_lab_when_it_is_absent(monkeypatch) -> None:
    from click.testing import CliRunner

    from virtplane import cli

    monkeypatch.setattr(cli, "_plugin_commands", dict)  # no package registers commands: the core alone
    result = CliRunner().invoke(cli.main, ["lab", "up"])
    assert result.exit_code == 1
    assert "the lab is not installed" in result.output and "pip install ./lab" in result.output
    assert "lab" in CliRunner().invoke(cli.main, ["--help"]).output


def test_the_lab_command_comes_from_the_lab_package_entry_point() -> None:
    from virtplane import cli

    point = cli._plugin_commands()["lab"]
    assert point.value == "virtplane_lab.cli:lab" and point.dist.name == "virtplane-lab"
