"""Placement under ``pulumi up``: the plugin's Create places a VM that needs devices as ``virtplane plan`` does
(virtplane/placement.py over the endpoint's hosts), over gRPC against the lab's seeded simulators: vcsim
(DC0_C0_H0: an enabled A100 and vGPU profiles), fakepve (pve1: an A100 with mdev types, pve2: an X710 with
SR-IOV virtual functions) and the lab's Hyper-V host (LAB-HV1: a partitionable GPU).
When no host fits, Check reports it as a failure and Create fails with the one sentence naming VM, field and
each host's reason."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support import vsphere as raw_vsphere
from tests.support.plugin import Plugin, unwrap
from tests.support.plugin_peers import started, stopped
from virtplane_lab.hyperv import HypervInstance
from virtplane_lab.vcsim import VcsimInstance

pytestmark = pytest.mark.fakepve(password="pve-Pw9x2-not-shown")
_names = itertools.count()
VSPHERE_HOSTS = ("DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2")
PROXMOX_NODES = ("pve1", "pve2", "pve3")


@pytest.fixture
def vsphere(tmp_path: Path, fresh_vcsim: VcsimInstance) -> Iterator[Plugin]:
    """A simulator of its own: a VM holding a vGPU must not change what other tests can place."""
    plugin = started(tmp_path, {"kind": "vsphere", "server": fresh_vcsim.host, "username": fresh_vcsim.user,
                                "password": fresh_vcsim.password, "ca_file": fresh_vcsim.ca_file})
    yield plugin
    stopped(plugin, fresh_vcsim.password)


@pytest.fixture
def proxmox(tmp_path: Path, fakepve: Any, fakepve_cafile: str) -> Iterator[Plugin]:
    for node in PROXMOX_NODES[1:]:
        fakepve.add_node(node)
    plugin = started(tmp_path, {"kind": "proxmox", "endpoint": fakepve.url, "username": fakepve.user,
                                "password": fakepve.password, "ca_file": fakepve_cafile})
    yield plugin
    stopped(plugin, fakepve.password)


@pytest.fixture
def hyperv(tmp_path: Path, fresh_hyperv: HypervInstance) -> Iterator[Plugin]:
    plugin = started(tmp_path, {"kind": "hyperv", "server": fresh_hyperv.server, "username": fresh_hyperv.user,
                                "password": fresh_hyperv.password, "tls": True, "ca_file": fresh_hyperv.ca_file,
                                "switch": fresh_hyperv.switch})
    yield plugin
    stopped(plugin, fresh_hyperv.password)


@pytest.fixture
def name() -> str:
    return f"g{next(_names)}-gpu"


def vm(**fields: Any) -> dict[str, Any]:
    return {"cpus": 1, "memory": 512, "disks": [{"size": 1}], "power": "off"} | fields


def refused(plugin: Plugin, name: str, inputs: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """Check's failures and Create's error for a VM no host can serve."""
    failures = plugin.check("VirtualMachine", name, inputs)["failures"]
    with pytest.raises(grpc.RpcError) as error:
        plugin.create("VirtualMachine", name, inputs)
    assert error.value.code() is grpc.StatusCode.UNKNOWN
    return failures, str(error.value.details())


def test_a_vgpu_vm_created_through_the_plugin_lands_on_the_vsphere_host_with_the_profile(
        vsphere: Plugin, fresh_vcsim: VcsimInstance, name: str) -> None:
    inputs = vm(firmware="uefi", gpus=[{"mode": "vgpu", "profile": "grid_a100-20c"}])
    assert vsphere.check("VirtualMachine", name, inputs)["failures"] == []
    preview = vsphere.create("VirtualMachine", name, inputs, preview=True)
    assert preview["id"] == ""
    created = vsphere.create("VirtualMachine", name, inputs)
    outputs = unwrap(created["properties"])
    assert outputs["node"] == "DC0_C0_H0"
    assert [(g["mode"], g["profile"]) for g in outputs["gpus"]] == [("vgpu", "grid_a100-20c")]
    with raw_vsphere.admin(fresh_vcsim) as si:
        live = raw_vsphere.find_vm(si, name)
        assert live.runtime.host.name == "DC0_C0_H0"
        assert [d.backing.vgpu for d in live.config.hardware.device
                if isinstance(getattr(d, "backing", None), raw_vsphere.vim.vm.device.VirtualPCIPassthrough
                              .VmiopBackingInfo)] == ["grid_a100-20c"]
    assert vsphere.diff("VirtualMachine", name, created["id"], outputs, inputs)["changes"] == "DIFF_NONE"
    vsphere.delete("VirtualMachine", name, created["id"], outputs)


def test_a_vgpu_profile_no_vsphere_host_offers_fails_check_and_create_with_one_sentence_per_host(
        vsphere: Plugin, fresh_vcsim: VcsimInstance, name: str) -> None:
    failures, message = refused(vsphere, name, vm(gpus=[{"mode": "vgpu", "profile": "grid_z900-1q"}]))
    assert failures == [{"property": "gpus", "reason": message}]
    assert message.startswith(f"VM {name}: field 'gpus': no host of endpoint 'lab' can serve it — ")
    assert "offers no vGPU profile 'grid_z900-1q'" in message and "\n" not in message
    assert all(f"{host}: " in message for host in VSPHERE_HOSTS), message
    with raw_vsphere.admin(fresh_vcsim) as si:
        assert name not in {v.name for v in raw_vsphere.all_vms(si)}


def test_a_vgpu_vm_lands_on_the_proxmox_node_with_the_gpu_and_an_sriov_vm_on_the_one_with_the_nic(
        proxmox: Plugin, fakepve: Any, fakepve_cafile: str, name: str) -> None:
    assert proxmox.check("Network", "plain", {"vlan": 0})["failures"] == []  # how the plugin learns of it
    vgpu = proxmox.create("VirtualMachine", name, vm(gpus=[{"mode": "vgpu", "profile": "nvidia-471"}]))
    nfv = proxmox.create("VirtualMachine", f"{name}-nfv", vm(nics=[{"network": "plain", "adapter": "sriov"}]))
    vgpu_outputs, nfv_outputs = unwrap(vgpu["properties"]), unwrap(nfv["properties"])
    assert vgpu_outputs["node"] == "pve1" and nfv_outputs["node"] == "pve2"
    assert vgpu_outputs["gpus"][0]["device"] == "0000:3b:00.0"
    assert nfv_outputs["nics"][0]["device"] == "0000:5e:00.0"
    for vm_name, created in ((name, vgpu), (f"{name}-nfv", nfv)):
        node = fakepve_node(fakepve, fakepve_cafile, vm_name)
        assert node == unwrap(created["properties"])["node"]
    assert proxmox.diff("VirtualMachine", name, vgpu["id"], vgpu_outputs,
                        vm(gpus=[{"mode": "vgpu", "profile": "nvidia-471"}]))["changes"] == "DIFF_NONE"
    proxmox.delete("VirtualMachine", name, vgpu["id"], vgpu_outputs)
    proxmox.delete("VirtualMachine", f"{name}-nfv", nfv["id"], nfv_outputs)


def test_check_takes_nothing_and_concurrent_creates_never_get_the_last_vgpu_instance_twice(proxmox: Plugin,
                                                                                            name: str) -> None:
    inputs = vm(gpus=[{"mode": "vgpu", "profile": "nvidia-474"}])  # pve1 has one instance of it
    for vm_name in (f"{name}-a", f"{name}-b"):
        assert proxmox.check("VirtualMachine", vm_name, inputs)["failures"] == []

    def create(vm_name: str) -> dict[str, Any] | str:
        try:
            return proxmox.create("VirtualMachine", vm_name, inputs)
        except grpc.RpcError as error:
            return str(error.details())

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(create, [f"{name}-a", f"{name}-b"]))
    made = [o for o in outcomes if isinstance(o, dict)]
    errors = [o for o in outcomes if isinstance(o, str)]
    assert len(made) == 1 and len(errors) == 1, outcomes
    assert unwrap(made[0]["properties"])["node"] == "pve1"
    assert "field 'gpus': no host of endpoint 'lab' can serve it" in errors[0]
    assert "pve1: has no free instance of vGPU profile 'nvidia-474' left" in errors[0]
    [failure] = proxmox.check("VirtualMachine", f"{name}-c", inputs)["failures"]
    assert failure["property"] == "gpus" and "has no free instance of vGPU profile 'nvidia-474'" in failure["reason"]


def test_an_mdev_type_no_proxmox_node_offers_fails_check_and_create_naming_every_node(
        proxmox: Plugin, fakepve: Any, name: str) -> None:
    failures, message = refused(proxmox, name, vm(gpus=[{"mode": "vgpu", "profile": "nvidia-999"}]))
    assert failures == [{"property": "gpus", "reason": message}]
    assert message.startswith(f"VM {name}: field 'gpus': no host of endpoint 'lab' can serve it — ")
    assert all(f"{node}: " in message for node in PROXMOX_NODES)
    assert "pve1: offers no vGPU profile 'nvidia-999' (offered: nvidia-471" in message
    assert "Traceback" not in message and "\n" not in message


def fakepve_node(fakepve: Any, ca_file: str, vm_name: str) -> str:
    """The node the VM is on, asked of the cluster with proxmoxer (as an administrator would)."""
    from urllib.parse import urlsplit

    from proxmoxer import ProxmoxAPI

    address = urlsplit(fakepve.url)
    api = ProxmoxAPI(address.hostname, port=address.port, user=fakepve.user, password=fakepve.password,
                     verify_ssl=ca_file)
    [node] = [r["node"] for r in api.cluster.resources.get(type="vm") if r.get("name") == vm_name]
    return str(node)


def test_a_gpu_partition_vm_gets_the_hyperv_hosts_partitionable_gpu_and_an_unknown_profile_is_refused(
        hyperv: Plugin, fresh_hyperv: HypervInstance, name: str) -> None:
    inputs = vm(gpus=[{"mode": "vgpu", "profile": "gpu-p/4"}])
    created = hyperv.create("VirtualMachine", name, inputs)
    outputs = unwrap(created["properties"])
    assert outputs["node"] == fresh_hyperv.host_name
    assert [(g["profile"], "VEN_10DE" in g["device"]) for g in outputs["gpus"]] == [("gpu-p/4", True)]
    assert hyperv.diff("VirtualMachine", name, created["id"], outputs, inputs)["changes"] == "DIFF_NONE"
    failures, message = refused(hyperv, f"{name}-p", vm(gpus=[{"mode": "vgpu", "profile": "gpu-p/999"}]))
    assert failures == [{"property": "gpus", "reason": message}]
    assert message.startswith(f"VM {name}-p: field 'gpus': no host of endpoint 'lab' can serve it — "
                              f"{fresh_hyperv.host_name}: offers no vGPU profile 'gpu-p/999'")
    hyperv.delete("VirtualMachine", name, created["id"], outputs)
