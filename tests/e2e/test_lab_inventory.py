"""`virtplane inventory stacks/lab` as a user runs it against the lab's three simulators: one sorted document
without timestamps (schema virtplane.inventory/1) naming every host by the stack's Endpoint, and hosts whose seeded
hardware differs (README, "Inventory")."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.cli import LAB_STACK, lab_env, virtplane

ENDPOINTS = {"lab-vsphere", "lab-proxmox", "lab-hyperv", "lab-xenserver", "lab-libvirt"}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\b1[6-9]\d{8}(\.\d+)?\b")


def keys_sorted_everywhere(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(keys_sorted_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(keys_sorted_everywhere(v) for v in value)
    return True


def at_rest(text: str) -> str:
    """An inventory with the libvirt host's free memory blanked (a real machine's, it moves between two reads)."""
    document = json.loads(text)
    for host in document["hosts"]:
        if host["hypervisor"] == "libvirt":
            host["memory_free_mib"] = None
    return json.dumps(document, sort_keys=True)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {host["name"]: host for host in document["hosts"]}


def test_the_lab_inventory_names_every_endpoints_hosts_and_reads_the_same_twice(
        vcsim_instance, fresh_pve, fresh_hyperv, fresh_xenserver, tmp_path):
    env = lab_env(vcsim_instance, fresh_pve, fresh_hyperv, fresh_xenserver)
    first = virtplane("inventory", str(LAB_STACK), env=env)
    assert first.returncode == 0, first.stderr
    second = virtplane("inventory", str(LAB_STACK), env=env)
    out = tmp_path / "inventory.json"
    written = virtplane("inventory", str(LAB_STACK), "--out", str(out), env=env)
    assert written.returncode == 0, written.stderr
    # The lab's libvirt host is this machine: its free memory is a reading of the moment, the rest reads the same.
    assert (at_rest(second.stdout) == at_rest(first.stdout) == at_rest(out.read_text()))

    document = json.loads(first.stdout)
    assert document["schema"] == "virtplane.inventory/1"
    assert {host["endpoint"] for host in document["hosts"]} == ENDPOINTS
    assert [(h["endpoint"], h["name"]) for h in document["hosts"]] == sorted(
        (h["endpoint"], h["name"]) for h in document["hosts"])
    assert keys_sorted_everywhere(document)
    for host in document["hosts"]:
        assert [d["address"] for d in host["pci_devices"]] == sorted(d["address"] for d in host["pci_devices"])
        assert [s["address"] for s in host["sriov"]] == sorted(s["address"] for s in host["sriov"])
    assert not TIMESTAMP.search(first.stdout)
    assert not any(re.search("time|date|generated", key) for host in document["hosts"] for key in host)


def test_the_lab_inventory_tells_a_gpu_host_an_sriov_host_and_a_plain_host_apart(vcsim_instance, fresh_pve,
                                                                                   fresh_hyperv, fresh_xenserver):
    env = lab_env(vcsim_instance, fresh_pve, fresh_hyperv, fresh_xenserver)
    result = virtplane("inventory", str(LAB_STACK), env=env)
    assert result.returncode == 0, result.stderr
    hosts = by_name(json.loads(result.stdout))
    assert {name: host["endpoint"] for name, host in hosts.items()} == {
        "DC0_C0_H0": "lab-vsphere", "DC0_C0_H1": "lab-vsphere", "DC0_C0_H2": "lab-vsphere",
        "pve1": "lab-proxmox", "pve2": "lab-proxmox", "pve3": "lab-proxmox", "LAB-HV1": "lab-hyperv",
        "xs-gpu": "lab-xenserver", "xs-sriov": "lab-xenserver", "xs-plain": "lab-xenserver",
        **{host: "lab-libvirt" for host, found in hosts.items() if found["hypervisor"] == "libvirt"}}
    assert [found["product"] for found in hosts.values() if found["hypervisor"] == "libvirt"] == [
        "QEMU/KVM through libvirt 9.0"]

    def gpus(host: dict[str, Any]) -> list[tuple[str, bool | None]]:
        return [(d["address"], d["passthrough_enabled"]) for d in host["pci_devices"]
                if d["class_id"].startswith("0x03")]

    # GPU hosts: a whole A100 enabled for passthrough and vGPU / mdev / partition profiles; H0 also has an L4 to
    # give whole and a second A100, and LAB-HV1's DDA GPU is listed since the lab dismounts it from the host at start.
    assert gpus(hosts["DC0_C0_H0"]) == [("0000:3b:00.0", True), ("0000:af:00.0", True), ("0000:d8:00.0", True)]
    assert "grid_a100-20c" in {v["profile"] for v in hosts["DC0_C0_H0"]["vgpu_types"]}
    assert gpus(hosts["pve1"]) == [("0000:3b:00.0", True), ("0000:d8:00.0", True)]  # the T4 is render-9's
    assert "nvidia-471" in {v["profile"] for v in hosts["pve1"]["vgpu_types"]}
    assert {v["profile"] for v in hosts["LAB-HV1"]["vgpu_types"]} == {"gpu-p/1", "gpu-p/2", "gpu-p/4", "gpu-p/8"}
    assert "PCIROOT(0)#PCI(0300)#PCI(0000)" in {d["address"] for d in hosts["LAB-HV1"]["pci_devices"]}
    # A GPU that is capable but not enabled is told apart from one that is.
    assert gpus(hosts["DC0_C0_H1"]) == [("0000:41:00.0", False), ("0000:61:00.0", True), ("0000:a1:00.0", True)]
    # SR-IOV hosts: a physical function with SR-IOV on; pve2's GPUs (an A2, an L4) have no mdev types.
    assert [(s["address"], s["enabled"], s["vfs_enabled"]) for s in hosts["DC0_C0_H0"]["sriov"]] == [
        ("0000:5e:00.0", True, 8)]
    assert [(s["address"], s["enabled"]) for s in hosts["pve2"]["sriov"]] == [("0000:5e:00.0", True)]
    assert gpus(hosts["pve2"]) == [("0000:86:00.0", True), ("0000:af:00.0", True)]
    assert hosts["pve2"]["vgpu_types"] == []
    assert hosts["pve2"]["pci_mappings"][0]["id"] == "x710-vf"
    # Plain hosts: nothing to pass through, and what they lack is a "no", not an unknown.
    for name in ("DC0_C0_H2", "pve3"):
        assert gpus(hosts[name]) == [] and hosts[name]["sriov"] == [] and hosts[name]["vgpu_types"] == []
        assert hosts[name]["nested"] is False
    assert hosts["DC0_C0_H2"]["hardware_virtualization"] is False
    assert hosts["pve3"]["iommu"] is False
    # The XenServer pool: xs-gpu's A100 offers GRID types (passthrough supported, not enabled) and its L4 is enabled
    # for passthrough; xs-sriov's X710 has SR-IOV on (8 VFs free) and offers no nested virtualization; xs-plain has
    # no IOMMU, and its BMC display is a GPU that cannot be given away.
    assert gpus(hosts["xs-gpu"]) == [("0000:3b:00.0", False), ("0000:af:00.0", True)]
    assert {v["profile"]: v["available"] for v in hosts["xs-gpu"]["vgpu_types"]} == {
        "GRID A100-4C": 10, "GRID A100-10C": 4, "GRID A100-20C": 2}
    assert [(s["address"], s["enabled"], s["vfs_free"]) for s in hosts["xs-sriov"]["sriov"]] == [
        ("0000:5e:00.0", True, 8)]
    assert (hosts["xs-gpu"]["nested"], hosts["xs-sriov"]["nested"], hosts["xs-plain"]["nested"]) == (True, False, True)
    assert (hosts["xs-plain"]["iommu"], gpus(hosts["xs-plain"])) == (False, [("0000:03:00.0", False)])
    assert hosts["xs-gpu"]["slat"] is None  # XAPI does not say: unknown, not "no"
