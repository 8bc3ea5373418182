"""Cloud-init on Proxmox VE: a cloud-init drive with PVE's own options, or cicustom snippets on a snippets storage,
read back through PVE's API (the drive's dump) and by digest."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

import pytest

from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import changes_to, converge, create, declared, qemu, vm_spec
from virtplane import cloudinit
from virtplane.errors import ProviderError
from virtplane.providers.base import FieldChange

NATIVE_USER = "#cloud-config\nhostname: web1\nuser: ops\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3 ops@lab\n"
NETWORK = ("version: 2\nethernets:\n  first: {addresses: [10.1.0.5/24], gateway4: 10.1.0.1,\n"
           "    nameservers: {addresses: [10.1.0.2], search: [lab.example]}}\n")
CUSTOM_USER = "#cloud-config\nhostname: web1\npackages: [nginx]\nruncmd: [systemctl start nginx]\n"


def cloud_init(user: str, network: str | None = None, name: str = "web1") -> dict[str, Any]:
    network_map = cloudinit.network_mapping(network) if network else None
    meta = cloudinit.dump(cloudinit.default_meta_data(name, user, network_map))
    return {"user_data": user, "meta_data": meta, "network_config": network}


@pytest.fixture
def snippets(pve: Any, tmp_path) -> str:
    """A snippets storage on the fake cluster whose directory is here, as a mounted share would be."""
    pve.add_snippets_storage("snips", str(tmp_path / "snips"))
    return str(tmp_path / "snips" / "snippets")


@pytest.fixture
def with_snippets(environ: dict[str, str], snippets: str):
    connected = connect(environ, snippets_storage="snips", snippets_path=snippets)
    yield connected
    connected.close()


def test_cloud_init_pve_options_can_carry_goes_as_ciuser_sshkeys_and_ipconfig(provider, stack, raw):
    spec = vm_spec(cloud_init=cloud_init(NATIVE_USER, NETWORK))
    observed = create(provider, stack, "web1", spec)
    config = qemu(raw, "web1").config.get()
    assert config["ide2"].startswith("local-lvm:") and "cloudinit" in config["ide2"]
    assert config["ciuser"] == "ops" and unquote(config["sshkeys"]) == "ssh-ed25519 AAAAC3 ops@lab"
    assert config["ipconfig0"] == "ip=10.1.0.5/24,gw=10.1.0.1" and config["ciupgrade"] == 0
    assert config["nameserver"] == "10.1.0.2" and config["searchdomain"] == "lab.example"
    assert "cicustom" not in config
    dump = qemu(raw, "web1").cloudinit.dump.get(type="user")
    assert "user: ops" in dump and "ssh-ed25519 AAAAC3 ops@lab" in dump
    assert observed.state["cloud_init"] == spec.cloud_init.digest
    assert changes_to(provider, stack, "web1", spec) == {}


def test_cloud_init_that_says_more_goes_as_snippets_the_drive_serves(with_snippets, stack, raw, snippets):
    spec = vm_spec(cloud_init=cloud_init(CUSTOM_USER))
    observed = create(with_snippets, stack, "web1", spec)
    config = qemu(raw, "web1").config.get()
    assert config["cicustom"].startswith("user=snips:snippets/virtplane-") and ",meta=snips:snippets/" in config[
        "cicustom"]
    assert "ciuser" not in config
    assert qemu(raw, "web1").cloudinit.dump.get(type="user") == CUSTOM_USER
    assert observed.state["cloud_init"] == spec.cloud_init.digest


def test_a_changed_template_rewrites_the_snippet_and_regenerates_the_drive(with_snippets, stack, raw):
    create(with_snippets, stack, "web1", vm_spec(power="on", cloud_init=cloud_init(CUSTOM_USER)))
    motd = "write_files: [{path: /etc/motd, content: hi}]\n"
    changed = vm_spec(power="on", cloud_init=cloud_init(CUSTOM_USER + motd))
    assert set(changes_to(with_snippets, stack, "web1", changed)) == {"cloud_init"}
    converge(with_snippets, stack, "web1", changed)
    assert qemu(raw, "web1").cloudinit.dump.get(type="user").endswith("content: hi}]\n")
    assert changes_to(with_snippets, stack, "web1", changed) == {}


def test_switching_from_snippets_to_options_deletes_the_snippets_and_the_cicustom_key(with_snippets, stack, raw,
                                                                                      snippets):
    create(with_snippets, stack, "web1", vm_spec(cloud_init=cloud_init(CUSTOM_USER)))
    assert len(os.listdir(snippets)) == 2  # user and meta
    native = vm_spec(cloud_init=cloud_init(NATIVE_USER))
    converge(with_snippets, stack, "web1", native)
    config = qemu(raw, "web1").config.get()
    assert "cicustom" not in config and config["ciuser"] == "ops"
    assert os.listdir(snippets) == []
    assert changes_to(with_snippets, stack, "web1", native) == {}


def test_options_changed_behind_our_back_are_drift_by_digest(provider, stack, raw):
    spec = vm_spec(cloud_init=cloud_init(NATIVE_USER))
    create(provider, stack, "web1", spec)
    qemu(raw, "web1").config.post(ciuser="root")
    assert set(changes_to(provider, stack, "web1", spec)) == {"cloud_init"}
    converge(provider, stack, "web1", spec)
    assert qemu(raw, "web1").config.get()["ciuser"] == "ops"


def test_deleting_the_vm_deletes_its_snippets(with_snippets, stack, snippets):
    observed = create(with_snippets, stack, "web1", vm_spec(cloud_init=cloud_init(CUSTOM_USER)))
    with_snippets.driver("VirtualMachine").delete(observed)
    assert os.listdir(snippets) == []


def test_snippets_without_a_snippets_storage_are_refused_at_plan_in_one_sentence(provider):
    spec = vm_spec(cloud_init=cloud_init(CUSTOM_USER))
    [(field, message)] = provider.driver("VirtualMachine").check(spec, declared({"web1": spec}))
    assert field == "cloud_init"
    assert message.startswith("says more than PVE's cloud-init options (ciuser, sshkeys, ciupgrade, ipconfigN, "
                              "nameserver, searchdomain) can carry, so it goes as cicustom snippets: set "
                              "snippets_storage= and snippets_path= on the Endpoint")


def test_a_snippets_storage_without_the_snippets_content_type_is_named(environ, pve, tmp_path):
    pve.add_snippets_storage("snips", str(tmp_path / "s"))
    pve.storages["snips"]["content"] = "iso"
    connected = connect(environ, snippets_storage="snips", snippets_path=str(tmp_path / "s" / "snippets"))
    spec = vm_spec(cloud_init=cloud_init(CUSTOM_USER))
    [(_, message)] = connected.driver("VirtualMachine").check(spec, declared({"web1": spec}))
    assert message.endswith("but storage 'snips' does not hold snippets (its content is iso; add 'snippets' to it)")


def test_the_fake_refuses_a_cicustom_snippet_that_does_not_exist(provider, stack, raw):
    create(provider, stack, "web1", vm_spec())
    with pytest.raises(Exception, match=r"volume 'local:snippets/none\.yaml' does not exist"):
        qemu(raw, "web1").config.post(cicustom="user=local:snippets/none.yaml")


def test_a_vm_without_a_free_ide_slot_cannot_get_a_drive_says_so_and_is_left_as_it_was(provider, stack, raw):
    disks = [{"size": 1, "bus": "ide", "slot": f"ide{n}"} for n in range(4)]
    observed = create(provider, stack, "web1", vm_spec(disks=disks))
    before = qemu(raw, "web1").config.get()
    change = FieldChange("cloud_init", observed.state["cloud_init"], "sha256:new")
    with pytest.raises(ProviderError, match="cannot give VM web1 a cloud-init drive: ide0 to ide3 are all taken"):
        provider.driver("VirtualMachine").update(observed, vm_spec(disks=disks, cloud_init=cloud_init(NATIVE_USER)),
                                                 [change])
    assert qemu(raw, "web1").config.get() == before
