"""The modules (modules/) work unchanged under both executors: the example stacks planned, applied and free of drift
by the CLI on the lab; the same components through the plugin's gRPC interface as `pulumi up` drives it, registered
as components whose children are virtplane resources of their own names."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pytest

from tests.conformance.peers import VspherePeer
from tests.support.cli import REPO, lab_env, virtplane
from tests.support.mini_engine import up
from tests.support.plugin import Plugin
from virtplane_lab import golden

EXAMPLES = {"gpu-workstation": ["ws-esx", "ws-pve", "ws-hv", "ws-xs"],
            "sriov-appliance": ["fw-esx", "fw-pve", "fw-xs"],
            "nested-lab": ["nest-esx", "nest-pve", "nest-hv", "nest-xs"]}
_names = itertools.count()


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_each_module_example_stack_applies_on_the_lab_with_its_vms_under_their_own_names(
        example, fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver):
    env = lab_env(fresh_vcsim, fresh_pve, fresh_hyperv, fresh_xenserver)
    stack = REPO / "stacks" / example
    planned = virtplane("plan", str(stack), "--json", env=env)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    document = json.loads(planned.stdout)
    assert [r["name"] for r in document["resources"] if r["kind"] == "VirtualMachine"] == EXAMPLES[example]
    assert all(r["placement"] for r in document["resources"])  # each placed on a host that can serve it
    assert [f for f in document["policy"]["findings"] if f["level"] == "mandatory"] == []
    applied = virtplane("apply", str(stack), "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    drift = virtplane("drift", str(stack), env=env)
    assert drift.returncode == 0 and "No drift." in drift.stdout


def test_a_modules_own_mistake_is_one_sentence_naming_the_module_and_field(tmp_path, fresh_vcsim):
    from tests.support.cli import write_stack

    stack = write_stack(tmp_path / "bad", textwrap.dedent("""\
        import pulumi
        import virtplane
        from virtplane.modules import GpuWorkstation, NestedLab, SriovAppliance

        esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
        on_esx = pulumi.ResourceOptions(provider=esx)
        GpuWorkstation("ws", opts=on_esx)
        NestedLab("nest", memory="2GiB", opts=on_esx)
        SriovAppliance("fw", ports=[("DC0_DVPG0", 0)], opts=on_esx)
        """))
    result = virtplane("plan", str(stack), env=lab_env(fresh_vcsim))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: GpuWorkstation 'ws': field 'profile': is required for a vGPU workstation (e.g. 'grid_a100-20c'), or "
        "set passthrough=True for a whole GPU",
        "error: NestedLab 'nest': field 'memory': a guest hypervisor needs at least 8192 MiB (8GiB); got '2GiB'",
        "error: SriovAppliance 'fw': field 'ports[0]': expected (network, count) with a count of at least 1, got "
        "('DC0_DVPG0', 0)"]


PROGRAMS = {
    "GpuWorkstation": ("from virtplane.modules import GpuWorkstation\n"
                       "GpuWorkstation('{name}', profile='grid_a100-20c', memory='4GiB', disk='10GiB', opts=on_esx)\n",
                       "virtplane:modules:GpuWorkstation"),
    "SriovAppliance": ("from virtplane.modules import SriovAppliance\n"
                       "SriovAppliance('{name}', ports=[('DC0_DVPG0', 2)], memory='2GiB', opts=on_esx)\n",
                       "virtplane:modules:SriovAppliance"),
    "NestedLab": ("from virtplane.modules import NestedLab\n"
                  "NestedLab('{name}', memory='8GiB', disk='10GiB', opts=on_esx)\n", "virtplane:modules:NestedLab"),
    "DesktopPool": ("virtplane.DesktopPool('{name}', template='lab-golden', size=2, memory='1GiB', opts=on_esx)\n",
                    "virtplane:index:DesktopPool"),
}


def applied(tmp_path: Path, plugin: Plugin, endpoint: str, module: str, programs: dict[str, tuple[str, str]],
            name: str) -> tuple[dict[str, tuple[str, dict]], list[str]]:
    """``module``'s program of ``programs`` run through the plugin on the Endpoint ``endpoint`` (``kind=…``, made
    available to the program as ``on_esx`` or ``on_kvm``); its VMs each checked registered under the component."""
    body, component = programs[module]
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi\nimport virtplane\n"
                       f"ep = virtplane.Endpoint({endpoint})\n"
                       "on_esx = on_kvm = pulumi.ResourceOptions(provider=ep)\n" + body.format(name=name))
    created, urns = up(program, plugin)
    vms = sorted(vm for vm in created if vm.startswith(name) and not vm.endswith("-net"))
    assert vms == ([f"{name}-001", f"{name}-002"] if module == "DesktopPool" else [name])
    for vm in vms:
        assert any(urn.endswith(f"{component}$virtplane:index:VirtualMachine::{vm}") for urn in urns), urns
    assert any(urn.endswith(f"{component}::{name}") for urn in urns)
    return created, vms


@pytest.fixture
def vsphere_plugin(tmp_path: Path, vcsim_instance):
    peer = VspherePeer(vcsim_instance)
    golden.seed_vsphere(peer.si)
    plugin = Plugin(tmp_path, {"VSPHERE_SERVER": "", "VSPHERE_PASSWORD": ""})
    plugin.configure("lab-vsphere", {"kind": "vsphere", "server": vcsim_instance.host,
                                     "username": vcsim_instance.user, "password": vcsim_instance.password,
                                     "ca_file": vcsim_instance.ca_file})
    yield plugin, peer
    plugin.stop()
    peer.close()
    assert "Traceback" not in plugin.stderr()


@pytest.mark.parametrize("module", list(PROGRAMS))
def test_each_module_is_applied_through_the_plugin_as_a_component_of_virtplane_resources(
        module, vsphere_plugin, tmp_path):
    plugin, peer = vsphere_plugin
    name = f"m{next(_names)}"
    created, vms = applied(tmp_path, plugin, "'lab-vsphere', kind='vsphere'", module, PROGRAMS, name)
    assert {peer.count(vm) for vm in vms} == {1}
    if module == "DesktopPool":
        assert {created[vm][1]["clone_from"] for vm in vms} == {"lab-golden"}
    elif module in ("GpuWorkstation", "NestedLab"):
        assert created[name][1]["firmware"] == "uefi"


def test_under_pulumi_a_desktops_new_template_is_a_diff_the_engine_replaces_it_for(vsphere_plugin, tmp_path):
    plugin, _peer = vsphere_plugin
    name = f"m{next(_names)}"
    program = tmp_path / "__main__.py"
    program.write_text("import pulumi\nimport virtplane\n"
                       "esx = virtplane.Endpoint('lab-vsphere', kind='vsphere')\n"
                       f"virtplane.DesktopPool('{name}', template='lab-golden', size=1, memory='1GiB', "
                       "opts=pulumi.ResourceOptions(provider=esx))\n")
    created, _ = up(program, plugin)
    object_id, outputs = created[f"{name}-001"]
    news = {"memory": 1024, "power": "on", "linked_clone": True, "clone_from": "lab-golden-v2"}
    diff = plugin.diff("VirtualMachine", f"{name}-001", object_id, outputs, news)
    # an update of clone_from: the desktop's replaceOnChanges (DesktopPool) makes the engine re-clone it
    assert diff["detailedDiff"] == {"cloneFrom": {"kind": "UPDATE", "inputDiff": False}}  # Pulumi's wire name
    assert plugin.diff("VirtualMachine", f"{name}-001", object_id, outputs, {**news, "clone_from": "lab-golden"}
                       )["changes"] == "DIFF_NONE"


KVM_PROGRAMS = {
    "GpuWorkstation": ("from virtplane.modules import GpuWorkstation\n"
                       "GpuWorkstation('{name}', profile='nvidia-471', memory='1GiB', disk='2GiB', opts=on_kvm)\n",
                       "virtplane:modules:GpuWorkstation"),
    "SriovAppliance": ("from virtplane.modules import SriovAppliance\n"
                       "net = virtplane.Network('{name}-net', vlan=42, opts=on_kvm)\n"
                       "SriovAppliance('{name}', ports=[(net, 2)], memory='1GiB', disk='2GiB', opts=on_kvm)\n",
                       "virtplane:modules:SriovAppliance"),
    "DesktopPool": ("virtplane.DesktopPool('{name}', template='golden', size=2, memory='256MiB', power='off', "
                    "opts=on_kvm)\n", "virtplane:index:DesktopPool"),
}


@pytest.mark.parametrize("module", list(KVM_PROGRAMS))
def test_each_module_is_applied_through_the_plugin_on_libvirt(module, tmp_path, fresh_libvirtd):
    """GPUs and SR-IOV on libvirt's test driver (its node file has an A100 and an X710; the plugin's one connection
    keeps its world), desktops cloned from a golden image on the lab's libvirtd with QEMU."""
    from tests.conformance.peers import LibvirtPeer
    from virtplane_lab import libvirtd

    devices = module != "DesktopPool"
    plugin = Plugin(tmp_path, {"LIBVIRT_DEFAULT_URI": ""})
    plugin.configure("lab-libvirt", {"kind": "libvirt",
                                     "uri": libvirtd.test_driver_uri() if devices else fresh_libvirtd.uri})
    if not devices:
        peer = LibvirtPeer(fresh_libvirtd.uri)
        peer.add_golden("golden")
    name = f"k{next(_names)}"
    try:
        created, vms = applied(tmp_path, plugin, "'lab-libvirt', kind='libvirt'", module, KVM_PROGRAMS, name)
    finally:
        plugin.stop()
    assert "Traceback" not in plugin.stderr()
    if module == "GpuWorkstation":
        outputs = created[name][1]
        assert (outputs["firmware"], outputs["gpus"][0]["profile"]) == ("uefi", "nvidia-471")
    elif module == "SriovAppliance":
        assert [nic["adapter"] for nic in created[name][1]["nics"]] == ["sriov", "sriov"]
    else:
        assert {peer.count(vm) for vm in vms} == {1}
        assert {created[vm][1]["clone_from"] for vm in vms} == {"golden"}
        assert {created[vm][1]["linked_clone"] for vm in vms} == {True}
        peer.close()


def test_a_nested_lab_on_a_libvirt_host_without_kvm_is_refused_at_plan_in_one_sentence(tmp_path, fresh_libvirtd):
    """The lab's libvirtd runs QEMU with TCG: no host-passthrough CPU, so no nested virtualization."""
    from tests.support import libvirt as raw_libvirt
    from tests.support.cli import user_env, write_stack

    stack = write_stack(tmp_path / "nest", textwrap.dedent("""\
        import pulumi
        import virtplane
        from virtplane.modules import NestedLab

        kvm = virtplane.Endpoint("lab-libvirt", kind="libvirt")
        NestedLab("kvm-nest", memory="8GiB", disk="4GiB", networks=["default"],
                  opts=pulumi.ResourceOptions(provider=kvm))
        """))
    env = user_env({"LIBVIRT_DEFAULT_URI": fresh_libvirtd.uri})
    for command in ("plan", "apply"):
        result = virtplane(command, str(stack), *(["--yes"] if command == "apply" else []), env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert [line for line in result.stderr.splitlines() if line.strip()] == [
            "error: VM kvm-nest: field 'nested_virtualization': no host of endpoint 'lab-libvirt' can serve it — "
            f"{raw_libvirt_host(fresh_libvirtd.uri)}: does not support nested virtualization"]
    assert raw_libvirt.domain_names(fresh_libvirtd.uri) == []


def raw_libvirt_host(uri: str) -> str:
    from virtplane.providers.registry import provider_class

    kind = provider_class("libvirt")
    provider = kind.connect(kind.settings_from("probe", {"uri": uri}, {}))
    try:
        return provider.hosts()[0].name
    finally:
        provider.close()
