"""Raw pyVmomi helpers for making changes out of band, as another tool or a person would, and a stack
planned and applied through the engine."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from virtplane import apply
from virtplane.declared import DeclaredEndpoint, DeclaredResource, DesiredStack
from virtplane.engine import build_plan
from virtplane.kinds import build_spec
from virtplane.plan import Plan, ResourcePlan
from virtplane.providers.base import MARKER_KEY
from virtplane.providers.vsphere.tasks import wait_for_task


def find_vm(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.DestroyView()


def find_host(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
    try:
        return next(host for host in view.view if host.name == name)
    finally:
        view.DestroyView()


def find_portgroup(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True)
    try:
        return next(group for group in view.view if group.name == name)
    finally:
        view.DestroyView()


def reconfigure(vm: Any, **settings: Any) -> None:
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**settings)), what="reconfigure out of band")


def create_raw_vm(si: Any, name: str, marker: str | None = None, devices: list[Any] | None = None) -> Any:
    """A VM created with plain pyVmomi; ``marker`` goes into extraConfig only (an interrupted create); ``devices``
    are added as they are (VirtualDeviceSpec ``add`` operations)."""
    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    cluster = next(e for e in datacenter.hostFolder.childEntity if isinstance(e, vim.ClusterComputeResource))
    config = vim.vm.ConfigSpec(name=name, numCPUs=1, memoryMB=256, guestId="otherLinux64Guest",
                               files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))
    if marker is not None:
        config.extraConfig = [vim.option.OptionValue(key=MARKER_KEY, value=marker)]
    config.deviceChange = [vim.vm.device.VirtualDeviceSpec(operation="add", device=device) for device in devices or []]
    task = datacenter.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool)
    return wait_for_task(task, what="create a VM out of band")


def set_owner_attribute(si: Any, entity: Any, value: str) -> None:
    """Write virtplane's ownership custom attribute on ``entity`` by hand (as a copy would carry it)."""
    manager = si.RetrieveContent().customFieldsManager
    type_name = type(entity).__name__.rsplit(".", 1)[-1]
    key = next(f.key for f in manager.field if f.name == MARKER_KEY
               and getattr(f.managedObjectType, "__name__", "").rsplit(".", 1)[-1] == type_name)
    manager.SetField(entity=entity, key=key, value=value)


def create_raw_portgroup(si: Any, name: str, description: str) -> Any:
    """A distributed port group made by hand on the datacenter's switch, with a free-text description."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.DistributedVirtualSwitch], True)
    try:
        switch = view.view[0]
    finally:
        view.DestroyView()
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=name, type="earlyBinding", numPorts=8,
                                                         description=description)
    wait_for_task(switch.AddDVPortgroup_Task(spec=[spec]), what="create a port group out of band")
    return next(pg for pg in switch.portgroup if pg.name == name)


class EngineStack:
    """A stack declared in code on one vSphere provider, planned and applied by the engine as the CLI does."""

    ENDPOINT = "ep"

    def __init__(self, provider: Any, name: str):
        self.provider = provider
        self.desired = DesiredStack("it", name)
        self.desired.endpoints[self.ENDPOINT] = DeclaredEndpoint(self.ENDPOINT, "vsphere", {})

    def vm(self, name: str, **fields: Any) -> EngineStack:
        spec = build_spec("VirtualMachine", name, fields)
        self.desired.resources[f"VirtualMachine/{name}"] = DeclaredResource("VirtualMachine", name, spec,
                                                                            self.ENDPOINT)
        return self

    def plan(self) -> Plan:
        return build_plan(self.desired, {self.ENDPOINT: self.provider})

    def item(self, name: str) -> ResourcePlan:
        return next(r for r in self.plan().resources if r.name == name)

    def apply(self, plan: Plan | None = None, allow_data_loss: bool = False) -> apply.ApplyResult:
        result = apply.run(plan or self.plan(), {self.ENDPOINT: self.provider}, allow_data_loss=allow_data_loss)
        assert not result.failed, [outcome.error for outcome in result.failed]
        return result


def mark_as_template(si: Any, name: str) -> None:
    find_vm(si, name).MarkAsTemplate()


def disk_devices(vm: Any) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
