"""``virtplane.DesktopPool``: ``size`` identical desktops cloned from a golden image."""

from __future__ import annotations

from typing import Any

import pulumi

from virtplane import components, declared
from virtplane.errors import SpecError
from virtplane.pools.naming import DEFAULT_NAMING
from virtplane.pools.spec import KIND, build_pool
from virtplane.resources import Gpu, Nic, VirtualMachine, _items, _refuse, _unknown

TYPE = "virtplane:index:DesktopPool"
# Under `pulumi up` a new template re-clones a desktop: the plugin's Diff reports clone_from, the engine replaces,
# deleting the old desktop first (its name and marker are the new one's).
RECLONE: dict[str, Any] = {"replace_on_changes": ["clone_from"], "delete_before_replace": True}
_ARGUMENTS = ["template", "size", "naming", "cpus", "sockets", "memory", "gpus", "nics", "linked_clone", "spread",
              "max_unavailable", "power", "tags", "nested_virtualization", "opts"]


class DesktopPool(pulumi.ComponentResource):
    """``size`` identical desktop VMs cloned from ``template`` (a golden image: a template or VM on the endpoint),
    named by ``naming`` (``{pool}`` and ``{n}``, the desktop's number from 1; default ``{pool}-{n:03}``).

    ``cpus``, ``sockets``, ``memory``, ``gpus`` (e.g. ``[virtplane.Gpu("vgpu", profile="grid_a100-4c")]``),
    ``nics`` (SR-IOV NICs too), ``nested_virtualization`` and ``tags`` apply to every desktop; what is left unset
    keeps the golden image's value. ``power`` is ``"on"`` (the default) or ``"off"``.
    ``linked_clone``: share the golden image's disks (vSphere: child disks on its current snapshot; Proxmox: a
    linked clone of a template; Hyper-V: a differencing VHDX on its VHDX); None (the default) where the hypervisor
    offers it, False for full copies.
    ``spread`` (default) balances the desktops over the hosts that can serve them; ``pack`` fills a host first.
    ``max_unavailable``: how many desktops a recompose (a new ``template``) re-clones at a time.

    Growing adds the next numbers; shrinking deletes the highest numbers, never a desktop in use (powered on
    with a user logged in, or nothing to tell) unless ``--allow-data-loss``. Each desktop is a VirtualMachine of
    its own name in plans and drift. Outputs: ``desktops`` (names), ``template``, ``size``.
    """

    def __init__(self, resource_name: str, *, template: str, size: int, naming: str = DEFAULT_NAMING,
                 cpus: int | None = None, sockets: int | None = None, memory: int | str | None = None,
                 gpus: list[Gpu] | None = None, nics: list[Nic] | None = None, linked_clone: bool | None = None,
                 spread: str = "spread", max_unavailable: int = 1, power: str | None = "on",
                 tags: list[str] | None = None, nested_virtualization: bool | None = None,
                 opts: pulumi.ResourceOptions | None = None, **unknown: Any) -> None:
        collected = components.start(self, TYPE, resource_name, opts)
        collector = declared.active_collector()
        if collector is not None:
            collector.declare(KIND, resource_name)
        problems = _unknown(unknown, _ARGUMENTS)
        items = {field: _items(field, values, expected, problems)
                 for field, values, expected in (("nics", nics, Nic), ("gpus", gpus, Gpu))}
        desktop = {"cpus": cpus, "sockets": sockets, "memory": memory, **items, "power": power,
                   "tags": list(tags) if isinstance(tags, list | tuple) else tags,
                   "nested_virtualization": nested_virtualization}
        inputs = {"template": template, "size": size, "naming": naming, "spread": spread,
                  "max_unavailable": max_unavailable, "linked_clone": linked_clone}
        endpoint = opts.provider if opts is not None else None
        try:
            pool, desktops = build_pool(resource_name, inputs, desktop, _offers_linked_clones(endpoint))
        except SpecError as error:
            problems += error.problems
        if problems:
            _refuse(KIND, resource_name, problems)
            components.finish(self, collected, {"desktops": [], "template": template, "size": size})
            return
        if collector is not None:
            if resource_name in collector.pools:
                _refuse(KIND, resource_name, [("name", "is declared twice")])
                return
            collector.pools[resource_name] = (pool, endpoint)
        child = components.child_options(self, opts, collected)
        previous: list[VirtualMachine] = []
        for number, (name, spec) in desktops.items():
            if collector is not None:
                collector.pool_of[name] = resource_name
            options = child
            if not collected and number > pool.max_unavailable:
                # under `pulumi up`, desktops are made and re-cloned max_unavailable at a time
                options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    depends_on=[previous[number - pool.max_unavailable - 1]], **RECLONE))
            elif not collected:
                options = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(**RECLONE))
            fields = spec.model_dump(exclude_none=True, exclude={"gpus", "nics"})
            previous.append(VirtualMachine(name, gpus=gpus, nics=nics, opts=options, **fields))
        components.finish(self, collected, {"desktops": [vm.resource_name for vm in previous],
                                            "template": pool.template, "size": pool.size})


def _offers_linked_clones(endpoint: Any) -> bool:
    from virtplane.providers.registry import provider_class

    kind = getattr(endpoint, "endpoint_kind", None)
    try:
        return provider_class(kind).offers_linked_clones if kind else True
    except SpecError:
        return False
