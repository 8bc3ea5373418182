"""The CLI end to end on stacks/lab against a fresh vSphere simulator, Proxmox cluster, Hyper-V host and XenServer pool
per test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from pyVmomi import vim

from tests.support import hyperv, proxmox, vsphere
from tests.support import libvirt as raw_libvirt
from tests.support import xenserver as xen
from tests.support.cli import LAB_STACK, lab_env, virtplane
from virtplane_lab import cli as lab_cli
from virtplane_lab import hyperv as lab_hyperv

DESKTOPS = {pool: [f"{pool}-00{n}" for n in range(1, size + 1)]
            for pool, size in (("lab-vdi", 4), ("lab-pve-vdi", 4), ("lab-hv-vdi", 4), ("lab-xs-vdi", 4))}
VSPHERE_VMS = {"lab-web-1", "lab-web-2", "lab-db", "lab-gpu-ws", "lab-gpu-pt", "lab-sriov", *DESKTOPS["lab-vdi"]}
PROXMOX_VMS = {"lab-pve-web-1", "lab-pve-web-2", "lab-pve-db", "lab-pve-gpu-ws", "lab-pve-gpu-pt", "lab-pve-sriov",
               *DESKTOPS["lab-pve-vdi"]}
HYPERV_VMS = {"lab-hv-web", "lab-hv-db", "Ana's desk", "lab-hv-gpu-ws", "lab-hv-gpu-pt", *DESKTOPS["lab-hv-vdi"]}
XENSERVER_VMS = {"lab-xs-web", "lab-xs-db", "lab-xs-debian", "lab-xs-gpu-ws", "lab-xs-gpu-pt", "lab-xs-sriov",
                 *DESKTOPS["lab-xs-vdi"]}
LIBVIRT_VMS = {"lab-kvm-web", "lab-kvm-db"}
LAB_VMS = VSPHERE_VMS | PROXMOX_VMS | HYPERV_VMS | XENSERVER_VMS | LIBVIRT_VMS
GOLDEN = "lab-golden"  # each endpoint's golden image, made by `virtplane lab up` (virtplane_lab.golden)
PROXMOX_CONTAINERS = {"lab-pve-ct"}
LAB_GUESTS = LAB_VMS | PROXMOX_CONTAINERS  # what a Proxmox listing of guests names: VMs and containers
# Forty-two to create: the vSphere, Proxmox, XenServer and libvirt networks and VMs, the Proxmox container, the five
# Hyper-V VMs and the sixteen desktops. A network on Hyper-V is a VLAN on the host's switch (lab-switch, made by the
# lab), so it exists from the start: unchanged.
TO_CREATE = 45
# The accelerator VMs and the hosts whose seeded hardware serves them (README, "Devices").
DEVICE_HOSTS = {"lab-gpu-ws": "DC0_C0_H0", "lab-gpu-pt": "DC0_C0_H0", "lab-sriov": "DC0_C0_H0",
                "lab-pve-gpu-ws": "pve1", "lab-pve-gpu-pt": "pve2", "lab-pve-sriov": "pve2",
                "lab-hv-gpu-ws": "LAB-HV1", "lab-hv-gpu-pt": "LAB-HV1",
                "lab-xs-gpu-ws": "xs-gpu", "lab-xs-gpu-pt": "xs-gpu", "lab-xs-sriov": "xs-sriov",
                **{name: host for pool, host in (("lab-vdi", "DC0_C0_H0"), ("lab-pve-vdi", "pve1"),
                                                 ("lab-hv-vdi", "LAB-HV1"), ("lab-xs-vdi", "xs-gpu"))
                   for name in DESKTOPS[pool]}}


def test_applying_the_lab_stack_twice_leaves_nothing_to_do(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    first = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert first.returncode == 0, first.stderr
    assert f"{TO_CREATE} to create" in first.stdout
    assert f"Apply complete: {TO_CREATE} succeeded, 0 failed." in first.stdout
    assert set(hyperv.vm_names(fresh_hyperv)) == HYPERV_VMS | {GOLDEN}
    second = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert second.returncode == 0, second.stderr
    assert "Nothing to do." in second.stdout
    assert virtplane("plan", str(LAB_STACK), env=env).returncode == 0
    drift = virtplane("drift", str(LAB_STACK), env=env)
    assert drift.returncode == 0 and "No drift." in drift.stdout


def test_plan_of_a_new_stack_exits_2_and_its_json_follows_the_documented_schema(fresh_vcsim, fresh_pve,
                                                                                fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    result = virtplane("plan", str(LAB_STACK), "--json", env=env)
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == 1 and document["command"] == "plan" and document["stack"] == "lab/dev"
    assert document["summary"]["create"] == TO_CREATE
    assert {r["name"] for r in document["resources"]} == LAB_GUESTS | {"lab-app", "lab-pve-app", "lab-hv-app",
                                                                        "lab-xs-app", "lab-kvm-app"}
    assert {r["name"] for r in document["resources"] if r["kind"] == "Container"} == PROXMOX_CONTAINERS
    assert {r["name"] for r in document["resources"] if r["endpoint"] == "lab-hyperv"} == HYPERV_VMS | {"lab-hv-app"}
    assert set(document["resources"][0]) == {"kind", "name", "endpoint", "action", "power_off", "note", "placement",
                                             "destroys_data", "owned", "changes"}
    placed = {r["name"]: r["placement"] for r in document["resources"] if r["name"] in DEVICE_HOSTS}
    assert placed == DEVICE_HOSTS
    assert [f["level"] for f in document["policy"]["findings"] if f["level"] == "mandatory"] == []


def test_the_accelerator_vms_hold_their_devices_once_applied(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    applied = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for name, host in DEVICE_HOSTS.items():
        assert f" {name} on " in applied.stdout and f"→ host {host}" in applied.stdout
    drift = virtplane("drift", str(LAB_STACK), "--json", env=env)
    assert drift.returncode == 0, drift.stdout + drift.stderr
    with vsphere.admin(fresh_vcsim) as si:
        vgpu = [d for d in vsphere.find_vm(si, "lab-gpu-ws").config.hardware.device
                if isinstance(d, vim.vm.device.VirtualPCIPassthrough)]
        vf = [d for d in vsphere.find_vm(si, "lab-sriov").config.hardware.device
              if isinstance(d, vim.vm.device.VirtualSriovEthernetCard)]
        whole = [d for d in vsphere.find_vm(si, "lab-gpu-pt").config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualPCIPassthrough)]
    assert [d.backing.vgpu for d in vgpu] == ["grid_a100-20c"] and len(vf) == 1
    assert [d.backing.id for d in whole] == ["0000:af:00.0"]  # the L4, fixed DirectPath I/O
    pve = proxmox.admin(env)
    assert "mdev=nvidia-471" in proxmox.qemu(pve, "lab-pve-gpu-ws").config.get()["hostpci0"]
    assert proxmox.qemu(pve, "lab-pve-gpu-pt").config.get()["hostpci0"].startswith("0000:af:00.0")
    assert proxmox.qemu(pve, "lab-pve-sriov").config.get()["hostpci15"].startswith("0000:5e:02.")
    partitions = hyperv.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", "lab-hv-gpu-ws")
                            .add_cmdlet("Get-VMGpuPartitionAdapter"))
    assert len(partitions) == 1
    assigned = hyperv.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", "lab-hv-gpu-pt")
                          .add_cmdlet("Get-VMAssignableDevice"))
    assert [hyperv.prop(d, "LocationPath") for d in assigned] == list(lab_cli.HYPERV_DDA_GPUS)
    with xen.session(fresh_xenserver) as api:
        def held(vm: str) -> list[tuple[str, str]]:
            return [(api.VGPU_type.get_model_name(api.VGPU.get_type(v)),
                     api.PCI.get_pci_id(api.PGPU.get_PCI(api.VGPU.get_resident_on(v))))
                    for v in api.VM.get_VGPUs(xen.vm_named(api, vm))]

        assert held("lab-xs-gpu-ws") == [("GRID A100-4C", "0000:3b:00.0")]
        assert held("lab-xs-gpu-pt") == [("passthrough", "0000:af:00.0")]  # the L4, the only GPU enabled for it
        sriov = xen.vm_named(api, "lab-xs-sriov")
        assert api.host.get_name_label(api.VM.get_resident_on(sriov)) == "xs-sriov"
        [network] = api.network.get_by_name_label("lab-sriov")
        assert network in [api.VIF.get_network(v) for v in api.VM.get_VIFs(sriov)]


def test_out_of_band_changes_are_found_by_drift_and_repaired_by_apply(
        fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    assert virtplane("apply", str(LAB_STACK), "--yes", env=env).returncode == 0
    with vsphere.admin(fresh_vcsim) as si:
        vsphere.reconfigure(vsphere.find_vm(si, "lab-web-1"), vim.vm.ConfigSpec(numCPUs=6))
        vsphere.reconfigure(vsphere.find_vm(si, "lab-db"), vim.vm.ConfigSpec(memoryMB=4096))
        vsphere.remove_first_nic(vsphere.find_vm(si, "lab-web-2"))
    pve = proxmox.admin(env)
    proxmox.qemu(pve, "lab-pve-web-1").config.put(cores=3)
    proxmox.qemu(pve, "lab-pve-db").config.put(memory=2048)
    proxmox.qemu(pve, "lab-pve-web-2").config.put(delete="net0")
    proxmox.lxc(pve, "lab-pve-ct").config.put(memory=2048)
    hyperv.set_cpus(fresh_hyperv, "lab-hv-web", 3)
    hyperv.set_memory(fresh_hyperv, "lab-hv-db", 4096)
    hyperv.remove_nics(fresh_hyperv, "Ana's desk")
    with xen.session(fresh_xenserver) as api:
        web = xen.vm_named(api, "lab-xs-web")
        api.VM.hard_shutdown(web)  # XAPI changes memory only on a halted VM
        api.VM.set_memory_limits(web, *[str(1024**3)] * 4)
        api.VM.start(web, False, False)

    drift = virtplane("drift", str(LAB_STACK), "--json", env=env)
    assert drift.returncode == 2, drift.stderr
    changed = {(r["name"], c["field"], json.dumps(c["old"]), json.dumps(c["new"]))
               for r in json.loads(drift.stdout)["resources"] for c in r["changes"]}
    assert ("lab-web-1", "cpus", "6", "2") in changed
    assert ("lab-db", "memory", "4096", "8192") in changed
    assert ("lab-web-2", "nics[ethernet0]", "null",
            json.dumps({"network": "lab-app", "adapter": None, "device": None, "slot": "ethernet0"})) in changed
    assert ("lab-pve-web-1", "cpus", "3", "2") in changed
    assert ("lab-pve-db", "memory", "2048", "4096") in changed
    assert ("lab-pve-web-2", "nics[net0]", "null",
            json.dumps({"network": "lab-pve-app", "adapter": None, "device": None, "slot": "net0"})) in changed
    assert ("lab-pve-ct", "memory", "2048", "1024") in changed
    assert ("lab-hv-web", "cpus", "3", "2") in changed
    assert ("lab-hv-db", "memory", "4096", "8192") in changed
    assert ("Ana's desk", "nics[nic0]", "null",
            json.dumps({"network": "lab-hv-app", "adapter": None, "device": None, "slot": "nic0"})) in changed
    assert ("lab-xs-web", "memory", "1024", "2048") in changed
    text = virtplane("drift", str(LAB_STACK), env=env)
    assert text.returncode == 2 and "lab-web-1" in text.stdout and "cpus: 6 → 2" in text.stdout

    repair = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert virtplane("drift", str(LAB_STACK), env=env).returncode == 0
    assert hyperv.memory_mib(fresh_hyperv, "lab-hv-db") == 8192
    with xen.session(fresh_xenserver) as api:
        assert api.VM.get_memory_static_max(xen.vm_named(api, "lab-xs-web")) == str(2 * 1024**3)


def test_destroy_removes_what_the_stack_owns_and_nothing_else(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    with vsphere.admin(fresh_vcsim) as si:
        vsphere.create_plain_vm(si, "bystander")
    proxmox.create_plain_vm(proxmox.admin(env), "pve-bystander")
    hyperv.create_plain_vm(fresh_hyperv, "hv-bystander")
    with xen.session(fresh_xenserver) as api:
        xen.new_vm(api, "xs-bystander")
    assert virtplane("apply", str(LAB_STACK), "--yes", env=env).returncode == 0
    destroyed = virtplane("destroy", str(LAB_STACK), "--yes", env=env)
    assert destroyed.returncode == 0, destroyed.stderr
    assert destroyed.stdout.strip().splitlines()[-1].startswith("Destroy complete: ")
    with vsphere.admin(fresh_vcsim) as si:
        names = {vm.name for vm in vsphere.all_vms(si)}
    assert "bystander" in names and not names & LAB_VMS
    pve_names = set(proxmox.vm_names(proxmox.admin(env)))
    assert "pve-bystander" in pve_names and not pve_names & LAB_GUESTS
    assert sorted(hyperv.vm_names(fresh_hyperv)) == ["hv-bystander", GOLDEN]
    assert xen.vm_names(fresh_xenserver) == ["xs-bystander"]
    assert xen.vdi_names(fresh_xenserver) == ["debian-12-base 0"]  # every disk the stack made went with its VM
    # Removing the passthrough VM gave the DDA GPU back to the host: the plan says the host has no GPU dismounted
    # and how to dismount one. Dismounted again (what `virtplane lab up` does on a running lab, so `make lab`
    # converges after a destroy), the stack plans as new.
    assignable = hyperv.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
    assert not set(lab_cli.HYPERV_DDA_GPUS) & {hyperv.prop(d, "LocationPath") for d in assignable}  # NVMe stays
    refused = virtplane("plan", str(LAB_STACK), env=env)
    assert refused.returncode == 1
    assert "lab-hv-gpu-pt" in refused.stderr and "LAB-HV1: has no GPU (Hyper-V lists only GPUs dismounted from " \
        "the host" in refused.stderr and "Dismount-VMHostAssignableDevice -LocationPath" in refused.stderr
    assert lab_hyperv.dismount_devices(fresh_hyperv, lab_cli.HYPERV_DDA_GPUS) == list(lab_cli.HYPERV_DDA_GPUS)
    assert f"{TO_CREATE} to create" in virtplane("plan", str(LAB_STACK), env=env).stdout


def test_a_hand_made_vm_with_a_declared_name_is_never_touched(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    with vsphere.admin(fresh_vcsim) as si:
        vsphere.create_plain_vm(si, "lab-db")
    result = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert result.returncode == 1
    assert "a virtual machine named 'lab-db' already exists" in result.stderr
    assert "not managed by stack 'lab/dev'" in result.stderr
    with vsphere.admin(fresh_vcsim) as si:
        assert vsphere.find_vm(si, "lab-db").config.hardware.numCPU == 1


def test_a_hand_made_proxmox_vm_with_a_declared_name_is_never_touched(
        fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    pve = proxmox.admin(env)
    proxmox.create_plain_vm(pve, "lab-pve-db")
    result = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert result.returncode == 1
    assert "a virtual machine named 'lab-pve-db' already exists on endpoint 'lab-proxmox'" in result.stderr
    assert proxmox.qemu(pve, "lab-pve-db").config.get()["memory"] in (512, "512")
    assert proxmox.vm_names(pve).count("lab-pve-db") == 1


def test_a_hand_made_hyperv_vm_with_a_declared_name_is_never_touched(
        fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    hyperv.create_plain_vm(fresh_hyperv, "Ana's desk")
    result = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert result.returncode == 1
    assert "a virtual machine named 'Ana's desk' already exists on endpoint 'lab-hyperv'" in result.stderr
    assert hyperv.memory_mib(fresh_hyperv, "Ana's desk") == 512
    assert hyperv.vm_names(fresh_hyperv).count("Ana's desk") == 1


def test_apply_off_a_terminal_without_yes_changes_nothing(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    result = virtplane("apply", str(LAB_STACK), env=env)
    assert result.returncode == 1 and "pass --yes" in result.stderr
    with vsphere.admin(fresh_vcsim) as si:
        assert not {vm.name for vm in vsphere.all_vms(si)} & LAB_VMS
    assert not set(proxmox.vm_names(proxmox.admin(env))) & LAB_GUESTS
    assert hyperv.vm_names(fresh_hyperv) == [GOLDEN]
    assert xen.vm_names(fresh_xenserver) == []


def test_an_apply_killed_midway_converges_on_the_next_run_once_its_stale_lock_is_broken(fresh_vcsim, fresh_pve,
                                                                                       fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    command = [sys.executable, "-m", "virtplane", "apply", str(LAB_STACK), "--yes", "--parallel", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    assert process.stderr is not None
    for line in process.stderr:  # kill it right after its first VM is created
        if "created VirtualMachine" in line:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.2)

    # A killed run cannot release its lock: the next run names it as stale and leaves it to the user.
    refused = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert refused.returncode == 1 and "stale lock" in refused.stderr and "--break-lock" in refused.stderr
    again = virtplane("apply", str(LAB_STACK), "--yes", "--break-lock", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert virtplane("drift", str(LAB_STACK), env=env).returncode == 0
    with vsphere.admin(fresh_vcsim) as si:
        names = [vm.name for vm in vsphere.all_vms(si)]
    names += proxmox.vm_names(proxmox.admin(env))
    names += hyperv.vm_names(fresh_hyperv)
    names += xen.vm_names(fresh_xenserver)
    names += raw_libvirt.domain_names(env["LIBVIRT_DEFAULT_URI"])
    assert sorted(n for n in names if n != GOLDEN and (n in LAB_GUESTS or n.startswith(("lab-", "virtplane-pending")))
                  ) == sorted(LAB_GUESTS)
