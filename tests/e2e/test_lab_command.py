"""`virtplane lab up|status|env|down` start and stop both simulated endpoints."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import BIN_CACHE
from tests.support.cli import virtplane


def test_lab_up_starts_vsphere_and_proxmox_and_down_stops_them(tmp_path: Path, vcsim_instance):
    # vcsim_instance has built the simulator into BIN_CACHE; the lab reuses that build.
    (tmp_path / "bin").symlink_to(BIN_CACHE, target_is_directory=True)
    env = dict(os.environ, VIRTPLANE_LAB_DIR=str(tmp_path), COLUMNS="200")
    try:
        up = virtplane("lab", "up", "--pve-time-scale", "0", env=env)
        assert up.returncode == 0, up.stderr
        assert "vSphere simulator" in up.stdout and "Proxmox VE simulator" in up.stdout

        assert virtplane("lab", "status", env=env).returncode == 0
        exports = virtplane("lab", "env", env=env).stdout
        assert "export PROXMOX_VE_ENDPOINT=https://127.0.0.1:" in exports
        assert "export VSPHERE_SERVER=" in exports
        for name in ("VSPHERE_USER", "VSPHERE_CA_FILE", "PROXMOX_VE_USERNAME", "PROXMOX_VE_CA_FILE"):
            assert f"export {name}=" in exports
        for secret_file in (tmp_path / "vcsim" / "password", tmp_path / "fakepve" / "password"):
            assert secret_file.read_text().strip() not in exports
            assert f'"$(cat {secret_file})"' in exports
    finally:
        down = virtplane("lab", "down", env=env)
    assert down.returncode == 0 and "Lab stopped." in down.stdout
    assert virtplane("lab", "status", env=env).returncode == 1
