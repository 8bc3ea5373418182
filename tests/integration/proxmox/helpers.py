"""Declaring, observing and converging VMs the way the engine does, and raw proxmoxer out-of-band access."""

from __future__ import annotations

from typing import Any

from virtplane.diff import diff
from virtplane.providers.base import Declared, Observed, ObserveResult, Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.specs import CREATE_ONLY, NetworkSpec, VirtualMachineSpec

NETWORKS = {"app": 110, "lan": 0}


def vm_spec(**fields: Any) -> VirtualMachineSpec:
    values = {"cpus": 1, "memory": 512, "disks": [{"size": 8}], "nics": [{"network": "app"}]}
    return VirtualMachineSpec.model_validate(values | fields)


def declared(vms: dict[str, VirtualMachineSpec], networks: dict[str, int] | None = None) -> Declared:
    nets = NETWORKS if networks is None else networks
    return {"Network": {name: NetworkSpec(vlan=vlan) for name, vlan in nets.items()}, "VirtualMachine": dict(vms)}


def observe(provider: ProxmoxProvider, stack: str, vms: dict[str, VirtualMachineSpec]) -> ObserveResult:
    return provider.driver("VirtualMachine").observe(stack, declared(vms))


def create(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> Observed:
    """Plan (observe, check) and create one VM as the engine would; returns it as read back."""
    driver = provider.driver("VirtualMachine")
    assert name not in observe(provider, stack, {name: spec}).owned
    assert driver.check(spec, declared({name: spec})) == []
    driver.create(Owner(stack, name), spec)
    return observe(provider, stack, {name: spec}).owned[name]


def changes_to(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> dict[str, Any]:
    """path -> (live, declared) for every field not in sync."""
    live = observe(provider, stack, {name: spec}).owned[name]
    return {c.path: (c.old, c.new) for c in diff(spec.model_dump(), live.state, CREATE_ONLY["VirtualMachine"])}


def converge(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> Observed:
    """Update the VM to ``spec`` as the engine does, then read it back."""
    driver = provider.driver("VirtualMachine")
    live = observe(provider, stack, {name: spec}).owned[name]
    driver.update(live, spec, diff(spec.model_dump(), live.state, CREATE_ONLY["VirtualMachine"]))
    return observe(provider, stack, {name: spec}).owned[name]


def qemu(raw: Any, name: str) -> Any:
    """proxmoxer's ``/nodes/{node}/qemu/{vmid}`` for the one VM named ``name``."""
    [row] = [r for r in raw.cluster.resources.get(type="vm") if r.get("name") == name]
    return raw.nodes(row["node"]).qemu(row["vmid"])


def count(raw: Any, name: str) -> int:
    return sum(1 for r in raw.cluster.resources.get(type="vm") if r.get("name") == name)


def requests_to(pve: Any, method: str, suffix: str) -> list[bytes]:
    """Bodies of the requests fakepve saw for ``method`` on paths ending with ``suffix``."""
    return [body for seen, path, body in pve.requests if seen == method and path.endswith(suffix)]
