"""Plan-time checks of a VM against a libvirt host: what the host cannot give is refused before anything is made,
one sentence per field. Devices (GPUs, vGPU profiles, SR-IOV) are placement's and the policy layer's to judge,
from the same host facts; these are the references and features only libvirt can answer for.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from virtplane.providers.base import Declared
from virtplane.providers.libvirt import client
from virtplane.providers.libvirt.domain_xml import DEFAULT_MACHINE, is_q35
from virtplane.providers.libvirt.host import ARCH, HostReader
from virtplane.providers.libvirt.settings import LibvirtSettings
from virtplane.specs import VirtualMachineSpec

_BUSES = ("paravirtual", "sata", "virtio-blk", "ide")


def vm_problems(spec: VirtualMachineSpec, declared: Declared, conn: Any, host: HostReader,
                settings: LibvirtSettings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    where = f"libvirt endpoint '{settings.endpoint_name}'"
    if spec.node is not None and spec.node != host.name:
        problems.append(("node", f"{where} is the single host {host.name}; leave node unset or name that host"))
    machine = spec.machine or (None if spec.clone_from else DEFAULT_MACHINE)
    known = _machines(conn, host)
    if spec.machine is not None and known and spec.machine not in known:
        problems.append(("machine", f"QEMU on {host.name} has no machine type '{spec.machine}' "
                                    f"(e.g. {', '.join(sorted(m for m in known if 'q35' in m)[:3]) or 'q35'})"))
    if spec.secure_boot and machine is not None and not is_q35(machine):
        problems.append(("secure_boot", f"secure boot needs SMM, which libvirt gives only on q35 machine types "
                                        f"(machine is '{machine}')"))
    caps = host.domain_caps()
    uefi = spec.firmware == "uefi" or bool(spec.secure_boot)
    if caps is not None and uefi and not caps.loaders:
        problems.append(("firmware", f"host {host.name} has no UEFI firmware for QEMU (OVMF): install Debian's "
                                     "ovmf package there, or use firmware='bios'"))
    elif caps is not None and spec.secure_boot and not caps.secure_boot:
        problems.append(("secure_boot", f"host {host.name}'s UEFI firmware offers no secure boot build"))
    if caps is not None and spec.nested_virtualization and not caps.host_passthrough:
        problems.append(("nested_virtualization", f"nested virtualization needs a host-passthrough CPU, which QEMU on "
                                                  f"{host.name} does not offer (domain type {caps.domain_type}: "
                                                  "KVM is not usable there)"))
    pools = _pools(conn)
    for index, disk in enumerate(spec.disks or []):
        if disk.bus is not None and disk.bus not in _BUSES:
            problems.append((f"disks[{index}].bus", f"{disk.bus} disks are not offered on libvirt (choices: "
                                                    "paravirtual (virtio-scsi), virtio-blk, sata, ide)"))
        elif disk.bus == "ide" and machine is not None and is_q35(machine):
            problems.append((f"disks[{index}].bus", "q35 machines have no IDE bus; use sata or a 'pc' machine"))
        pool = disk.storage or settings.storage_pool
        if pools is not None and pool not in pools:
            field = f"disks[{index}].storage" if disk.storage else f"disks[{index}]"
            problems.append((field, f"storage pool '{pool}' does not exist on {where} "
                                    f"(pools: {', '.join(sorted(pools)) or 'none'})"))
    if spec.cloud_init is not None and host.test_driver:
        problems.append(("cloud_init", "libvirt's test driver cannot write a volume's content (it does not support "
                                       "virStorageVolUpload), so it cannot hold a cloud-init seed; use a QEMU host"))
    elif spec.cloud_init is not None and pools is not None and settings.storage_pool not in pools:
        problems.append(("cloud_init", f"the cloud-init seed volume goes to the endpoint's storage pool "
                                       f"'{settings.storage_pool}', which does not exist on {where}"))
    networks = set(declared.get("Network", {})) | _networks(conn)
    for index, nic in enumerate(spec.nics or []):
        if nic.adapter != "sriov" and nic.network not in networks:
            problems.append((f"nics[{index}].network", f"network '{nic.network}' is neither declared in the stack "
                                                       f"nor defined on {where} (networks: "
                                                       f"{', '.join(sorted(networks)) or 'none'})"))
    if spec.clone_from and client.call(f"look for domain {spec.clone_from}", conn.lookupByName, spec.clone_from,
                                       tolerate=[client.NO_DOMAIN]) is None:
        problems.append(("clone_from", f"no domain named '{spec.clone_from}' exists on {where}"))
    return problems


def _pools(conn: Any) -> set[str] | None:
    pools = client.call("list the storage pools", conn.listAllStoragePools, 0, tolerate=[client.NO_SUPPORT])
    return None if pools is None else {pool.name() for pool in pools}


def _networks(conn: Any) -> set[str]:
    return {network.name() for network in client.call("list the networks", conn.listAllNetworks, 0,
                                                      tolerate=[client.NO_SUPPORT]) or []}


def _machines(conn: Any, host: HostReader) -> set[str]:
    """The machine types QEMU offers for x86_64 (names and their canonical forms); empty on the test driver."""
    if host.test_driver:
        return set()
    root = ET.fromstring(str(client.call("read the host capabilities", conn.getCapabilities)))
    found: set[str] = set()
    for guest in root.findall("guest"):
        arch = guest.find("arch")
        if arch is None or arch.get("name") != ARCH:
            continue
        for machine in arch.iter("machine"):
            found.add(machine.text or "")
            if machine.get("canonical"):
                found.add(machine.get("canonical") or "")
    return found
