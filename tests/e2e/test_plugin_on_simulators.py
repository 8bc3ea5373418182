"""pulumi-resource-virtplane over gRPC on the real drivers: vSphere on vcsim (SOAP), Proxmox VE on fakepve
(HTTPS), Hyper-V on our simulator (WinRM/PSRP over HTTPS) and XenServer on ours (XAPI's XML-RPC over HTTPS),
configured as a stack's Endpoint would be (password as a secret). The same protocol as
tests/e2e/test_plugin_protocol.py, on real protocol peers; the peers' own clients (pyvmomi, proxmoxer, pypsrp,
xenapi) check the hypervisor.

These need the drivers' stable-id contract (``Created``, ``Observed.id``, ``observe_ids``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pypsrp.serializer import TaggedValue

from tests.conformance.peers import Peer, ProxmoxPeer, VspherePeer, XenserverPeer
from tests.support import hyperv as raw_hyperv
from tests.support import xenserver as raw_xen
from tests.support.plugin import Plugin, outside_secret_envelopes, unwrap
from virtplane_lab.hyperv import HypervInstance

pytestmark = pytest.mark.fakepve(password="pve-Pw9x2-not-shown")  # a password no reply could hold by chance
_names = itertools.count()
VM = {"cpus": 1, "memory": 512, "disks": [{"size": 1}], "power": "off"}


class HypervPeer:
    """The simulated Hyper-V host through pypsrp, as its administrator would change it."""

    def __init__(self, instance: HypervInstance) -> None:
        self.instance = instance

    def set_memory(self, vm: str, mib: int) -> None:
        raw_hyperv.run(self.instance, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", vm)
                       .add_cmdlet("Set-VMMemory").add_parameter("StartupBytes", TaggedValue("I64", mib * 1024**2)))

    def add_unmanaged_vm(self, name: str) -> None:
        raw_hyperv.create_plain_vm(self.instance, name)

    def count(self, name: str) -> int:
        return raw_hyperv.vm_names(self.instance).count(name)

    def vm_id(self, name: str) -> str:
        [vm] = raw_hyperv.run(self.instance, lambda ps: ps.add_cmdlet("Get-VM").add_parameter("Name", name))
        return str(raw_hyperv.prop(vm, "VMId")).lower()

    def close(self) -> None:
        """Nothing held open: every change is one runspace pool of its own."""


Endpoint = tuple[Peer | HypervPeer, dict[str, Any], str]


@pytest.fixture(params=["vsphere", "proxmox", "hyperv", "xenserver"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    """A peer (its own client for checks) and the Endpoint settings the plugin is configured with."""
    peer: Peer | HypervPeer
    if request.param == "hyperv":
        host: HypervInstance = request.getfixturevalue("fresh_hyperv")
        peer = HypervPeer(host)
        config = {"kind": "hyperv", "server": host.server, "username": host.user, "password": host.password,
                  "tls": True, "ca_file": host.ca_file, "switch": host.switch}
    elif request.param == "xenserver":
        pool = request.getfixturevalue("fresh_xenserver")
        peer = XenserverPeer(pool)
        config = {"kind": "xenserver", "server": pool.url, "username": pool.user, "password": pool.password,
                  "ca_file": pool.ca_file}
    elif request.param == "vsphere":
        instance = request.getfixturevalue("vcsim_instance")
        peer = VspherePeer(instance)
        config = {"kind": "vsphere", "server": instance.host, "username": instance.user,
                  "password": instance.password, "ca_file": instance.ca_file}
    else:
        pve = request.getfixturevalue("fakepve")
        for node in ("pve2", "pve3"):
            pve.add_node(node)
        ca_file = request.getfixturevalue("fakepve_cafile")
        peer = ProxmoxPeer(pve.url, pve.user, pve.password, ca_file)
        config = {"kind": "proxmox", "endpoint": pve.url, "username": pve.user, "password": pve.password,
                  "ca_file": ca_file}
    yield peer, config, config["password"]
    peer.close()


@pytest.fixture
def plugin(tmp_path: Path, endpoint: Endpoint) -> Iterator[Plugin]:
    _peer, config, password = endpoint
    environ = {variable: "" for variable in ("VSPHERE_SERVER", "VSPHERE_PASSWORD", "PROXMOX_VE_ENDPOINT",
                                             "PROXMOX_VE_PASSWORD", "HYPERV_SERVER", "HYPERV_PASSWORD",
                                             "XENSERVER_URL", "XENSERVER_PASSWORD")}
    started = Plugin(tmp_path, environ)
    started.configure("lab", config)
    yield started
    started.stop()
    for reply in started.replies:
        assert password not in outside_secret_envelopes(reply)
    assert password not in started.stderr()
    assert "Traceback" not in started.stderr()


@pytest.fixture
def name() -> str:
    return f"p{next(_names)}-web"


def test_create_read_update_and_delete_a_vm_through_the_plugin(plugin: Plugin, endpoint: Endpoint, name: str
                                                              ) -> None:
    peer = endpoint[0]
    assert plugin.check("VirtualMachine", name, VM)["failures"] == []
    preview = plugin.create("VirtualMachine", name, VM, preview=True)
    assert preview["id"] == "" and unwrap(preview["properties"])["memory"] == 512
    assert peer.count(name) == 0  # a preview touches nothing
    created = plugin.create("VirtualMachine", name, VM)
    object_id, outputs = created["id"], unwrap(created["properties"])
    assert object_id and peer.count(name) == 1
    assert plugin.diff("VirtualMachine", name, object_id, outputs, VM)["changes"] == "DIFF_NONE"

    peer.set_memory(name, 1024)  # behind our back
    refreshed = plugin.read("VirtualMachine", name, object_id, outputs, VM)
    assert refreshed["id"] == object_id and unwrap(refreshed["properties"])["memory"] == 1024
    diff = plugin.diff("VirtualMachine", name, object_id, unwrap(refreshed["properties"]), VM)
    assert diff["detailedDiff"] == {"memory": {"kind": "UPDATE", "inputDiff": False}}

    updated = plugin.update("VirtualMachine", name, object_id, unwrap(refreshed["properties"]), {**VM, "cpus": 2})
    assert unwrap(updated["properties"])["cpus"] == 2 and unwrap(updated["properties"])["memory"] == 512

    plugin.delete("VirtualMachine", name, object_id, unwrap(updated["properties"]))
    assert peer.count(name) == 0
    assert plugin.read("VirtualMachine", name, object_id, outputs, VM)["id"] == ""


def test_an_imported_vm_diffs_clean_and_is_not_deleted_without_our_marker(plugin: Plugin, endpoint: Endpoint,
                                                                         name: str) -> None:
    peer = endpoint[0]
    peer.add_unmanaged_vm(name)
    object_id = _id_of(peer, name)
    imported = plugin.read("VirtualMachine", name, object_id)
    assert imported["id"] == object_id
    inputs = unwrap(imported["inputs"])
    if isinstance(peer, HypervPeer):  # New-VM's adapter is on no switch: no network to declare, left unmanaged
        assert "nics" not in inputs
        assert any("imported without 'nics'" in message for _severity, message, _urn in plugin.engine.logs)
    assert plugin.check("VirtualMachine", name, inputs)["failures"] == []
    assert plugin.diff("VirtualMachine", name, object_id, unwrap(imported["properties"]), inputs)["changes"] \
        == "DIFF_NONE"
    with pytest.raises(grpc.RpcError) as refused:
        plugin.delete("VirtualMachine", name, object_id, unwrap(imported["properties"]))
    message = refused.value.details()
    assert "refusing to delete" in message and "carries no virtplane.owner marker" in message
    assert peer.count(name) == 1


def test_a_refresh_of_several_vms_reads_them_in_one_batched_pass(plugin: Plugin, endpoint: Endpoint, name: str
                                                                 ) -> None:
    created = [plugin.create("VirtualMachine", f"{name}-{n}", VM) for n in range(3)]
    replies = [plugin.read("VirtualMachine", f"{name}-{n}", c["id"], unwrap(c["properties"]), VM)
               for n, c in enumerate(created)]
    assert [r["id"] for r in replies] == [c["id"] for c in created]
    for created_vm in created:
        plugin.delete("VirtualMachine", name, created_vm["id"], unwrap(created_vm["properties"]))


def _id_of(peer: Peer | HypervPeer, name: str) -> str:
    """The hypervisor's own stable id, through its own client: vSphere instance UUID, Proxmox vmid, Hyper-V
    VMId, XenServer VM uuid."""
    if isinstance(peer, HypervPeer):
        return peer.vm_id(name)
    if isinstance(peer, XenserverPeer):
        with raw_xen.session(peer.instance) as api:
            return str(api.VM.get_uuid(raw_xen.vm_named(api, name)))
    if isinstance(peer, VspherePeer):
        from tests.support import vsphere as raw

        return str(raw.find_vm(peer.si, name).config.instanceUuid)
    assert isinstance(peer, ProxmoxPeer)
    return str(peer._find(name)[1])
