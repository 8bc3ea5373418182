"""Every Proxmox volume that holds data is named before it is destroyed: the EFI vars disk a secure-boot change
re-makes, every volume a delete removes (disks, efidisk0, tpmstate0, unusedN); what PVE lets us keep is kept (the
EFI vars disk across a firmware change), and a delete removes only the volumes the VM's configuration references
(never a leftover of an earlier VM with the same VMID, never a backup or HA job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance.stack import ENDPOINT, Stack
from tests.integration.proxmox.helpers import qemu
from tests.integration.proxmox.transports import CountInFlight, wrap
from virtplane import apply
from virtplane.errors import VirtplaneError
from virtplane.plan import Action
from virtplane.providers.proxmox.provider import ProxmoxProvider


@dataclass
class Endpoint:
    provider: ProxmoxProvider
    kind: str = "proxmox"


def one_vm(provider: ProxmoxProvider, **fields: Any) -> Stack:
    values = {"cpus": 1, "memory": 512, "disks": [{"size": 8}], "node": "pve1", "power": "off"}
    return Stack(Endpoint(provider), "vols").vm("web1", **(values | fields))


def efidisk(raw: Any) -> str:
    return str(qemu(raw, "web1").config.get()["efidisk0"])


def run(stack: Stack, **kwargs: Any) -> apply.ApplyResult:
    result = apply.run(stack.plan(), {ENDPOINT: stack.peer.provider}, **kwargs)
    assert not result.failed, [o.error for o in result.failed]
    return result


def test_turning_secure_boot_on_re_makes_the_efi_vars_disk_so_it_is_marked_naming_it_and_refused(provider, raw):
    run(one_vm(provider, firmware="uefi", secure_boot=False))
    before = efidisk(raw)
    volume = before.split(",")[0]
    stack = one_vm(provider, firmware="uefi", secure_boot=True)
    [item] = stack.plan().resources
    [change] = item.changes
    assert change.change.path == "secure_boot" and change.destroys_data
    assert change.destroys == (f"efidisk0 ({volume}): the EFI variables (boot entries, enrolled secure boot keys); "
                               "PVE enrolls the keys only when it makes the EFI vars disk (pre-enrolled-keys)",)
    with pytest.raises(apply.DataLossRefused, match=f"changing secure_boot destroys efidisk0 \\({volume}\\)"):
        apply.run(stack.plan(), {ENDPOINT: provider})
    assert efidisk(raw) == before
    run(stack, allow_data_loss=True)
    assert "pre-enrolled-keys=1" in efidisk(raw)
    assert stack.changes() == {}


def test_a_firmware_change_keeps_the_efi_vars_disk_and_back_to_uefi_finds_it_again(provider, raw):
    run(one_vm(provider, firmware="uefi", secure_boot=True))
    before = efidisk(raw)
    to_bios = one_vm(provider, firmware="bios")
    [item] = to_bios.plan().resources
    assert [(c.change.path, c.destroys_data) for c in item.changes] == [("firmware", False)]
    run(to_bios)
    assert efidisk(raw) == before and qemu(raw, "web1").config.get()["bios"] == "seabios"
    assert to_bios.changes() == {}
    back = one_vm(provider, firmware="uefi")
    run(back)
    assert efidisk(raw) == before and back.changes() == {}
    assert one_vm(provider, firmware="uefi", secure_boot=True).changes() == {}  # its keys are still enrolled


def test_a_delete_names_every_volume_it_removes_and_keeps_a_leftover_of_an_earlier_vm_with_the_same_vmid(
        provider, raw):
    run(one_vm(provider, firmware="uefi", disks=[{"size": 8}, {"size": 2}]))
    vm = qemu(raw, "web1")
    vmid = next(int(r["vmid"]) for r in raw.cluster.resources.get(type="vm") if r["name"] == "web1")
    vm.config.post(tpmstate0="local-lvm:1,version=v2.0")
    vm.config.post(delete="scsi1")  # detached by hand: now unused0
    raw.nodes("pve1").storage("local-lvm").content.post(vmid=vmid, filename=f"vm-{vmid}-disk-9", size="1G")
    config = vm.config.get()
    gone = Stack(Endpoint(provider), "vols")
    [item] = gone.plan().resources
    assert item.action is Action.DELETE
    named = " ".join(item.volumes.destroyed)
    for key in ("scsi0", "efidisk0", "tpmstate0", "unused0"):
        assert f"{key} ({str(config[key]).split(',')[0]}" in named, key
    assert "detached" in named  # unused0 is said to be a disk no longer attached
    with pytest.raises(apply.DataLossRefused, match="tpmstate0"):
        apply.run(gone.plan(), {ENDPOINT: provider})
    sent = wrap(provider, CountInFlight)
    run(gone, allow_data_loss=True)
    volumes = {v["volid"] for v in raw.nodes("pve1").storage("local-lvm").content.get()}
    assert volumes == {f"local-lvm:vm-{vmid}-disk-9"}
    [delete] = [url for method, url in sent.urls if method == "DELETE"]
    assert "purge" not in delete and "destroy-unreferenced-disks" not in delete  # backup and HA jobs left alone


def make_template(raw: Any, name: str = "tpl", disks: int = 1) -> None:
    vmid = int(raw.cluster.nextid.get())
    more = {"scsi1": "local-lvm:4"} if disks > 1 else {}
    raw.nodes("pve1").qemu.post(vmid=vmid, name=name, memory=512, cores=1, scsihw="virtio-scsi-single",
                                scsi0="local-lvm:4", **more)
    raw.nodes("pve1").qemu(vmid).template.post()


def add_storage(raw: Any, name: str = "extra") -> None:
    raw.storage.post(storage=name, type="dir", path=f"/srv/{name}", content="images")


def clone_of(provider: ProxmoxProvider, **fields: Any) -> Stack:
    return Stack(Endpoint(provider), "clones").vm("app1", clone_from="tpl", cpus=1, memory=512, **fields)


def test_a_clone_declaring_its_disk_on_another_storage_converges_in_one_apply(provider, raw):
    make_template(raw)
    add_storage(raw)
    stack = clone_of(provider, disks=[{"size": 4, "storage": "extra"}])
    run(stack)
    assert stack.changes() == {}
    assert str(qemu(raw, "app1").config.get()["scsi0"]).startswith("extra:")


@pytest.mark.parametrize(("disks", "linked", "field", "fragment"), [
    ([{"size": 4, "bus": "sata"}], False, "disks[0].bus", "keeps its disk scsi0's bus ('paravirtual')"),
    ([{"size": 2}], False, "disks[0].size", "disk scsi0 of 'tpl' is 4 GiB; a clone's disk can grow, never shrink"),
    ([{"size": 4, "storage": "extra"}], True, "disks[0].storage", "keeps its disk scsi0's storage ('local-lvm')"),
    ([{"size": 4, "storage": "extra"}, {"size": 4, "storage": "local-lvm"}], False, "disks",
     "a Proxmox full clone puts every disk it copies on one storage"),
])
def test_what_a_proxmox_clone_cannot_make_of_its_template_is_refused_at_plan_in_one_sentence(
        provider, raw, disks, linked, field, fragment):
    make_template(raw, disks=2)
    add_storage(raw)
    stack = clone_of(provider, disks=disks, linked_clone=linked)
    with pytest.raises(VirtplaneError) as refused:
        stack.plan()
    assert f"field '{field}'" in str(refused.value) and fragment in str(refused.value)
    assert not [row for row in raw.cluster.resources.get(type="vm") if "app1" in str(row.get("name"))]
