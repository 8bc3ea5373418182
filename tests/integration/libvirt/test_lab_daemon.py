"""The lab's private libvirtd: its QEMU emulates (TCG) unless asked for KVM, stopping it ends every process it
started, and starting it again in the same place finds no domain of the last run."""

from __future__ import annotations

from pathlib import Path

import libvirt

from tests.support import libvirt as raw_libvirt
from virtplane_lab import libvirtd


def test_stopping_the_daemon_ends_its_qemu_and_a_new_start_finds_no_domain(tmp_path: Path):
    first = libvirtd.start(tmp_path, network=False)
    try:
        qemu = raw_libvirt.start_tiny_domain(first.uri, "left-behind")
        conn = libvirt.open(first.uri)
        assert conn.getDomainCapabilities(None, "x86_64", "q35", "qemu", 0)  # TCG is what QEMU offers here
        conn.close()
    finally:
        first.stop()
    assert not first.alive() and not raw_libvirt.process_exists(qemu)
    second = libvirtd.start(tmp_path, network=False)
    try:
        assert raw_libvirt.domain_names(second.uri) == []
    finally:
        second.stop()
