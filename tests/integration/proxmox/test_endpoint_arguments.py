"""A stack whose Proxmox Endpoint gives every setting as an argument needs no PROXMOX_VE_* variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.integration.proxmox.helpers import requests_to
from tests.support.cli import write_stack
from virtplane import apply
from virtplane.engine import build_plan, connected
from virtplane.evaluate import evaluate
from virtplane.redact import MASK, redact

TOKEN_SECRET = "9d2c4e6a-argument-token-secret"
UNUSED_PASSWORD = "4e1f-unused-password-sentinel"  # the token wins; the password must still never show

PROGRAM = '''
import pulumi
import virtplane

pve = virtplane.Endpoint("pve", kind="proxmox", endpoint={url!r}, api_token={token!r}, username={user!r},
                         password={password!r}, ca_file={ca_file!r}, insecure=False, node="pve2",
                         storage="local-lvm", bridge="vmbr0", task_timeout=120, request_timeout=30)
opts = pulumi.ResourceOptions(provider=pve)
app = virtplane.Network("app", vlan=110, opts=opts)
virtplane.VirtualMachine("web1", cpus=1, memory=512, disks=[virtplane.Disk(8)], nics=[virtplane.Nic(app)],
                         opts=opts)
'''


def test_a_stack_giving_every_setting_as_an_endpoint_argument_applies_without_any_environment_variable(
        pve: Any, fakepve_cafile: str, tmp_path: Path, monkeypatch: Any) -> None:
    for variable in [name for name in os.environ if name.startswith("PROXMOX_VE_")]:
        monkeypatch.delenv(variable)
    pve.apitokens["root@pam!ci"] = TOKEN_SECRET
    stack_dir = write_stack(tmp_path / "stack", PROGRAM.format(
        url=pve.url, token=f"root@pam!ci={TOKEN_SECRET}", user=pve.user, password=UNUSED_PASSWORD,
        ca_file=fakepve_cafile))
    desired = evaluate(stack_dir, "dev")
    with connected(desired, environ={}) as providers:
        settings = providers["pve"].settings  # type: ignore[attr-defined]
        assert (settings.node, settings.storage, settings.task_timeout, settings.request_timeout) == (
            "pve2", "local-lvm", 120.0, 30.0)
        result = apply.run(build_plan(desired, providers), providers, parallel=4)
        assert [outcome.error for outcome in result.failed] == []
        assert build_plan(desired, providers).pending == []
    assert redact(f"{TOKEN_SECRET} {UNUSED_PASSWORD}") == f"{MASK} {MASK}"  # both are masked in all output
    [web1] = [vm for vm in pve.vms if vm.name == "web1"]
    assert web1.node == "pve2"  # the endpoint's node argument placed it
    assert web1.config["scsi0"].startswith("local-lvm:") and "tag=110" in web1.config["net0"]
    assert not requests_to(pve, "POST", "/access/ticket")  # the token argument won over username and password
