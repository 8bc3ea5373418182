"""Issue 8 tried as a new user would, through the CLI on both simulators: clones keep what the stack does
not say, dropped disks are refused, two Endpoints on one backend are refused, the stack file is never
guessed, and a held lock stops a second run."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from pyVmomi import vim

from tests.support import proxmox, vsphere
from tests.support.cli import lab_env, virtplane, write_stack

ON = "opts=pulumi.ResourceOptions(provider=ep)"


def stack_source(kind: str, body: str, endpoints: str = "") -> str:
    return (f"import pulumi\nimport virtplane\nep = virtplane.Endpoint('ep', kind='{kind}')\n{endpoints}"
            f"{body}\n")


def make_uefi_template_vsphere(instance, name: str) -> None:
    with vsphere.admin(instance) as si:
        vsphere.create_plain_vm(si, name)
        vm = vsphere.find_vm(si, name)
        vsphere.reconfigure(vm, vim.vm.ConfigSpec(firmware="efi"))
        vm.MarkAsTemplate()


def make_uefi_template_proxmox(env, name: str) -> None:
    api = proxmox.admin(env)
    vmid = int(api.cluster.nextid.get())
    api.nodes("pve1").qemu.post(vmid=vmid, name=name, memory=512, cores=1, bios="ovmf", scsihw="lsi",
                                scsi0="local-lvm:4", sata0="local-lvm:2")
    api.nodes("pve1").qemu(vmid).template.post()


@pytest.mark.parametrize("kind", ["vsphere", "proxmox"])
def test_a_clone_declaring_only_cpus_and_memory_converges_and_keeps_its_templates_firmware(
        kind, fresh_vcsim, fresh_pve, tmp_path):
    env = lab_env(fresh_vcsim, fresh_pve)
    if kind == "vsphere":
        make_uefi_template_vsphere(fresh_vcsim, "tpl-uefi")
    else:
        make_uefi_template_proxmox(env, "tpl-uefi")
    stack = write_stack(tmp_path / "s", stack_source(
        kind, f"virtplane.VirtualMachine('app-1', cpus=2, memory='1GiB', clone_from='tpl-uefi', {ON})"))
    first = virtplane("apply", str(stack), "--yes", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = virtplane("plan", str(stack), "--json", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    [vm] = [r for r in json.loads(second.stdout)["resources"] if r["name"] == "app-1"]
    assert vm["action"] == "noop"
    if kind == "vsphere":
        with vsphere.admin(fresh_vcsim) as si:
            assert vsphere.find_vm(si, "app-1").config.firmware == "efi"
    else:
        assert proxmox.qemu(proxmox.admin(env), "app-1").config.get().get("bios") == "ovmf"


@pytest.mark.parametrize(("kind", "data_slot"), [("vsphere", "scsi0:1"), ("proxmox", "scsi1")])
def test_dropping_a_data_disk_is_refused_naming_vm_slot_and_size_until_data_loss_is_allowed(
        kind, data_slot, fresh_vcsim, fresh_pve, tmp_path):
    env = lab_env(fresh_vcsim, fresh_pve)
    both = f"virtplane.VirtualMachine('db-1', cpus=1, memory=512, disks=[virtplane.Disk(4), virtplane.Disk(8)], {ON})"
    one = f"virtplane.VirtualMachine('db-1', cpus=1, memory=512, disks=[virtplane.Disk(8)], {ON})"
    stack = write_stack(tmp_path / "s", stack_source(kind, both))
    assert virtplane("apply", str(stack), "--yes", env=env).returncode == 0
    write_stack(stack, stack_source(kind, one))
    plan = virtplane("plan", str(stack), env=env)
    assert "[destroys data]" in plan.stdout
    refused = virtplane("apply", str(stack), "--yes", env=env)
    assert refused.returncode == 1
    assert f"VM db-1 on ep: disk {data_slot} (8 GiB) is no longer declared" in refused.stderr
    assert "--allow-data-loss" in refused.stderr
    still = json.loads(virtplane("plan", str(stack), "--json", env=env).stdout)
    [vm] = [r for r in still["resources"] if r["name"] == "db-1"]
    assert {c["field"] for c in vm["changes"] if c["destroys_data"]} == {f"disks[{data_slot}]"}
    allowed = virtplane("apply", str(stack), "--yes", "--allow-data-loss", env=env)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_two_endpoints_pointing_at_one_vcenter_are_refused_naming_both(fresh_vcsim, tmp_path):
    env = lab_env(fresh_vcsim)
    source = stack_source("vsphere", f"virtplane.VirtualMachine('a', {ON.replace('ep', 'ep2')})",
                          endpoints="ep2 = virtplane.Endpoint('ep2', kind='vsphere')\n")
    result = virtplane("plan", str(write_stack(tmp_path / "s", source)), env=env)
    assert result.returncode == 1
    assert "Endpoints 'ep' and 'ep2' reach the same vsphere backend" in result.stderr


def test_two_endpoints_pointing_at_one_proxmox_cluster_are_refused_naming_both(fresh_vcsim, fresh_pve, tmp_path):
    env = lab_env(fresh_vcsim, fresh_pve)
    source = stack_source("proxmox", f"virtplane.VirtualMachine('a', {ON.replace('ep', 'ep2')})",
                          endpoints="ep2 = virtplane.Endpoint('ep2', kind='proxmox')\n")
    result = virtplane("plan", str(write_stack(tmp_path / "s", source)), env=env)
    assert result.returncode == 1
    assert "Endpoints 'ep' and 'ep2' reach the same proxmox backend" in result.stderr


def test_several_stack_files_without_stack_is_an_error_listing_them(vcsim_instance, tmp_path):
    stack = write_stack(tmp_path / "s", stack_source("vsphere", ""))
    for name in ("dev", "prod"):
        (stack / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    result = virtplane("plan", str(stack), env=lab_env(vcsim_instance))
    assert result.returncode == 1 and "several stack configurations (dev, prod)" in result.stderr


def test_an_apply_while_another_holds_the_stack_lock_is_refused_naming_the_holder(fresh_vcsim, tmp_path,
                                                                                     monkeypatch):
    env = lab_env(fresh_vcsim)
    stack = write_stack(tmp_path / "s", stack_source("vsphere", f"virtplane.VirtualMachine('a', {ON})"))
    lock_dir = env["VIRTPLANE_LOCK_DIR"]
    holder = {"user": "bob", "host": socket.gethostname(), "pid": os.getpid(), "command": "virtplane apply x",
              "started": time.time() - 30}
    first = virtplane("plan", str(stack), "--json", env=env)  # plans never lock
    assert first.returncode == 2
    # The lock file of this stack and backend: take it the way a running apply would.
    from virtplane import lock
    monkeypatch.setenv("VIRTPLANE_LOCK_DIR", lock_dir)
    with vsphere.admin(fresh_vcsim) as si:
        uuid = si.RetrieveContent().about.instanceUuid
    path = lock.lock_path("scratch/dev", f"vsphere:{uuid}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder))
    monkeypatch.delenv("VIRTPLANE_LOCK_DIR")
    refused = virtplane("apply", str(stack), "--yes", env=env)
    assert refused.returncode == 1
    assert "held by a lock of bob@" in refused.stderr and "virtplane apply x" in refused.stderr
    with vsphere.admin(fresh_vcsim) as si:
        assert "a" not in {vm.name for vm in vsphere.all_vms(si)}
