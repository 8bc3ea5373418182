"""The lab's private libvirtd: its QEMU emulates (TCG) unless asked for KVM, stopping it ends every process it
started, and starting it again in the same place finds no domain of the last run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from tests.support import libvirt as raw_libvirt
from virtplane_lab import libvirtd


def test_stopping_the_daemon_ends_its_qemu_and_a_new_start_finds_no_domain(tmp_path: Path):
    first = libvirtd.start(tmp_path, network=False)
    try:
        qemu = raw_libvirt.start_tiny_domain(first.uri, "left-behind")
        inside = libvirtd.descendants(first.pid)  # the namespace's init, libvirtd, virtlogd, QEMU
        conn = libvirt.open(first.uri)
        assert conn.getDomainCapabilities(None, "x86_64", "q35", "qemu", 0)  # TCG is what QEMU offers here
        conn.close()
    finally:
        first.stop()
    running = [pid for pid in inside if Path(f"/proc/{pid}/stat").exists()
               and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert len(inside) >= 3 and running == []  # all gone when stop returns, not some moments later
    assert not first.alive() and not raw_libvirt.process_exists(qemu)
    second = libvirtd.start(tmp_path, network=False)
    try:
        assert raw_libvirt.domain_names(second.uri) == []
    finally:
        second.stop()


def test_a_domains_pty_console_gets_a_terminal_of_the_daemons_own_devpts(fresh_libvirtd):
    """QEMU's serial console (and a libvirt-lxc container's) is a pseudo-terminal: the daemon's /dev has a devpts
    instance of its own, so opening one succeeds."""
    conn = libvirt.open(fresh_libvirtd.uri)
    try:
        domain = conn.defineXML(raw_libvirt.plain_domain("tty", "qemu", devices="<serial type='pty'/>"))
        domain.create()
        root = ET.fromstring(domain.XMLDesc(0))
        assert root.find("devices/serial/source").get("path").startswith("/dev/pts/")
    finally:
        conn.close()
