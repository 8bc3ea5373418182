"""What deleting a libvirt domain removes, named in the plan: the volumes virtplane made for it and its UEFI variables
go with it; a volume attached by hand from elsewhere stays in its pool, and the plan says so."""

from __future__ import annotations

from tests.conformance.stack import Stack
from virtplane import apply
from virtplane.plan import Action


def test_a_deleted_domain_names_what_it_destroys_and_keeps_a_volume_attached_by_hand(qemu_host):
    stack = Stack(qemu_host, "vol").vm("web", cpus=1, memory="256MiB", power="off", firmware="uefi",
                                       disks=[{"size": 1}], nics=[{"network": "default"}])
    stack.apply()
    pool = qemu_host.conn.storagePoolLookupByName("default")
    pool.createXML("<volume><name>shared.qcow2</name><capacity unit='GiB'>1</capacity>"
                   "<target><format type='qcow2'/></target></volume>", 0)
    domain = qemu_host.conn.lookupByName("web")
    domain.attachDeviceFlags("<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
                             "<source pool='default' volume='shared.qcow2'/><target dev='sdb' bus='scsi'/></disk>",
                             2)  # VIR_DOMAIN_AFFECT_CONFIG
    plan = stack.drop("web").plan()
    [gone] = [r for r in plan.resources if r.name == "web"]
    assert gone.action is Action.DELETE
    [made] = gone.volumes.destroyed[:1]
    assert made.startswith("sda (web-") and made.endswith(".qcow2, 1 GiB)")
    assert gone.volumes.destroyed[1:] == ["UEFI variables (boot entries, enrolled keys)"]
    assert gone.volumes.kept == ["sdb (shared.qcow2, 1 GiB), not made by virtplane for this VM"]
    assert not apply.run(plan, {"ep": qemu_host.provider}, allow_data_loss=True).failed
    pool.refresh(0)
    assert [v.name() for v in pool.listAllVolumes(0)] == ["shared.qcow2"]
