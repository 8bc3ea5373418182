"""`virtplane import` through the CLI on each simulator: VMs made out of band (a clone with three disks, two NICs on
VLANs and a GPU) become a stack whose plan shows no change; without --adopt nothing is written to the hypervisor and
the plan says the VMs are not owned (and apply refuses to change them); --adopt writes the marker once, and a VM
another stack owns is refused naming that stack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.vsphere.helpers import set_owner_attribute
from tests.support import hyperv, proxmox, vsphere
from tests.support import xenserver as xen
from tests.support.cli import LAB_STACK, lab_env, virtplane, write_stack
from virtplane.evaluate import evaluate
from virtplane.providers.base import MARKER_KEY, Owner

ON = "opts=pulumi.ResourceOptions(provider=ep)"


def made_out_of_band(tmp_path: Path, env: dict[str, str], kind: str, vms: str, networks: str = "") -> None:
    """Make VMs with a throwaway stack `oob` (as another tool would make them: virtplane is as good a tool as any)."""
    program = f"import pulumi\nimport virtplane\nep = virtplane.Endpoint('ep', kind='{kind}')\n{networks}\n{vms}\n"
    result = virtplane("apply", str(write_stack(tmp_path / "oob", program, project="oob")), "--yes", env=env)
    assert result.returncode == 0, result.stderr + result.stdout


def imported(tmp_path: Path, env: dict[str, str], kind: str, *selection: str, name: str = "imported",
             adopt: bool = False) -> tuple[Any, Path]:
    out = tmp_path / name
    result = virtplane("import", "--endpoint-kind", kind, "--endpoint", "ep", *selection, "--out", str(out),
                       *(["--adopt"] if adopt else []), env=env)
    return result, out


def marker_of(si: Any, name: str) -> str:
    """The value of a vSphere VM's virtplane.owner custom attribute ("" when none); the last one wins, as the driver
    reads it (the simulator appends a value per SetField)."""
    manager = si.RetrieveContent().customFieldsManager
    keys = {f.key for f in manager.field if f.name == MARKER_KEY}
    return ([v.value for v in vsphere.find_vm(si, name).customValue if v.key in keys] or [""])[-1]


def summary(text: str) -> str:
    return re.search(r"\d+ to create, .*\.", text).group(0)  # type: ignore[union-attr]


# ---- vSphere ---------------------------------------------------------------------------------------------------

@pytest.fixture
def vsphere_env(fresh_vcsim: Any) -> dict[str, str]:
    return lab_env(fresh_vcsim)


def test_vsphere_vms_made_out_of_band_round_trip_with_no_change_and_are_adopted_once(tmp_path, fresh_vcsim,
                                                                                     vsphere_env):
    with vsphere.admin(fresh_vcsim) as si:
        vsphere.create_plain_vm(si, "imp-tpl")
        vsphere.find_vm(si, "imp-tpl").MarkAsTemplate()
    networks = (f"a = virtplane.Network('imp-a', vlan=110, {ON})\n"
                f"b = virtplane.Network('imp-b', vlan=120, {ON})")
    made_out_of_band(tmp_path, vsphere_env, "vsphere", (
        f"virtplane.VirtualMachine('imp-clone', clone_from='imp-tpl', cpus=2, memory='1GiB', firmware='uefi', "
        f"tags=['imp'], disks=[virtplane.Disk(8), virtplane.Disk(10), virtplane.Disk(12, thin=False)], "
        f"nics=[virtplane.Nic(a), virtplane.Nic(b)], gpus=[virtplane.Gpu('passthrough', device='0000:af:00.0')], "
        f"{ON})\n"
        f"virtplane.VirtualMachine('imp-nested', cpus=2, memory='1GiB', firmware='uefi', secure_boot=True, "
        f"nested_virtualization=True, machine='vmx-13', {ON})\n"
        f"virtplane.VirtualMachine('imp-kept', cpus=1, memory=256, {ON})"), networks)
    with vsphere.admin(fresh_vcsim) as si:  # their markers removed: as if another tool had made them
        for name in ("imp-clone", "imp-nested"):
            set_owner_attribute(si, vsphere.find_vm(si, name), "")

    result, out = imported(tmp_path, vsphere_env, "vsphere", "--select", "imp-clone", "--select", "imp-n*")
    assert result.returncode == 0, result.stderr
    program = (out / "__main__.py").read_text()
    assert "clone_from" not in program and "import_=object_id" in program
    assert "virtplane.Disk(\"12GiB\", storage='LocalDS_0', thin=False, bus='paravirtual', slot='scsi0:2')" in program
    assert "virtplane.Nic('imp-b', adapter='paravirtual', slot='ethernet1')" in program
    assert "virtplane.Gpu('passthrough', device='0000:af:00.0', vendor='nvidia')" in program
    assert "= not owned VirtualMachine imp-clone" in result.stdout

    plan = virtplane("plan", str(out), env=vsphere_env)
    assert plan.returncode == 0, plan.stderr
    assert "not owned VirtualMachine imp-clone" in plan.stdout
    assert summary(plan.stdout) == "0 to create, 0 to update, 0 to replace, 0 to delete, 2 unchanged (2 not owned " \
                                   "by this stack)."
    with vsphere.admin(fresh_vcsim) as si:
        assert marker_of(si, "imp-clone") == ""  # nothing written without --adopt

    (out / "__main__.py").write_text(program.replace("cpus=2,", "cpus=4,"))
    refused = virtplane("apply", str(out), "--yes", env=vsphere_env)
    assert refused.returncode == 1
    assert "refusing to apply: VirtualMachine imp-clone on ep (id " in refused.stderr
    assert "would change cpus, but it exists and is not owned by this stack" in refused.stderr
    with vsphere.admin(fresh_vcsim) as si:
        assert vsphere.find_vm(si, "imp-clone").config.hardware.numCPU == 2

    adopted, again = imported(tmp_path, vsphere_env, "vsphere", "--select", "imp-clone", "--select", "imp-n*",
                              name="adopted", adopt=True)
    assert adopted.returncode == 0, adopted.stderr
    assert "Adopted 2 VMs: they carry the ownership marker of stack adopted/dev now." in adopted.stdout
    with vsphere.admin(fresh_vcsim) as si:
        marker = Owner.decode(marker_of(si, "imp-clone"))
    assert marker == Owner("adopted/dev", "imp-clone", "ep")
    owned = virtplane("plan", str(again), env=vsphere_env)
    assert owned.returncode == 0 and "not owned" not in owned.stdout
    assert summary(owned.stdout) == "0 to create, 0 to update, 0 to replace, 0 to delete, 2 unchanged."

    other = virtplane("import", "--endpoint-kind", "vsphere", "--endpoint", "ep", "--select", "imp-kept", "--out",
                      str(tmp_path / "other"), "--adopt", env=vsphere_env)
    assert other.returncode == 1
    assert "error: VirtualMachine 'imp-kept': refusing to adopt virtual machine imp-kept (id " in other.stderr
    assert "it belongs to stack 'oob/dev' (endpoint 'ep')" in other.stderr


def test_an_imported_stack_declares_what_the_vms_are_field_by_field(tmp_path, fresh_vcsim, vsphere_env):
    made_out_of_band(tmp_path, vsphere_env, "vsphere",
                     f"virtplane.VirtualMachine('imp-web', cpus=4, sockets=2, memory='2GiB', power='off', {ON})")
    result, out = imported(tmp_path, vsphere_env, "vsphere", "--select", "imp-*")
    assert result.returncode == 0, result.stderr
    spec = evaluate(out).resources["VirtualMachine/imp-web"].spec
    assert (spec.cpus, spec.sockets, spec.memory, spec.power, spec.firmware) == (4, 2, 2048, "off", "bios")
    assert evaluate(out).resources["VirtualMachine/imp-web"].import_id is not None


def test_an_import_that_selects_nothing_writes_nothing_and_says_so(tmp_path, vsphere_env):
    result, out = imported(tmp_path, vsphere_env, "vsphere", "--select", "no-such-*")
    assert result.returncode == 1 and not out.exists()
    assert result.stderr.strip() == ("error: no VM on the vsphere endpoint matches --select no-such-*; nothing was "
                                     "written")


# ---- Proxmox VE ------------------------------------------------------------------------------------------------

def test_proxmox_vms_made_out_of_band_round_trip_with_no_change(tmp_path, fresh_vcsim, fresh_pve):
    env = lab_env(fresh_vcsim, proxmox=fresh_pve)
    api = proxmox.admin(env)
    networks = (f"a = virtplane.Network('imp-a', vlan=110, {ON})\n"
                f"b = virtplane.Network('imp-b', vlan=120, {ON})")
    made_out_of_band(tmp_path, env, "proxmox", (
        f"virtplane.VirtualMachine('imp-tpl', cpus=1, memory=512, disks=[virtplane.Disk(8)], power='off', {ON})"),
        networks)
    imp_tpl = proxmox.qemu(api, "imp-tpl")
    imp_tpl.config.post(description="", tags="")  # no longer ours: a template of its own
    imp_tpl.template.post()
    made_out_of_band(tmp_path / "2", env, "proxmox", (
        f"virtplane.VirtualMachine('imp-clone', clone_from='imp-tpl', cpus=2, memory='1GiB', machine='q35', "
        f"firmware='uefi', secure_boot=True, nested_virtualization=True, tags=['imp'], "
        f"disks=[virtplane.Disk(8), virtplane.Disk(10), virtplane.Disk(12, bus='virtio-blk')], "
        f"nics=[virtplane.Nic(a), virtplane.Nic(b, adapter='e1000')], gpus=[virtplane.Gpu('passthrough')], {ON})"),
        networks)
    proxmox.qemu(api, "imp-clone").config.post(description="made by hand", tags="imp")
    proxmox.qemu(api, "imp-clone").config.post(usb0="host=1234:5678")

    result, out = imported(tmp_path, env, "proxmox", "--select", "imp-clone")
    assert result.returncode == 0, result.stderr
    program = (out / "__main__.py").read_text()
    assert "vmbr0_110 = virtplane.Network('vmbr0.110', vlan=110, opts=on_endpoint('vmbr0.110'))" in program
    assert "virtplane.Nic(vmbr0_120, adapter='e1000', slot='net1')" in program
    assert "virtplane.Disk(\"12GiB\", storage='local-lvm', thin=True, bus='virtio-blk', slot='virtio0')" in program
    assert "#   - usb0 (a USB device)" in program
    assert ("VM 'imp-clone': usb0 (a USB device) cannot be expressed in a stack; listed in a comment above it in "
            in result.stderr)
    plan = virtplane("plan", str(out), env=env)
    assert plan.returncode == 0, plan.stderr
    assert summary(plan.stdout) == "0 to create, 0 to update, 0 to replace, 0 to delete, 3 unchanged (1 not owned " \
                                   "by this stack)."
    assert "virtplane.owner" not in str(proxmox.qemu(api, "imp-clone").config.get().get("description"))

    adopted, again = imported(tmp_path, env, "proxmox", "--select", "imp-clone", name="adopted", adopt=True)
    assert adopted.returncode == 0, adopted.stderr
    config = proxmox.qemu(api, "imp-clone").config.get()
    assert config["description"].startswith("virtplane.owner: stack=adopted/dev;endpoint=ep;resource=imp-clone\n")
    assert config["description"].endswith("made by hand") and config["tags"] == "imp;virtplane"
    owned = virtplane("plan", str(again), env=env)
    assert owned.returncode == 0 and summary(owned.stdout).endswith(" 3 unchanged.")


# ---- Hyper-V ---------------------------------------------------------------------------------------------------

def test_hyperv_vms_made_out_of_band_round_trip_with_no_change_and_are_adopted(tmp_path, fresh_vcsim, fresh_hyperv):
    env = lab_env(fresh_vcsim, hyperv=fresh_hyperv)
    networks = (f"a = virtplane.Network('imp-a', vlan=110, {ON})\n"
                f"b = virtplane.Network('imp-b', vlan=120, {ON})")
    made_out_of_band(tmp_path, env, "hyperv", (
        f"virtplane.VirtualMachine('imp-gpu', cpus=4, memory='4GiB', firmware='uefi', secure_boot=True, tags=['imp'], "
        f"disks=[virtplane.Disk(8), virtplane.Disk(10), virtplane.Disk(12, thin=False)], "
        f"nics=[virtplane.Nic(a), virtplane.Nic(b)], gpus=[virtplane.Gpu('vgpu', profile='gpu-p/4')], {ON})\n"
        f"virtplane.VirtualMachine('imp-nested', cpus=2, memory='2GiB', firmware='uefi', nested_virtualization=True, "
        f"disks=[virtplane.Disk(8, bus='paravirtual')], {ON})"), networks)
    for name in ("imp-gpu", "imp-nested"):  # no marker: as if made by hand
        hyperv.run(fresh_hyperv, lambda ps, name=name: ps.add_cmdlet("Get-VM").add_parameter("Name", name)
                   .add_cmdlet("Set-VM").add_parameter("Notes", "made by hand"))

    result, out = imported(tmp_path, env, "hyperv", "--select", "imp-*")
    assert result.returncode == 0, result.stderr
    program = (out / "__main__.py").read_text()
    assert "lab_switch_110 = virtplane.Network('lab-switch.110', vlan=110, opts=on_endpoint('lab-switch.110'))" in \
        program
    assert "virtplane.Gpu('vgpu', profile='gpu-p/4'" in program
    plan = virtplane("plan", str(out), env=env)
    assert plan.returncode == 0, plan.stderr
    assert summary(plan.stdout) == "0 to create, 0 to update, 0 to replace, 0 to delete, 4 unchanged (2 not owned " \
                                   "by this stack)."

    adopted, again = imported(tmp_path, env, "hyperv", "--select", "imp-*", name="adopted", adopt=True)
    assert adopted.returncode == 0, adopted.stderr
    [notes] = [hyperv.prop(vm, "Notes") for vm in hyperv.run(fresh_hyperv, lambda ps: ps.add_cmdlet("Get-VM")
                                                            .add_parameter("Name", "imp-gpu"))]
    assert notes == "virtplane.owner: stack=adopted/dev;endpoint=ep;resource=imp-gpu\nmade by hand"
    owned = virtplane("plan", str(again), env=env)
    assert owned.returncode == 0 and summary(owned.stdout).endswith(" 4 unchanged.")


# ---- XenServer -------------------------------------------------------------------------------------------------

def test_xenserver_vms_made_out_of_band_round_trip_with_no_change_and_are_adopted(tmp_path, fresh_vcsim,
                                                                                  fresh_xenserver):
    env = lab_env(fresh_vcsim, xenserver=fresh_xenserver)
    with xen.session(fresh_xenserver) as api:
        template = xen.new_vm(api, "imp-tpl")
        api.VM.set_is_a_template(template, True)
    networks = (f"a = virtplane.Network('imp-a', vlan=110, {ON})\n"
                f"b = virtplane.Network('imp-b', vlan=120, {ON})")
    made_out_of_band(tmp_path, env, "xenserver", (
        f"virtplane.VirtualMachine('imp-clone', clone_from='imp-tpl', cpus=2, memory='2GiB', firmware='uefi', "
        f"secure_boot=True, tags=['imp'], disks=[virtplane.Disk(8), virtplane.Disk(10), virtplane.Disk(12)], "
        f"nics=[virtplane.Nic(a), virtplane.Nic(b)], gpus=[virtplane.Gpu('vgpu', profile='GRID A100-20C')], {ON})"),
        networks)
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "imp-clone")
        api.VM.remove_from_other_config(vm, MARKER_KEY)
        api.VM.set_tags(vm, ["imp"])

    result, out = imported(tmp_path, env, "xenserver", "--select", "imp-clone")
    assert result.returncode == 0, result.stderr
    plan = virtplane("plan", str(out), env=env)
    assert plan.returncode == 0, plan.stderr + plan.stdout
    assert "0 to create, 0 to update, 0 to replace, 0 to delete," in summary(plan.stdout)
    assert "(1 not owned by this stack)" in summary(plan.stdout)

    adopted, again = imported(tmp_path, env, "xenserver", "--select", "imp-clone", name="adopted", adopt=True)
    assert adopted.returncode == 0, adopted.stderr
    with xen.session(fresh_xenserver) as api:
        vm = xen.vm_named(api, "imp-clone")
        assert api.VM.get_other_config(vm)[MARKER_KEY] == "stack=adopted/dev;endpoint=ep;resource=imp-clone"
        assert sorted(api.VM.get_tags(vm)) == ["imp", "virtplane"]
    owned = virtplane("plan", str(again), env=env)
    assert owned.returncode == 0 and "not owned" not in owned.stdout


# ---- the lab's own VMs -----------------------------------------------------------------------------------------

def test_the_labs_vms_import_with_no_change_on_every_endpoint_and_are_never_adopted_away(
        tmp_path, fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver, golden=True)
    applied = virtplane("apply", str(LAB_STACK), "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for kind in ("vsphere", "proxmox", "hyperv", "xenserver", "libvirt"):
        result, out = imported(tmp_path, env, kind, "--tag", "lab", name=f"lab-{kind}")
        assert result.returncode == 0, result.stderr
        program = (out / "__main__.py").read_text()
        assert "# Owned by stack lab/dev: this stack compares it, never changes it or adopts it." in program
        assert "cloud-init delivered earlier (sha256:" in program or kind not in ("vsphere", "proxmox", "libvirt")
        plan = virtplane("plan", str(out), env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        line = summary(plan.stdout)
        assert line.startswith("0 to create, 0 to update, 0 to replace, 0 to delete, "), (kind, plan.stdout)
        assert "exists, owned by stack 'lab/dev'" in plan.stdout
    refused = virtplane("import", "--endpoint-kind", "vsphere", "--endpoint", "ep", "--select", "lab-db", "--out",
                        str(tmp_path / "steal"), "--adopt", env=env)
    assert refused.returncode == 1 and "it belongs to stack 'lab/dev' (endpoint 'lab-vsphere')" in refused.stderr
    assert virtplane("plan", str(LAB_STACK), env=env).returncode == 0  # the lab still owns all of them


def test_vms_sharing_a_name_are_refused_in_one_sentence_and_nothing_is_written(tmp_path, fresh_vcsim, fresh_hyperv):
    env = lab_env(fresh_vcsim, hyperv=fresh_hyperv)
    hyperv.create_vm(fresh_hyperv, "twin")
    hyperv.create_vm(fresh_hyperv, "twin")  # Hyper-V names are not unique
    result, out = imported(tmp_path, env, "hyperv", "--select", "twin")
    assert result.returncode == 1 and not out.exists()
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: several selected VMs share a name, which a stack cannot declare twice: 'twin' (ids ")
    assert line.endswith("select one of each with --id (nothing was written)")


# ---- libvirt ---------------------------------------------------------------------------------------------------

def test_libvirt_vms_made_out_of_band_round_trip_with_no_change_and_are_adopted(tmp_path, fresh_vcsim):
    """A clone with three disks and two NICs on VLAN networks, on the lab's libvirtd (real QEMU; its host has no GPU
    to give: docs/providers/libvirt.md)."""
    import libvirt

    env = lab_env(fresh_vcsim)
    networks = (f"a = virtplane.Network('imp-a', vlan=110, {ON})\n"
                f"b = virtplane.Network('imp-b', vlan=120, {ON})")
    template = (f"virtplane.VirtualMachine('imp-tpl', cpus=1, memory='256MiB', power='off', "
                f"disks=[virtplane.Disk(1)], {ON})\n")
    made_out_of_band(tmp_path, env, "libvirt", template, networks)
    made_out_of_band(tmp_path / "2", env, "libvirt", template + (
        f"virtplane.VirtualMachine('imp-clone', clone_from='imp-tpl', cpus=2, memory='256MiB', power='off', "
        f"tags=['imp'], disks=[virtplane.Disk(1), virtplane.Disk(2), virtplane.Disk(3, bus='virtio-blk')], "
        f"nics=[virtplane.Nic(a), virtplane.Nic(b, adapter='e1000e')], {ON})"), networks)
    conn = libvirt.open(env["LIBVIRT_DEFAULT_URI"])
    try:  # the clone's marker removed: as if made by hand
        domain = conn.lookupByName("imp-clone")
        domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None,
                           "https://virtplane.dev/xmlns/libvirt/1", libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    finally:
        conn.close()

    result, out = imported(tmp_path, env, "libvirt", "--select", "imp-clone")
    assert result.returncode == 0, result.stderr
    program = (out / "__main__.py").read_text()
    assert "virtplane.Nic('imp-b', adapter='e1000e', slot=" in program and program.count("virtplane.Disk(") == 3
    plan = virtplane("plan", str(out), env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert summary(plan.stdout) == "0 to create, 0 to update, 0 to replace, 0 to delete, 1 unchanged (1 not owned " \
                                   "by this stack)."
    adopted, again = imported(tmp_path, env, "libvirt", "--select", "imp-clone", name="adopted", adopt=True)
    assert adopted.returncode == 0, adopted.stderr
    owned = virtplane("plan", str(again), env=env)
    assert owned.returncode == 0 and summary(owned.stdout) == ("0 to create, 0 to update, 0 to replace, 0 to delete, "
                                                               "1 unchanged.")
