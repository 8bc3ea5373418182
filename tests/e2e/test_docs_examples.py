"""Every complete stack example in the docs plans on the lab as written.

A complete example is a fenced block with the info string ``python stack`` in README.md or docs/ (fragments are
plain ``python`` blocks). Each is written as a stack directory (Pulumi.yaml + __main__.py) and planned with the
``virtplane`` command against the simulators the suite starts for the lab (vcsim, the fake Proxmox VE cluster with
the lab's hardware, the simulated Hyper-V host and XenServer pool), in the environment
``eval "$(virtplane lab env)"`` gives: it must plan with exit 0 or 2, say no error, and hold no mandatory policy
finding (which would make ``apply`` refuse it).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from tests.support.cli import lab_env, virtplane, write_stack

REPO = Path(__file__).resolve().parents[2]
STACK_BLOCK = re.compile(r"^```python stack[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def stack_examples() -> list[pytest.param]:
    """Each ``python stack`` block, named by its file and the line its fence opens on."""
    examples = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for match in STACK_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            examples.append(pytest.param(match.group(1), id=f"{path.relative_to(REPO)}:{line}"))
    return examples


def test_the_readme_and_the_docs_hold_stack_examples():
    ids = [example.id for example in stack_examples()]
    assert any(name.startswith("README.md:") for name in ids), ids
    assert any(name.startswith("docs/") for name in ids), ids


@pytest.mark.parametrize("program", stack_examples())
def test_every_stack_example_in_the_docs_plans_on_the_lab(program, fresh_vcsim, fresh_pve, fresh_hyperv,
                                                          fresh_xenserver, tmp_path, monkeypatch):
    stack = write_stack(tmp_path / "stack", program, project="docs-example")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # lab_env's lock directory goes under tmp_path
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    result = virtplane("plan", str(stack), "--json", env=env)
    output = result.stdout + result.stderr
    assert result.returncode in (0, 2), output  # 0: nothing to do; 2: a plan with changes
    assert "error" not in output.lower(), output
    findings = json.loads(result.stdout).get("policy", {}).get("findings", [])
    blocking = [f"{f['rule']} on {f['resource']}: {f['message']}" for f in findings
                if f["level"] == "mandatory" and not f.get("waived")]
    assert blocking == [], "apply would refuse this example"
