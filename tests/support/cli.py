"""Run the ``virtplane`` command as a user would: a separate process with an environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from virtplane_lab.hyperv import HypervInstance
from virtplane_lab.vcsim import VcsimInstance

REPO = Path(__file__).resolve().parents[2]
LAB_STACK = REPO / "stacks" / "lab"


def lab_env(instance: VcsimInstance, proxmox: Mapping[str, str] | None = None,
            hyperv: HypervInstance | None = None, **overrides: str | None) -> dict[str, str]:
    """The environment of a user who ran ``eval "$(virtplane lab env)"``: the vSphere simulator's
    variables, the Proxmox ones when ``proxmox`` (PROXMOX_VE_* values) is given, and the Hyper-V ones
    (HYPERV_*, switch and CA included) when ``hyperv`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSPHERE_", "PROXMOX_VE_", "HYPERV_"))}
    env.update(instance.environ())
    env.update(proxmox or {})
    env.update(hyperv.environ() if hyperv is not None else {})
    env["COLUMNS"] = "200"
    env["VIRTPLANE_LOCK_DIR"] = tempfile.mkdtemp(prefix="virtplane-locks-")  # one lock space per test
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def virtplane(*args: str, env: dict[str, str], timeout: float = 600,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "virtplane", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def write_stack(directory: Path, program: str, project: str = "scratch") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
    (directory / "__main__.py").write_text(program)
    return directory
