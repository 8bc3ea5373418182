"""The repository's stacks run under `pulumi up` as they are: Pulumi's Python language host is pointed at the venv
`make deps-python` creates, so no venv has to be activated first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(path.parent for path in (REPO / "stacks").glob("*/Pulumi.yaml"))


def test_the_makefile_makes_the_venv_at_the_repository_root() -> None:
    assert re.search(r"^VENV\s*:=\s*\.venv\s*$", (REPO / "Makefile").read_text(), re.MULTILINE)


@pytest.mark.parametrize("stack", STACKS, ids=[stack.name for stack in STACKS])
def test_each_stack_names_the_repositorys_venv_for_the_python_runtime(stack: Path) -> None:
    runtime = yaml.safe_load((stack / "Pulumi.yaml").read_text())["runtime"]
    assert runtime["name"] == "python"
    assert runtime["options"]["toolchain"] == "pip"
    assert (stack / runtime["options"]["virtualenv"]).resolve() == REPO / ".venv"
