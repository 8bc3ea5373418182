"""Proxmox VE's hardware answers mapped into inventory facts: the pure functions of host_facts, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from virtplane.providers.proxmox.host_facts import (
    NodeAnswers,
    cluster_identity,
    cpu_facts,
    hex_id,
    host,
    iommu_state,
    memory_mib,
    nested_state,
    pci_address,
    pci_devices,
    pci_mappings,
    pve_version,
    sriov_functions,
    vgpu_types,
)

GIB = 1024 ** 3


@pytest.mark.parametrize(("given", "expected"), [
    ("3b:00.0", "0000:3b:00.0"),
    ("0000:3B:00.1", "0000:3b:00.1"),
    ("10000:01:00.0", "10000:01:00.0"),
    ("not-an-address", "not-an-address"),
])
def test_a_pci_address_is_normalised_to_domain_bus_slot_function(given: str, expected: str) -> None:
    assert pci_address(given) == expected


@pytest.mark.parametrize(("given", "expected"), [("0x10DE", "0x10de"), ("10de", "0x10de"), (4318, "0x10de"),
                                                 ("0x030200", "0x030200")])
def test_ids_and_classes_are_lower_case_hex_strings_with_0x(given: Any, expected: str) -> None:
    assert hex_id(given) == expected


INTEL = "fpu vme vmx ept vpid"
AMD = "fpu vme svm npt"


@pytest.mark.parametrize(("cpuinfo", "vendor", "virtualization", "slat"), [
    ({"model": "Intel(R) Xeon(R) Gold 6338", "flags": INTEL, "hvm": "1"}, "intel", True, True),
    ({"model": "AMD EPYC 7313 16-Core Processor", "flags": AMD, "hvm": "1"}, "amd", True, True),
    ({"model": "Intel(R) Xeon(R)", "flags": "fpu vme vmx", "hvm": "1"}, "intel", True, False),  # VT-x, no EPT
    ({"model": "Intel(R) Xeon(R)", "flags": "fpu vme", "hvm": ""}, "intel", False, False),  # VT-x off in firmware
    ({"model": "Intel(R) Xeon(R)", "hvm": "1"}, "intel", True, None),  # no flags: hvm says VT, nothing says EPT
    ({"model": "Intel(R) Xeon(R)", "hvm": ""}, "intel", False, None),
    ({"model": "Intel(R) Xeon(R)"}, "intel", None, None),
    ({"model": "unknown", "flags": AMD}, "amd", True, True),  # vendor inferred from svm
    ({"model": "Hygon C86 7285", "vendor": "HygonGenuine", "flags": "svm"}, "other", True, False),
    ({"model": "Some CPU"}, None, None, None),
    (None, None, None, None),
])
def test_the_cpu_facts_come_from_the_flags_and_unknown_stays_none(
        cpuinfo: dict[str, Any] | None, vendor: str | None, virtualization: bool | None, slat: bool | None) -> None:
    facts = cpu_facts(cpuinfo)
    assert (facts.vendor, facts.hardware_virtualization, facts.slat) == (vendor, virtualization, slat)
    assert ("slat" in facts.sources) == (slat is not None)


@pytest.mark.parametrize(("status", "expected"), [
    ({"memory": {"total": 8 * GIB, "used": 2 * GIB, "free": 6 * GIB, "available": 5 * GIB}}, (8192, 5120)),
    ({"memory": {"total": 8 * GIB, "free": 6 * GIB}}, (8192, 6144)),
    ({}, (None, None)),
    (None, (None, None)),
])
def test_memory_is_in_mib_and_free_prefers_available(status: dict[str, Any] | None, expected: tuple[Any, Any]) -> None:
    assert memory_mib(status) == expected


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"iommugroup": 3}, {"iommugroup": -1}], True),
    ([{"iommugroup": 0}], True),
    ([{"iommugroup": -1}, {"iommugroup": "-1"}], False),
    ([{"id": "0000:00:14.0"}], None),  # PVE sent no group at all
    ([], None),
    (None, None),
])
def test_the_iommu_is_inferred_from_the_devices_groups(
        rows: list[dict[str, Any]] | None, expected: bool | None) -> None:
    state, source = iommu_state(rows)
    assert state is expected
    assert source.startswith("unknown" if expected is None else "inferred")


def test_a_device_is_passthrough_capable_and_enabled_only_in_an_iommu_group() -> None:
    rows = [{"id": "3b:00.0", "class": "0x030200", "vendor": "0x10DE", "device": "0x20f1", "iommugroup": 42,
             "vendor_name": "NVIDIA Corporation", "device_name": "GA100", "mdev": 1},
            {"id": "0000:41:00.0", "class": "0x020000", "vendor": "0x14e4", "device": "0x16d8", "iommugroup": -1},
            {"id": "0000:00:14.0", "class": "0x0c0330", "vendor": "0x8086", "device": "0xa1af"}]
    usb, gpu, nic = pci_devices(rows)  # sorted by address
    assert (gpu.address, gpu.class_id, gpu.vendor_id, gpu.iommu_group, gpu.is_gpu) == (
        "0000:3b:00.0", "0x030200", "0x10de", 42, True)
    assert (gpu.passthrough_capable, gpu.passthrough_enabled, gpu.in_use_by) == (True, True, [])
    assert (nic.iommu_group, nic.passthrough_capable, nic.passthrough_enabled) == (None, False, False)
    assert (usb.iommu_group, usb.passthrough_capable, usb.passthrough_enabled) == (None, None, None)


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"name": "nested-virt", "supported-on": ["pve1", "pve2"]}], True),
    ([{"name": "nested-virt", "supported-on": ["pve2"]}], False),
    ([{"name": "nested-virt", "supported-on": []}], False),
    ([{"name": "nested-virt"}], None),  # no nodes named
    ([{"name": "md-clear", "supported-on": ["pve1"]}], None),  # qemu-server < 9.0.27: no such entry
    (None, None),  # the API refused
])
def test_nested_virtualization_is_read_from_the_nested_virt_flag(
        rows: list[dict[str, Any]] | None, expected: bool | None) -> None:
    assert nested_state("pve1", rows)[0] is expected


def test_mdev_types_keep_their_available_count_and_take_the_total_from_max_instance() -> None:
    rows = [{"type": "nvidia-471", "available": 7, "name": "GRID A100-4C",
             "description": "num_heads=1, framebuffer=4096M, max_instance=10"},
            {"type": "i915-GVTg_V5_4", "available": 2, "description": "low_gm_size: 128MB\n"}]
    nvidia, intel = vgpu_types("0000:3b:00.0", rows)
    assert (nvidia.profile, nvidia.device, nvidia.available, nvidia.total) == ("nvidia-471", "0000:3b:00.0", 7, 10)
    assert nvidia.description == "GRID A100-4C: num_heads=1, framebuffer=4096M, max_instance=10"
    assert (intel.available, intel.total, intel.description) == (2, None, "low_gm_size: 128MB")


def _nic(address: str, name: str, vendor: str = "0x8086") -> dict[str, Any]:
    return {"id": address, "class": "0x020000", "vendor": vendor, "device": "0x1572", "device_name": name}


VF = "Ethernet Virtual Function 700 Series"


@pytest.mark.parametrize(("rows", "expected"), [
    # one PF on the VFs' bus: its VFs are counted
    ([_nic("0000:5e:00.0", "X710"), *(_nic(f"0000:5e:02.{n}", VF) for n in range(4)), _nic("0000:17:00.0", "I350")],
     [("0000:5e:00.0", 4)]),
    # two ports on the bus: which VF belongs to which is unknown
    ([_nic("0000:5e:00.0", "X710"), _nic("0000:5e:00.1", "X710"), _nic("0000:5e:02.0", VF)],
     [("0000:5e:00.0", None), ("0000:5e:00.1", None)]),
    # a VF of another vendor on the bus does not make its neighbour a PF
    ([_nic("0000:5e:00.0", "BCM57416", vendor="0x14e4"), _nic("0000:5e:02.0", VF)], []),
    # PVE links them: exact
    ([{**_nic("0000:5e:00.0", "X710"), "virtfns": ["0000:5e:02.0", "0000:5e:02.1"]},
      {**_nic("0000:5e:02.0", VF), "physfn": "0000:5e:00.0"}, {**_nic("0000:5e:02.1", VF), "physfn": "0000:5e:00.0"}],
     [("0000:5e:00.0", 2)]),
    ([_nic("0000:17:00.0", "I350")], []),
])
def test_sriov_physical_functions_are_found_and_unknown_counts_stay_none(
        rows: list[dict[str, Any]], expected: list[tuple[str, int | None]]) -> None:
    functions, source = sriov_functions(rows)
    assert [(f.address, f.vfs_enabled) for f in functions] == expected
    assert all(f.vfs_free is None and f.vfs_max is None for f in functions)
    assert source is None or "physfn" in source or source.startswith("inferred")


def test_a_node_sees_only_the_mappings_that_name_it_with_its_own_addresses() -> None:
    rows = [{"id": "a100", "mdev": 1, "map": ["node=pve1,path=0000:3b:00.0,id=10de:20f1,iommugroup=42"]},
            {"id": "nic", "map": ["node=pve2,path=5e:02.1,id=8086:154c", "node=pve1,path=0000:17:00.0;0000:17:00.1",
                                  "node=pve2,path=0000:5e:02.0,id=8086:154c"]}]
    assert [(m.id, m.addresses, m.mdev) for m in pci_mappings("pve2", rows)] == [
        ("nic", ["0000:5e:02.0", "0000:5e:02.1"], False)]
    assert [(m.id, m.addresses, m.mdev) for m in pci_mappings("pve1", rows)] == [
        ("a100", ["0000:3b:00.0"], True), ("nic", ["0000:17:00.0", "0000:17:00.1"], False)]
    assert pci_mappings("pve3", rows) == []


@pytest.mark.parametrize(("rows", "expected"), [
    ([{"type": "cluster", "name": "prod"}, {"type": "node", "name": "pve1", "local": 1}], "prod"),
    ([{"type": "node", "name": "pve", "local": 1}], "node:pve"),
    ([{"type": "node", "name": "pve"}], "node:pve"),
    ([{"type": "node", "name": "a"}, {"type": "node", "name": "b"}], None),
    ([], None),
])
def test_the_identity_is_the_cluster_name_or_the_standalone_node(
        rows: list[dict[str, Any]], expected: str | None) -> None:
    assert cluster_identity(rows) == expected


def test_pveversion_gives_the_release() -> None:
    assert pve_version({"pveversion": "pve-manager/9.0.10/deadbeef"}) == "9.0.10"
    assert pve_version({"pveversion": "fake"}) is None and pve_version(None) is None


def test_a_node_nothing_could_be_read_from_is_all_unknown_and_says_why() -> None:
    answers = NodeAnswers("pve9", online=False, missing={"/nodes/{node}/status": "node pve9 is offline",
                                                          "/nodes/{node}/hardware/pci": "node pve9 is offline"})
    found = host("pve", answers, None)
    assert (found.online, found.cpu_vendor, found.hardware_virtualization, found.slat, found.iommu, found.nested,
            found.memory_total_mib) == (False, None, None, None, None, None, None)
    assert found.pci_devices == [] and found.pci_mappings == []
    assert found.sources["iommu"] == found.sources["slat"] == "unknown: node pve9 is offline"
