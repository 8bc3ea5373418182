"""NestedLab (modules/nested_lab.py) on each endpoint of the lab: a VM ready to run a hypervisor of its own, placed
on a host that supports nested virtualization. Connection settings come from the environment
(`eval "$(virtplane lab env)"`)."""

import pulumi

import virtplane
from virtplane.modules import NestedLab

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
hv = virtplane.Endpoint("lab-hyperv", kind="hyperv")
xs = virtplane.Endpoint("lab-xenserver", kind="xenserver")

labs = [
    NestedLab("nest-esx", memory="32GiB", networks=["DC0_DVPG0"], opts=pulumi.ResourceOptions(provider=esx)),
    NestedLab("nest-pve", memory="8GiB", disk="40GiB", networks=["vmbr0"], opts=pulumi.ResourceOptions(provider=pve)),
    NestedLab("nest-hv", memory="16GiB", networks=["lab-switch"], opts=pulumi.ResourceOptions(provider=hv)),
    NestedLab("nest-xs", memory="16GiB", opts=pulumi.ResourceOptions(provider=xs)),
]
pulumi.export("labs", [nested.vm.resource_name for nested in labs])
