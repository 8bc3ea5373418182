"""ct.devices (mandatory): a host device passed into a container (Proxmox ``devN``) exists on the container's node and
is free for it there.

A container gets a host device by PVE's device mapping (``devN: /dev/…``, PVE 8.1 and later; virtplane writes no raw
``lxc.*`` keys), on the node it runs on: the spec makes a container with devices name its ``node``, and this rule
checks that node against its facts. A GPU's device nodes (``/dev/dri/…``, ``/dev/nvidia…``) need a GPU of that kind
on the node that no VM holds (a GPU passed through to a VM is bound to vfio-pci, so the host has no device node for
it), counting the GPUs this plan places VMs on. Kernel devices every Linux node has (``/dev/net/tun``, ``/dev/fuse``)
pass; ``/dev/kvm`` needs hardware virtualization; any other path cannot be verified from the node's facts: advisory.

Sources: Proxmox VE API viewer, ``/nodes/{node}/lxc`` (``dev[n]``); Proxmox VE wiki, "PCI(e) Passthrough" (a device
given to a VM is bound to vfio-pci).

Links:
- https://pve.proxmox.com/pve-docs/api-viewer/index.html#/nodes/{node}/lxc
- https://pve.proxmox.com/wiki/PCI(e)_Passthrough
"""

from __future__ import annotations

from virtplane.inventory import Host, Inventory
from virtplane.policies import sources
from virtplane.policies.containers import ContainerUnderCheck
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck

RULE = Rule("ct.devices", MANDATORY, "Devices passed into a container exist, free, on its node",
            "A host device given to a container (devN) must be on the node the container runs on, and a GPU's "
            "device nodes need a GPU there that no VM holds.",
            (sources.PVE_LXC_API, sources.PVE_PASSTHROUGH), applies=lambda ct: bool(ct.spec.devices))
EVERY_NODE = frozenset({"/dev/net/tun", "/dev/fuse", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                        "/dev/urandom", "/dev/tty"})
NVIDIA = "0x10de"


def check(ct: ContainerUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    devices = ct.spec.devices or []
    if not devices:
        return []
    host = ct.host
    if host is None:
        hosts = inventory.by_endpoint(ct.endpoint)
        if not hosts:
            return [ct.unknown(RULE, f"the devices of node {ct.spec.node}: the inventory has no hosts of endpoint "
                                     f"'{ct.endpoint}'", field="devices")]
        known = ", ".join(sorted(h.name for h in hosts))
        return [ct.finding(RULE, f"endpoint '{ct.endpoint}' has no node '{ct.spec.node}' (nodes: {known})",
                           field="node")]
    found = []
    for index, path in enumerate(devices):
        if finding := _device(ct, host, path, f"devices[{index}]", stack):
            found.append(finding)
    return found


def _device(ct: ContainerUnderCheck, host: Host, path: str, field: str, stack: StackUnderCheck) -> Finding | None:
    if path in EVERY_NODE:
        return None
    if path == "/dev/kvm":
        if host.hardware_virtualization is False:
            return ct.finding(RULE, f"node {host.name} has no hardware virtualization, so no {path}", field=field)
        return None if host.hardware_virtualization else ct.unknown(RULE, f"that node {host.name} has {path}",
                                                                    field=field)
    if path.startswith(("/dev/dri/", "/dev/nvidia")):
        nvidia = path.startswith("/dev/nvidia")
        gpus = [gpu for gpu in host.gpus() if not nvidia or gpu.vendor_id.lower() == NVIDIA]
        kind = "NVIDIA GPU" if nvidia else "GPU"
        if not gpus:
            if not host.pci_devices:
                return ct.unknown(RULE, f"that node {host.name} has a {kind} for {path} (it reports no PCI devices)",
                                  field=field)
            return ct.finding(RULE, f"node {host.name} has no {kind}, so no {path}", field=field,
                              remediation="set node= to a node with one, or remove the device")
        placed = stack.usage.whole_gpus.get(host.name, set())
        free = [gpu for gpu in gpus if not gpu.in_use_by and gpu.address not in placed]
        if not free:
            holders = sorted({vm for gpu in gpus for vm in gpu.in_use_by}) or ["VMs of this stack"]
            return ct.finding(RULE, f"every {kind} of node {host.name} is passed through to a VM "
                                    f"({', '.join(holders)}), so the host has no {path} to give", field=field,
                              remediation="leave one GPU to the host, or put the container on another node")
        return None
    return ct.unknown(RULE, f"that node {host.name} has {path} (node facts list no device files)", field=field)
