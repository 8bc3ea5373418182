"""The lab's golden images, ``lab-golden`` on every endpoint, for desktop pools (stacks/lab, docs/desktops.md),
prepared as each hypervisor's documentation has an administrator prepare one:

- vSphere: a VM on DC0_C0_H0 (the A100s' host) with a 16 GB thin disk, one snapshot (linked clones hang their
  child disks on the current snapshot) and marked as a template;
- Proxmox VE: a template on pve1 (the node with the A100, so vGPU desktops are linked clones on its local storage)
  with a 16 GB disk, a VirtIO NIC on vmbr0 and the QEMU guest agent enabled;
- Hyper-V: a Generation 2 VM, off, with one 16 GB VHDX on SCSI 0:0 (the parent of the desktops' differencing
  disks) in ``C:\\Golden``.

Each ``seed_*`` is harmless when the image exists already.
"""

from __future__ import annotations

from typing import Any

NAME = "lab-golden"
GIB = 1024**3
PVE_VMID = 9000  # PVE's convention for templates: high VMIDs, out of the way of nextid
HYPERV_VHD = f"C:\\Golden\\{NAME}.vhdx"


def seed_vsphere(si: Any) -> None:
    from pyVmomi import vim

    content = si.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    view = content.viewManager.CreateContainerView(datacenter.vmFolder, [vim.VirtualMachine], True)
    try:
        if any(vm.name == NAME for vm in view.view):
            return
    finally:
        view.DestroyView()
    cluster = datacenter.hostFolder.childEntity[0]
    controller = vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(key=2000, controllerKey=1000, unitNumber=0, capacityInKB=16 * GIB // 1024,
                                     backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent",
                                                                                          thinProvisioned=True))
    spec = vim.vm.ConfigSpec(name=NAME, numCPUs=2, memoryMB=4096, guestId="windows9_64Guest", firmware="efi",
                             files=vim.vm.FileInfo(vmPathName=f"[{datacenter.datastore[0].name}]"),
                             deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=controller),
                                           vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create",
                                                                           device=disk)])
    # on the host with the A100s, where the vGPU desktops go (the simulator's clone lands on its source's host)
    host = next((h for h in cluster.host if h.name == "DC0_C0_H0"), None)
    vm = _wait(datacenter.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool, host=host))
    _wait(vm.CreateSnapshot_Task(name="golden", description="desktop pools clone this", memory=False,
                                 quiesce=False))
    vm.MarkAsTemplate()


def _wait(task: Any) -> Any:
    import time

    from pyVmomi import vim

    deadline = time.monotonic() + 60
    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        if time.monotonic() > deadline:
            raise TimeoutError(f"vSphere task {task.info.descriptionId} did not finish")
        time.sleep(0.05)
    if task.info.state == vim.TaskInfo.State.error:
        raise RuntimeError(f"preparing the golden image failed: {task.info.error.msg}")
    return task.info.result


def seed_proxmox(url: str, user: str, password: str, ca_file: str) -> None:
    """Through the PVE API (proxmoxer), as an administrator would: create the VM, then convert it to a template."""
    from urllib.parse import urlsplit

    from proxmoxer import ProxmoxAPI

    address = urlsplit(url)
    api = ProxmoxAPI(address.hostname, port=address.port, user=user, password=password, verify_ssl=ca_file)
    if any(row.get("name") == NAME for row in api.cluster.resources.get(type="vm")):
        return
    api.nodes("pve1").qemu.post(vmid=PVE_VMID, name=NAME, memory=2048, cores=2, ostype="win11",
                                scsihw="virtio-scsi-single", agent=1, scsi0="local-lvm:16",
                                net0="virtio,bridge=vmbr0")
    api.nodes("pve1").qemu(PVE_VMID).template.post()


def seed_hyperv(run: Any) -> None:
    """``run(what, build)`` runs one pypsrp pipeline on the host (virtplane_lab.hyperv)."""
    from virtplane_lab.hyperv import _prop

    names = [str(_prop(vm, "Name")) for vm in run("listing the VMs", lambda ps: ps.add_cmdlet("Get-VM"))]
    if NAME in names:
        return
    from pypsrp.serializer import TaggedValue

    def build(ps: Any) -> None:
        ps.add_cmdlet("New-VM").add_parameter("Name", NAME).add_parameter("Generation", 2) \
            .add_parameter("MemoryStartupBytes", TaggedValue("I64", 4 * GIB)).add_parameter("NoVHD", True)
        ps.add_statement()
        ps.add_cmdlet("New-VHD").add_parameter("Path", HYPERV_VHD) \
            .add_parameter("SizeBytes", TaggedValue("U64", 16 * GIB)).add_parameter("Dynamic", True)
        ps.add_statement()
        ps.add_cmdlet("Get-VM").add_parameter("Name", NAME).add_cmdlet("Add-VMHardDiskDrive") \
            .add_parameter("ControllerType", "SCSI").add_parameter("Path", HYPERV_VHD)

    run("preparing the golden image", build)


def seed(vsphere: Any, proxmox: dict[str, str] | None, hyperv: Any) -> None:
    """Every endpoint's golden image: the lab's vcsim and Hyper-V instances, and the Proxmox endpoint's
    ``PROXMOX_VE_*`` variables (None: no Proxmox endpoint)."""
    import ssl

    from pyVim.connect import Disconnect, SmartConnect

    from virtplane_lab import hyperv as hyperv_lab

    if vsphere is not None:
        host, port = vsphere.host.rsplit(":", 1)
        si = SmartConnect(host=host, port=int(port), user=vsphere.user, pwd=vsphere.password,
                          sslContext=ssl.create_default_context(cafile=vsphere.ca_file))
        try:
            seed_vsphere(si)
        finally:
            Disconnect(si)
    if proxmox:
        seed_proxmox(proxmox["PROXMOX_VE_ENDPOINT"], proxmox["PROXMOX_VE_USERNAME"],
                     proxmox["PROXMOX_VE_PASSWORD"], proxmox["PROXMOX_VE_CA_FILE"])
    if hyperv is not None:
        seed_hyperv(lambda what, build: hyperv_lab._run(hyperv, what, build))

