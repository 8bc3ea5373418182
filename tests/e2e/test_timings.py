"""`VIRTPLANE_TIMINGS=1` makes plan and drift say where their time went, on stderr, without touching stdout."""

from __future__ import annotations

import json
import re

from tests.support.cli import lab_env, virtplane, write_stack

PROGRAM = """
import pulumi
import virtplane
ep = virtplane.Endpoint("lab", kind="vsphere")
virtplane.VirtualMachine("timed", cpus=1, memory="512MiB", opts=pulumi.ResourceOptions(provider=ep))
"""
PHASES = ["interpreter + imports", "evaluate", "connect", "policy", "diff", "read", "report"]


def test_drift_prints_its_phases_on_stderr_and_its_json_alone_on_stdout(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", PROGRAM)
    result = virtplane("drift", str(stack), "--json", env=lab_env(vcsim_instance, VIRTPLANE_TIMINGS="1"))
    assert result.returncode == 2, result.stderr  # the VM is declared, not made: drift
    assert json.loads(result.stdout)["drift"] is True
    [line] = [line for line in result.stderr.splitlines() if line.startswith("timings: ")]
    found = re.findall(r"([a-z +]+) (\d+\.\d{3}) s", line[len("timings: "):])
    assert [name.strip(" ·") for name, _ in found] == [*PHASES, "total"]
    seconds = [float(value) for _, value in found]
    assert abs(sum(seconds[:-1]) - seconds[-1]) < 0.01


def test_without_the_variable_nothing_is_said(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", PROGRAM)
    result = virtplane("drift", str(stack), "--json", env=lab_env(vcsim_instance, VIRTPLANE_TIMINGS=None))
    assert result.returncode == 2 and "timings:" not in result.stderr
