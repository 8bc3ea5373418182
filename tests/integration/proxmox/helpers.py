"""Declaring, observing and converging VMs the way the engine does, and raw proxmoxer out-of-band access."""

from __future__ import annotations

from typing import Any

from virtplane.diff import diff
from virtplane.providers.base import Declared, Observed, ObserveResult, Owner
from virtplane.providers.proxmox.provider import ProxmoxProvider
from virtplane.slots import resolve_vm
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


def planned(provider: ProxmoxProvider, spec: VirtualMachineSpec, live: Observed | None) -> VirtualMachineSpec:
    """``spec`` as the engine hands it to the driver: slots resolved against the live VM (a new VM's also with the
    creation defaults and the node placement chose; a clone's are resolved by the driver once it is cloned)."""
    driver = provider.driver("VirtualMachine")
    if live is None and spec.clone_from:
        return spec
    resolved = resolve_vm(spec, live.state if live is not None else None, driver.new_slot)
    if live is not None:
        return resolved
    made = resolved.with_creation_defaults()
    if made.node is None and (node := driver.place(made, {})) is not None:
        made = made.model_copy(update={"node": node})
    return made


def create(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> Observed:
    """Plan (observe, check, place) and create one VM as the engine would; returns it as read back."""
    driver = provider.driver("VirtualMachine")
    assert name not in observe(provider, stack, {name: spec}).owned
    assert driver.check(spec, declared({name: spec})) == []
    created = driver.create(Owner(stack, name), planned(provider, spec, None))
    observed = observe(provider, stack, {name: spec}).owned[name]
    assert created.id == observed.id and created.outputs["node"] == observed.state["node"]
    return observed


def changes_to(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> dict[str, Any]:
    """path -> (live, declared) for every field not in sync."""
    live = observe(provider, stack, {name: spec}).owned[name]
    wanted = planned(provider, spec, live)
    return {c.path: (c.old, c.new) for c in diff(wanted.model_dump(), live.state, CREATE_ONLY["VirtualMachine"])}


def converge(provider: ProxmoxProvider, stack: str, name: str, spec: VirtualMachineSpec) -> Observed:
    """Update the VM to ``spec`` as the engine does, then read it back."""
    driver = provider.driver("VirtualMachine")
    live = observe(provider, stack, {name: spec}).owned[name]
    wanted = planned(provider, spec, live)
    driver.update(live, wanted, diff(wanted.model_dump(), live.state, CREATE_ONLY["VirtualMachine"]))
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
