"""A new user's first hour, tried again: every mistake of the stack is one clear sentence at plan, all at once; a
failing `--json` command still prints JSON; destroy and interrupts say what happened."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.support import hyperv
from tests.support.cli import lab_env, virtplane, write_stack

MISTAKES = """import pulumi
import virtplane

esx = virtplane.Endpoint("esx", kind="vsphere")
pve = virtplane.Endpoint("pve", kind="proxmox")
on_esx = pulumi.ResourceOptions(provider=esx)

virtplane.VirtualMachine("web-1", cpus=2, memory="4GB", tags="web", opts=on_esx)
virtplane.VirtualMachine("db-1", cpus=2, firmwear="uefi",
                         disks=[virtplane.Disk("20GiB"), virtplane.Disk("40GiB", bus="floppy")], opts=on_esx)
virtplane.VirtualMachine("My_VM1", cpus=1, opts=pulumi.ResourceOptions(provider=pve))
virtplane.Network("app", vlan=5000, opts=on_esx)
virtplane.VirtualMachine("fine-1", cpus=1, nics=virtplane.Nic("app"), opts=on_esx)
"""
EXPECTED = [
    "error: VirtualMachine 'web-1': field 'memory': got '4GB': decimal units (GB, powers of 1000) are not accepted, "
    "sizes are binary; write '4GiB' (GiB, powers of 1024); field 'tags': expected a list, got the string 'web'; "
    "write ['web']",
    "error: VirtualMachine 'db-1': field 'firmwear': unknown field (did you mean 'firmware'?); field 'disks[1].bus': "
    "got 'floppy'; ",
    "error: VirtualMachine 'My_VM1': field 'name': must be a DNS name on Proxmox VE: letters, digits and '-' in "
    "dot-separated labels, each starting and ending with a letter or digit (no '_', no spaces); e.g. 'My-VM1'",
    "error: Network 'app': field 'vlan': ",
    "error: VirtualMachine 'fine-1': field 'nics': expected a list of virtplane.Nic(...) items, got one "
    "virtplane.Nic(...); write nics=[virtplane.Nic(...)]",
]


def test_every_mistake_of_a_stack_is_one_sentence_at_plan_all_at_once(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "mistakes", MISTAKES)
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == len(EXPECTED), result.stderr
    for line, expected in zip(lines, EXPECTED, strict=True):
        assert line.startswith(expected), (line, expected)
    assert "disks.1" not in result.stderr


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_plan_and_drift_json_print_a_json_error_document_on_stdout(vcsim_instance, tmp_path, command):
    stack = write_stack(tmp_path / "mistakes", MISTAKES)
    result = virtplane(command, str(stack), "--json", env=lab_env(vcsim_instance))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert (document["schema"], document["command"]) == (1, command)
    assert document["error"].splitlines()[0].startswith("VirtualMachine 'web-1': field 'memory'")
    assert [(e["resource"], e["field"]) for e in document["errors"]] == [
        ("VirtualMachine/web-1", "memory"), ("VirtualMachine/web-1", "tags"), ("VirtualMachine/db-1", "firmwear"),
        ("VirtualMachine/db-1", "disks[1].bus"), ("VirtualMachine/My_VM1", "name"), ("Network/app", "vlan"),
        ("VirtualMachine/fine-1", "nics")]
    assert result.stderr.count("error: ") == 5  # people still read the sentences on stderr


def test_a_connection_failure_under_json_is_a_json_error_without_a_resource(vcsim_instance, tmp_path, closed_port):
    stack = write_stack(tmp_path / "s", "import virtplane\nvirtplane.Network('net-json', vlan=7)\n")
    port = closed_port
    result = virtplane("drift", str(stack), "--json",
                       env=lab_env(vcsim_instance, VSPHERE_SERVER=f"127.0.0.1:{port}"))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["errors"] == [{"resource": None, "field": None, "message": document["error"]}]
    assert document["error"] == f"cannot reach vSphere at 127.0.0.1:{port}: Connection refused"


def test_an_unreachable_hyperv_host_says_connection_refused_as_vsphere_does(vcsim_instance, tmp_path, closed_port):
    stack = write_stack(tmp_path / "s", "import virtplane\nvirtplane.Network('app', vlan=7)\n")
    (stack / "Pulumi.dev.yaml").write_text("config:\n  virtplane:kind: hyperv\n")
    port = closed_port
    env = lab_env(vcsim_instance, HYPERV_SERVER=f"127.0.0.1:{port}", HYPERV_USERNAME="ops",
                  HYPERV_PASSWORD="Sentinel-Pw-1", HYPERV_TLS="false")
    result = virtplane("plan", str(stack), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: cannot reach Hyper-V at 127.0.0.1:{port} (endpoint 'default'): "
                                      "Connection refused")


def test_the_default_provider_style_plans_applies_and_destroys_as_under_pulumi_up(vcsim_instance, tmp_path):
    """No Endpoint in the program: the resources go to the default endpoint, configured by `virtplane:*` stack
    config (the connection comes from the environment), and its objects are marked endpoint=default."""
    stack = write_stack(tmp_path / "default-style", (
        "import virtplane\n"
        "net = virtplane.Network('fh-default-net', vlan=31)\n"
        "virtplane.VirtualMachine('fh-default-vm', cpus=1, memory='512MiB', power='off', nics=[virtplane.Nic(net)])\n"),
        project="firsthour")
    (stack / "Pulumi.dev.yaml").write_text("config:\n  virtplane:kind: vsphere\n  virtplane:datastore: LocalDS_0\n")
    env = lab_env(vcsim_instance)
    applied = virtplane("apply", str(stack), "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "VirtualMachine fh-default-vm on default" in applied.stdout
    assert virtplane("drift", str(stack), env=env).returncode == 0
    from tests.support import vsphere

    with vsphere.admin(vcsim_instance) as si:
        [vm] = [vm for vm in vsphere.all_vms(si) if vm.name == "fh-default-vm"]
        markers = {value.value for value in vm.customValue}
    assert "stack=firsthour/dev;endpoint=default;resource=fh-default-vm" in markers

    destroyed = virtplane("destroy", str(stack), "--yes", env=env)
    assert destroyed.returncode == 0, destroyed.stderr
    assert destroyed.stdout.strip().splitlines()[-1] == "Destroy complete: 2 succeeded, 0 failed."


INTERRUPTED = """import pulumi
import virtplane
hv = virtplane.Endpoint("hv", kind="hyperv")
on_hv = pulumi.ResourceOptions(provider=hv)
for i in range(4):
    virtplane.VirtualMachine(f"fh-int-{i}", cpus=1, memory="512MiB", power="off", opts=on_hv)
"""


def test_an_interrupted_apply_lists_the_creates_that_finished_and_the_next_run_converges(vcsim_instance,
                                                                                         fresh_hyperv, tmp_path):
    stack = write_stack(tmp_path / "interrupted", INTERRUPTED)
    env = lab_env(vcsim_instance, hyperv=fresh_hyperv)
    fresh_hyperv.control("fault", slow="New-VM", seconds=1.0)  # an apply that is still running when Ctrl-C comes
    try:
        process = subprocess.Popen([sys.executable, "-m", "virtplane", "apply", str(stack), "--yes", "--parallel",
                                    "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "created VirtualMachine" in line:
                break
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        fresh_hyperv.control("clear")
    assert process.returncode == 1, "".join(seen) + rest
    assert "Traceback" not in rest and "interrupted after these changes were made:" in rest
    listed = {line.split()[2] for line in rest.splitlines() if line.startswith("  created VirtualMachine ")}
    assert listed and listed == set(hyperv.vm_names(fresh_hyperv))  # exactly what exists, and all of it
    assert "Run the same command again to converge." in rest

    again = virtplane("apply", str(stack), "--yes", env=env)  # the lock was released: no --break-lock
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(hyperv.vm_names(fresh_hyperv)) == [f"fh-int-{i}" for i in range(4)]
