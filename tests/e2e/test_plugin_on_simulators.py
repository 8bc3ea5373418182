"""pulumi-resource-virtplane over gRPC on the real drivers: vSphere on vcsim (SOAP), Proxmox VE on fakepve
(HTTPS) and Hyper-V on our simulator (WinRM/PSRP over HTTPS), configured as a stack's Endpoint would be (password
as a secret). The same protocol as tests/e2e/test_plugin_protocol.py, on real protocol peers; the peers' own
clients (pyvmomi, proxmoxer, pypsrp) check the hypervisor.

These need the drivers' stable-id contract (``Created``, ``Observed.id``, ``observe_ids``).
"""

from __future__ import annotations

import itertools

import grpc
import pytest

from tests.conformance.peers import HypervPeer
from tests.support.plugin import Plugin, unwrap
from tests.support.plugin_peers import Endpoint, id_of

pytestmark = pytest.mark.fakepve(password="pve-Pw9x2-not-shown")  # a password no reply could hold by chance
_names = itertools.count()
VM = {"cpus": 1, "memory": 512, "disks": [{"size": 1}], "power": "off"}


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
    object_id = id_of(peer, name)
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
