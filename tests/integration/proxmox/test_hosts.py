"""The Proxmox inventory against fakepve with seeded hardware: hosts() and identity(), what they cost, and PVE's own
checks of ``hostpciN`` that the seeded fake adds."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from tests.integration.proxmox.conftest import connect
from tests.integration.proxmox.helpers import declared, vm_spec
from tests.integration.proxmox.transports import CountInFlight, wrap
from virtplane.inventory import Host
from virtplane_lab.pve_hardware import PciFunction, plain_node

TOKEN_SECRET = "0b7d-hosts-token-secret"


def by_name(hosts: list[Host]) -> dict[str, Host]:
    return {host.name: host for host in hosts}


def test_the_nodes_report_the_hardware_they_were_seeded_with_and_differ(provider, pve):
    pve.seed_lab_guests()
    hosts = by_name(provider.hosts())
    assert sorted(hosts) == ["pve1", "pve2", "pve3"]
    for host in hosts.values():
        assert (host.endpoint, host.hypervisor, host.product, host.version, host.online) == (
            "pve", "proxmox", "Proxmox VE", "9.0.10", True)
        assert (host.memory_total_mib, host.memory_free_mib, host.hardware_virtualization, host.slat) == (
            8192, 6144, True, True)

    pve1, pve2, pve3 = hosts["pve1"], hosts["pve2"], hosts["pve3"]
    assert (pve1.cpu_vendor, pve1.iommu, pve1.nested) == ("intel", True, True)
    [gpu, t4] = pve1.gpus()
    assert (t4.address, t4.in_use_by, pve1.devices_in_use_known) == ("0000:d8:00.0", ["render-9"], True)
    assert (gpu.address, gpu.vendor_id, gpu.device_id, gpu.class_id, gpu.iommu_group, gpu.passthrough_capable,
            gpu.passthrough_enabled) == ("0000:3b:00.0", "0x10de", "0x20f1", "0x030200", 42, True, True)
    assert [(v.profile, v.device, v.available) for v in pve1.vgpu_types] == [
        ("nvidia-471", "0000:3b:00.0", 10), ("nvidia-472", "0000:3b:00.0", 5), ("nvidia-473", "0000:3b:00.0", 2),
        ("nvidia-474", "0000:3b:00.0", 1)]
    assert [(m.id, m.addresses, m.mdev) for m in pve1.pci_mappings] == [("a100", ["0000:3b:00.0"], True),
                                                                        ("t4", ["0000:d8:00.0"], False)]
    assert pve1.sriov == []

    assert (pve2.cpu_vendor, pve2.iommu, pve2.nested, pve2.vgpu_types) == ("intel", True, True, [])
    [a2, l4] = pve2.gpus()  # whole GPUs: no mdev types
    assert (l4.address, l4.device_id, l4.iommu_group, l4.passthrough_capable, l4.passthrough_enabled) == (
        "0000:af:00.0", "0x27b8", 50, True, True)
    nvme = next(d for d in pve2.pci_devices if d.address == "0000:87:00.0")
    assert (a2.address, a2.iommu_group, nvme.iommu_group) == ("0000:86:00.0", 70, 70)  # one group, two endpoints
    [pf] = pve2.sriov
    assert (pf.address, pf.enabled, pf.vfs_enabled, pf.vfs_max, pf.vfs_free) == ("0000:5e:00.0", True, 4, None, 4)
    vfs = [d for d in pve2.pci_devices if d.device_id == "0x154c"]
    assert [(d.address, d.iommu_group, d.passthrough_capable) for d in vfs] == [
        (f"0000:5e:02.{n}", 31 + n, True) for n in range(4)]
    assert [(m.id, m.addresses) for m in pve2.pci_mappings] == [("x710-vf", [d.address for d in vfs])]

    assert (pve3.cpu_vendor, pve3.iommu, pve3.nested, pve3.gpus(), pve3.sriov, pve3.pci_mappings) == (
        "amd", False, False, [], [], [])
    assert pve3.pci_devices and all(d.iommu_group is None and d.passthrough_capable is False
                                    for d in pve3.pci_devices)
    assert "iommugroup -1" in pve3.sources["iommu"] and "supported-on" in pve3.sources["nested"]


def test_what_pve_does_not_report_stays_unknown_and_says_why(provider, pve):
    pve.fail("GET", "/nodes/pve2/capabilities/qemu/cpu-flags", 400, "Parameter verification failed.")  # PVE < 9
    pve.hardware["pve1"].flags = None
    pve.set_node_offline("pve3")
    hosts = by_name(provider.hosts())
    assert hosts["pve2"].nested is None and hosts["pve2"].sources["nested"].startswith("unknown: ")
    assert hosts["pve2"].iommu is True  # the rest of the node is read
    assert hosts["pve1"].slat is None and "slat" not in hosts["pve1"].sources
    pve3 = hosts["pve3"]
    assert (pve3.online, pve3.cpu_vendor, pve3.hardware_virtualization, pve3.iommu, pve3.nested,
            pve3.memory_total_mib, pve3.pci_devices) == (False, None, None, None, None, None, [])
    assert pve3.sources["iommu"] == "unknown: node pve3 is offline"


def test_a_token_that_may_not_audit_the_nodes_gets_unknown_hardware_not_an_error(pve, environ):
    pve.apitokens["ci@pve!inventory"] = TOKEN_SECRET
    pve.grant("ci@pve!inventory", "/vms", "VM.Audit")
    token_env = {k: v for k, v in environ.items() if "USERNAME" not in k and "PASSWORD" not in k}
    provider = connect(token_env | {"PROXMOX_VE_API_TOKEN": f"ci@pve!inventory={TOKEN_SECRET}"})
    hosts = by_name(provider.hosts())
    provider.close()
    pve1 = hosts["pve1"]
    assert (pve1.cpu_model, pve1.iommu, pve1.pci_devices, pve1.nested) == (None, None, [], True)
    assert "Sys.Audit" in pve1.sources["pci_devices"] and TOKEN_SECRET not in str(pve1.sources)


def test_hardware_is_read_with_a_fixed_number_of_requests_per_node_and_one_per_vm_not_per_device(provider, pve):
    pve.seed_lab_guests()
    watch = wrap(provider, CountInFlight)
    provider.hosts()
    first = sorted(path for _, path in watch.seen)
    per_node = ["/status", "/hardware/pci", "/capabilities/qemu/cpu-flags", "/capabilities/qemu/machines"]
    assert first == sorted(["/api2/json/cluster/resources", "/api2/json/cluster/mapping/pci",
                            "/api2/json/nodes/pve1/hardware/pci/0000:3b:00.0/mdev",
                            "/api2/json/nodes/pve1/qemu/4001/config"]  # render-9's hostpciN
                           + [f"/api2/json/nodes/{node}{path}" for node in ("pve1", "pve2", "pve3")
                              for path in per_node])
    assert all(method == "GET" for method, _ in watch.seen)

    pve.hardware["pve3"].devices += [
        PciFunction(f"0000:{bus:02x}:00.0", "0x010802", "0x144d", "0xa80a", "Samsung", "NVMe SSD", -1)
        for bus in range(0x60, 0x80)]
    pve.add_node("pve4")
    pve.hardware["pve4"] = plain_node()
    watch.seen.clear()
    hosts = by_name(provider.hosts())
    assert len(hosts["pve3"].pci_devices) > 30
    assert len(watch.seen) == len(first) + len(per_node)  # one node more; 32 more devices cost nothing


def test_the_hardware_reads_run_concurrently_over_the_pooled_session(provider, pve):
    pve.time_scale = 1.0
    pve.slow_network(0.05)  # every answer takes 50 ms: sequential reads could never overlap
    watch = wrap(provider, CountInFlight)
    provider.hosts()
    assert watch.peak > 4


def test_the_identity_is_the_cluster_name_or_the_standalone_node(provider, pve):
    pve.cluster_name = "lab-cluster"
    assert provider.identity() == "lab-cluster"
    pve.standalone = True
    assert provider.identity() == "node:pve1"


def test_the_gpu_mapping_offers_the_gpus_mdev_types(raw):
    by_device = raw.nodes("pve1").hardware.pci("0000:3b:00.0").mdev.get()
    assert [t["type"] for t in by_device] == ["nvidia-471", "nvidia-472", "nvidia-473", "nvidia-474"]
    assert raw.nodes("pve1").hardware.pci("a100").mdev.get() == by_device
    assert raw.nodes("pve2").hardware.pci("a100").mdev.get() == []  # the mapping names no device on pve2


def test_bridges_are_listed_only_when_the_class_blacklist_is_emptied(raw):
    default = {row["id"] for row in raw.nodes("pve1").hardware.pci.get()}
    everything = {row["id"] for row in raw.nodes("pve1").hardware.pci.get(**{"pci-class-blacklist": ""})}
    assert everything - default == {"0000:00:00.0"}  # the host bridge, class 0x0600


@pytest.mark.parametrize(("value", "pve_says"), [
    ("host=3b:0g.0", "invalid format - format error\nhostpci0.host: value does not match the regex pattern"),
    ("mapping=a100,turbo=1", "invalid format - invalid key in comma-separated list property: turbo"),
    ("mapping=a100,pcie=maybe", "invalid format - format error\nhostpci0.pcie: type check ('boolean') failed - "
                                "got 'maybe'"),
    ("0000:3b:00.0,vendor-id=10de", "invalid format - format error\nhostpci0.vendor-id: value does not match the "
                                    "regex pattern"),
])
def test_a_bad_hostpci_value_is_refused_in_pves_words(raw, value, pve_says):
    raw.nodes("pve1").qemu.post(vmid=100, name="gpu", memory=512)
    with pytest.raises(ResourceException) as refused:
        raw.nodes("pve1").qemu(100).config.put(hostpci0=value)
    assert refused.value.status_code == 400
    assert refused.value.errors["hostpci0"].rstrip("\n") == pve_says


@pytest.mark.parametrize("value", ["mapping=a100,pcie=1,mdev=nvidia-471", "0000:3b:00.0,x-vga=1,pcie=1",
                                   "host=5e:02.0;5e:02.1,rombar=0", "3b:00,driver=vfio"])
def test_a_good_hostpci_value_is_accepted(raw, value):
    raw.nodes("pve1").qemu.post(vmid=100, name="gpu", memory=512, machine="q35")
    raw.nodes("pve1").qemu(100).config.put(hostpci0=value)
    assert raw.nodes("pve1").qemu(100).config.get()["hostpci0"] == value


def test_only_root_itself_may_pass_a_raw_device_through_and_a_token_needs_mapping_use(pve, raw, fakepve_cafile):
    raw.nodes("pve1").qemu.post(vmid=100, name="gpu", memory=512, machine="q35")
    pve.apitokens["ci@pve!deploy"] = TOKEN_SECRET
    pve.grant("ci@pve!deploy", "/vms", "VM.Audit", "VM.Config.HWType")
    address = urlsplit(pve.url)
    token = ProxmoxAPI(address.hostname, port=address.port, user="ci@pve", token_name="deploy",
                       token_value=TOKEN_SECRET, verify_ssl=fakepve_cafile)
    config = token.nodes("pve1").qemu(100).config
    with pytest.raises(ResourceException) as raw_device:
        config.put(hostpci0="0000:3b:00.0,pcie=1")
    assert (raw_device.value.status_code, raw_device.value.content.strip()) == (
        500, "only root can set 'hostpci0' config for non-mapped devices")
    with pytest.raises(ResourceException) as unmapped:
        config.put(hostpci0="mapping=a100,pcie=1")
    assert unmapped.value.status_code == 403 and "/mapping/pci/a100, Mapping.Use" in unmapped.value.content
    pve.grant("ci@pve!deploy", "/mapping/pci/a100", "Mapping.Use")
    config.put(hostpci0="mapping=a100,pcie=1")
    raw.nodes("pve1").qemu(100).config.put(hostpci1="0000:5e:02.0")  # root@pam itself may
    assert {k: v for k, v in config.get().items() if k.startswith("hostpci")} == {
        "hostpci0": "mapping=a100,pcie=1", "hostpci1": "0000:5e:02.0"}


def test_a_running_vgpu_takes_an_instance_and_leaves_no_room_for_other_sizes_on_its_gpu(provider, raw):
    raw.nodes("pve1").qemu.post(vmid=300, name="vdi-20", memory=512, machine="q35",
                                hostpci0="0000:3b:00.0,mdev=nvidia-473")
    raw.nodes("pve1").qemu(300).status.start.post()
    raw.nodes("pve1").qemu.post(vmid=301, name="vdi-40", memory=512, machine="q35",
                                hostpci0="mapping=a100,mdev=nvidia-474")
    pve1 = by_name(provider.hosts())["pve1"]
    assert [(v.profile, v.available, v.in_use_by) for v in pve1.vgpu_types] == [
        ("nvidia-471", 0, []), ("nvidia-472", 0, []), ("nvidia-473", 1, ["vdi-20"]),
        ("nvidia-474", 0, ["vdi-40"])]  # NVIDIA's equal-size mode; the stopped vdi-40 makes its instance at start


def test_an_api_token_cannot_pass_a_raw_device_and_is_told_at_plan_to_use_a_mapping(pve, environ):
    pve.apitokens["root@pam!ci"] = TOKEN_SECRET
    token_env = {k: v for k, v in environ.items() if "USERNAME" not in k and "PASSWORD" not in k}
    provider = connect(token_env | {"PROXMOX_VE_API_TOKEN": f"root@pam!ci={TOKEN_SECRET}"})
    try:
        driver = provider.driver("VirtualMachine")
        raw_gpu = vm_spec(node="pve2", gpus=[{"mode": "passthrough"}])
        [(field, message)] = driver.check(raw_gpu, declared({"w": raw_gpu}))
        mapped = vm_spec(node="pve1", gpus=[{"mode": "passthrough", "device": "t4"}])
        assert driver.check(mapped, declared({"w": mapped})) == []
    finally:
        provider.close()
    assert field == "gpus[0].device"
    assert message == ("names no device, so it would get a PCI address; Proxmox lets only root@pam itself pass a raw "
                       "PCI device (hostpciN), and this endpoint acts as token root@pam!ci: name a resource mapping in "
                       "device= (Datacenter > Resource Mappings, with Mapping.Use for token root@pam!ci; mappings: "
                       "a100, t4, x710-vf)")
