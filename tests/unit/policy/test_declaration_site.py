"""Each declared resource remembers the file and line of the stack program that declared it (for SARIF)."""

from pathlib import Path

from tests.support.cli import write_stack
from virtplane.evaluate import evaluate

PROGRAM = '''import pulumi
import virtplane
import fleet

vc = virtplane.Endpoint("vc", kind="vsphere")
virtplane.VirtualMachine("direct", cpus=1, memory=512, opts=pulumi.ResourceOptions(provider=vc))
fleet.make(vc)
'''
FLEET = '''import pulumi
import virtplane


def make(endpoint):
    return [virtplane.VirtualMachine(f"fleet-{i}", cpus=1, memory=512,
                                     opts=pulumi.ResourceOptions(provider=endpoint)) for i in range(2)]
'''


def test_a_resource_declared_in_the_program_or_a_helper_beside_it_keeps_that_file_and_line(tmp_path: Path):
    stack_dir = write_stack(tmp_path / "s", PROGRAM)
    (stack_dir / "fleet.py").write_text(FLEET)
    desired = evaluate(stack_dir)
    direct = desired.resources["VirtualMachine/direct"]
    assert (Path(direct.file or "").name, direct.line) == ("__main__.py", 6)
    fleet = desired.resources["VirtualMachine/fleet-1"]
    assert (Path(fleet.file or "").name, fleet.line) == ("fleet.py", 6)
    assert Path(fleet.file or "").resolve().parent == stack_dir.resolve()
