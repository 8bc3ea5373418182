"""Raw pyVmomi helpers for making changes out of band, as another tool or a person would."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from virtplane.providers.base import MARKER_KEY
from virtplane.providers.vsphere.tasks import wait_for_task


def find_vm(si: Any, name: str) -> Any:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.DestroyView()


def reconfigure(vm: Any, **settings: Any) -> None:
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**settings)), what="reconfigure out of band")


def create_raw_vm(si: Any, name: str, marker: str | None = None) -> Any:
    """A VM created with plain pyVmomi; ``marker`` goes into extraConfig only (an interrupted create)."""
    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    cluster = next(e for e in datacenter.hostFolder.childEntity if isinstance(e, vim.ClusterComputeResource))
    config = vim.vm.ConfigSpec(name=name, numCPUs=1, memoryMB=256, guestId="otherLinux64Guest",
                               files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"))
    if marker is not None:
        config.extraConfig = [vim.option.OptionValue(key=MARKER_KEY, value=marker)]
    task = datacenter.vmFolder.CreateVM_Task(config=config, pool=cluster.resourcePool)
    return wait_for_task(task, what="create a VM out of band")
