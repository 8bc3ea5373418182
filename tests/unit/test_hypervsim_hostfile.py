"""Host description files for the Hyper-V simulator (virtplane_lab.hypervsim.hostfile): the lab's built-in hosts
are such files, YAML and JSON describe the same host, and a wrong file is one sentence naming it and the key."""

from __future__ import annotations

import json

import pytest
import yaml

from virtplane_lab.hypervsim import hostfile


@pytest.mark.parametrize(("name", "vendor", "build", "iov"), [
    ("gpu", "Intel", 26100, True), ("sriov", "AMD", 26100, True), ("plain", "Intel", 20348, False)])
def test_the_labs_hosts_are_description_files(name, vendor, build, iov):
    host = hostfile.load(name)
    assert (host.cpu_vendor, host.build, host.iov_support) == (vendor, build, iov)
    assert hostfile.builtin(name).suffix == ".yaml"


def test_the_gpu_host_carries_a_dda_nvme_drive_already_dismounted_and_gpus_with_their_bars():
    devices = {d.name: d for d in hostfile.load("gpu").pci_devices}
    nvme = devices["Samsung PM1733 NVMe SSD"]
    assert (nvme.pnp_class, nvme.state, nvme.enabled) == ("SCSIAdapter", "dismounted", False)
    assert devices["NVIDIA H100 PCIe"].mmio_bytes == 128 * 1024**3


def test_yaml_and_json_describe_the_same_host(tmp_path):
    data = yaml.safe_load(hostfile.builtin("sriov").read_text())
    (tmp_path / "h.json").write_text(json.dumps(data))
    assert hostfile.load(str(tmp_path / "h.json")) == hostfile.load("sriov")


@pytest.mark.parametrize(("text", "message"), [
    ("cpu: {vendor: AMD}\n", "unknown key 'cpu.vendor'"),
    ("devices: [{name: x, class: Display}]\n", "devices[0].instance_id is required"),
    ("memory: {total_gib: lots}\n", "a value has the wrong kind"),
    ("versions: {supported: ['9.0'], default: '10.0'}\n", "versions.default 10.0 is not among versions.supported"),
    ("- a list\n", "expected a mapping of sections"),
])
def test_a_wrong_description_is_one_sentence_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(hostfile.HostFileError) as caught:
        hostfile.load(str(path))
    assert message in str(caught.value) and "bad.yaml" in str(caught.value) and "\n" not in str(caught.value)


def test_a_name_that_is_neither_a_file_nor_a_builtin_host_says_which_hosts_exist():
    with pytest.raises(hostfile.HostFileError, match=r"neither a file nor a built-in host \(gpu, plain, sriov\)"):
        hostfile.load("gpu2")
