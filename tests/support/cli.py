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
from virtplane_lab.xenserver import XenserverInstance

REPO = Path(__file__).resolve().parents[2]
LAB_STACK = REPO / "stacks" / "lab"
# Where the tests' lock spaces go: a directory of pytest's own for the session (tests/conftest.py sets it).
LOCK_ROOT: Path | None = None


def lab_env(instance: VcsimInstance, proxmox: Mapping[str, str] | None = None,
            hyperv: HypervInstance | None = None, xenserver: XenserverInstance | None = None,
            golden: bool = False, **overrides: str | None) -> dict[str, str]:
    """The environment of a user who ran ``eval "$(virtplane lab env)"``: the vSphere simulator's
    variables, the Proxmox ones when ``proxmox`` (PROXMOX_VE_* values) is given, the Hyper-V ones
    (HYPERV_*, switch and CA included) when ``hyperv`` is given, the XenServer ones when ``xenserver`` is, and
    LIBVIRT_DEFAULT_URI of the session's libvirt daemon, emptied for this test (unless ``LIBVIRT_DEFAULT_URI=None``
    is given). ``golden``: the golden images ``virtplane lab up`` makes (lab-golden, for desktop pools) are made
    first."""
    if golden:
        from virtplane_lab import golden as images

        images.seed(instance, dict(proxmox) if proxmox else None, hyperv)
    env = dict(instance.environ())
    if "LIBVIRT_DEFAULT_URI" not in overrides:
        from tests.support import lab_libvirt

        env["LIBVIRT_DEFAULT_URI"] = lab_libvirt.fresh().uri
    env.update(proxmox or {})
    env.update(hyperv.environ() if hyperv is not None else {})
    env.update(xenserver.environ() if xenserver is not None else {})
    return user_env(env, **overrides)


def user_env(variables: Mapping[str, str], **overrides: str | None) -> dict[str, str]:
    """This process's environment without any endpoint's variables, plus ``variables``, a wide terminal and a lock
    space of the test's own; ``overrides`` set variables (None: unset them)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VSPHERE_", "PROXMOX_VE_", "HYPERV_", "XENSERVER_", "LIBVIRT_"))}
    env.update(variables)
    env["COLUMNS"] = "200"
    assert LOCK_ROOT is not None, "tests/conftest.py sets the session's lock root"
    env["VIRTPLANE_LOCK_DIR"] = tempfile.mkdtemp(prefix="locks-", dir=LOCK_ROOT)  # one lock space per test
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def assert_one_clear_error(result: subprocess.CompletedProcess[str], *fragments: str, secrets: list[str]) -> None:
    """Exit 1 with one line on stderr holding every fragment, no traceback, and none of the secrets anywhere."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for secret in secrets:
        assert secret not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def virtplane(*args: str, env: dict[str, str], timeout: float = 600,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "virtplane", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def write_stack(directory: Path, program: str, project: str = "scratch") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
    (directory / "__main__.py").write_text(program)
    return directory
