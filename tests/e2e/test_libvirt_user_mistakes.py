"""What a new libvirt user gets wrong, tried through the CLI on real peers: one sentence at plan naming resource and
field (or the endpoint), exit 1, no traceback, and nothing made."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_user_mistakes import assert_one_clear_error
from tests.support import libvirt as raw_libvirt
from tests.support.cli import virtplane, write_stack
from virtplane_lab import libvirtd

NO_SECRET = "libvirt-holds-no-credential-of-virtplanes"  # libvirt authenticates by its own means


def program(vm: str = "", endpoint: str = "") -> str:
    return (
        "import pulumi\nimport virtplane\n"
        f"ep = virtplane.Endpoint('kvm', kind='libvirt'{endpoint})\n"
        "on = pulumi.ResourceOptions(provider=ep)\n"
        f"virtplane.VirtualMachine('web-1', cpus=1, memory='256MiB', disks=[virtplane.Disk(1)], {vm}opts=on)\n"
    )


def env_for(uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBVIRT_")}
    return {**env, "LIBVIRT_DEFAULT_URI": uri, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def host_without_ovmf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[libvirtd.LibvirtInstance]:
    """A second private libvirtd whose QEMU finds no UEFI firmware (as a host without Debian's ovmf)."""
    instance = libvirtd.start(tmp_path_factory.mktemp("no-ovmf"), ovmf=False)
    yield instance
    instance.stop()


def test_a_uri_that_does_not_answer_is_one_sentence_naming_the_endpoint(tmp_path: Path):
    socket = tmp_path / "nobody-listens"
    stack = write_stack(tmp_path / "s", program())
    result = virtplane("plan", str(stack), env=env_for(f"qemu+unix:///system?socket={socket}"))
    assert_one_clear_error(result, "libvirt endpoint 'kvm'", str(socket), "Failed to connect socket",
                           password=NO_SECRET)


def test_a_storage_pool_that_does_not_exist_is_refused_at_plan_naming_the_disk(fresh_libvirtd, tmp_path: Path):
    stack = write_stack(tmp_path / "s", program(endpoint=", storage_pool='fast-nvme'"))
    result = virtplane("plan", str(stack), env=env_for(fresh_libvirtd.uri))
    assert_one_clear_error(result, "VirtualMachine 'web-1'", "disks[0]", "storage pool 'fast-nvme' does not exist",
                           "(pools: default)", password=NO_SECRET)
    assert raw_libvirt.domain_names(fresh_libvirtd.uri) == []


def test_an_mdev_type_the_host_lacks_is_refused_at_plan_naming_the_types_it_has(tmp_path: Path):
    stack = write_stack(tmp_path / "s", program(vm="gpus=[virtplane.Gpu('vgpu', profile='nvidia-999')], "))
    result = virtplane("plan", str(stack), env=env_for(libvirtd.test_driver_uri()))
    assert_one_clear_error(result, "VM web-1", "field 'gpus'", "nvidia-999", "nvidia-471", password=NO_SECRET)


def test_a_uefi_vm_on_a_host_without_ovmf_is_refused_at_plan(host_without_ovmf, tmp_path: Path):
    stack = write_stack(tmp_path / "s", program(vm="firmware='uefi', "))
    result = virtplane("plan", str(stack), env=env_for(host_without_ovmf.uri))
    assert_one_clear_error(result, "VirtualMachine 'web-1'", "field 'firmware'", "no UEFI firmware for QEMU (OVMF)",
                           "ovmf", password=NO_SECRET)
    assert raw_libvirt.domain_names(host_without_ovmf.uri) == []
