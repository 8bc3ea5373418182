"""SriovAppliance (modules/sriov_appliance.py) on the lab's endpoints with SR-IOV: two virtual functions on a
network beside a paravirtual management NIC, placed on the host whose physical function has free VFs (vSphere:
DC0_C0_H0's X710; Proxmox VE: pve2's X710 through the mapping x710-vf; XenServer: xs-sriov's X710 on the SR-IOV
network lab-sriov). Connection settings come from the environment (`eval "$(virtplane lab env)"`)."""

import pulumi

import virtplane
from virtplane.modules import SriovAppliance

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
xs = virtplane.Endpoint("lab-xenserver", kind="xenserver")

appliances = [
    SriovAppliance("fw-esx", ports=[("DC0_DVPG0", 2)], management="DC0_DVPG0",
                   opts=pulumi.ResourceOptions(provider=esx)),
    SriovAppliance("fw-pve", ports=[("vmbr0", 2)], device="x710-vf", management="vmbr0", memory="2GiB",
                   opts=pulumi.ResourceOptions(provider=pve)),
    SriovAppliance("fw-xs", ports=[("lab-sriov", 2)], opts=pulumi.ResourceOptions(provider=xs)),
]
pulumi.export("appliances", [appliance.vm.resource_name for appliance in appliances])
