"""GpuWorkstation (modules/gpu_workstation.py) on each endpoint of the lab: a vGPU workstation where the lab has
vGPU profiles, and a whole GPU on Proxmox VE (any GPU placement finds free). Connection settings come from the
environment (`eval "$(virtplane lab env)"`)."""

import pulumi

import virtplane
from virtplane.modules import GpuWorkstation

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
hv = virtplane.Endpoint("lab-hyperv", kind="hyperv")
xs = virtplane.Endpoint("lab-xenserver", kind="xenserver")

workstations = [
    GpuWorkstation("ws-esx", profile="grid_a100-20c", memory="16GiB", network="DC0_DVPG0",
                   opts=pulumi.ResourceOptions(provider=esx)),
    GpuWorkstation("ws-pve", passthrough=True, memory="2GiB", disk="20GiB", network="vmbr0",
                   opts=pulumi.ResourceOptions(provider=pve)),
    GpuWorkstation("ws-hv", profile="gpu-p/4", memory="8GiB", secure_boot=True, network="lab-switch",
                   opts=pulumi.ResourceOptions(provider=hv)),
    GpuWorkstation("ws-xs", profile="GRID A100-4C", memory="8GiB", opts=pulumi.ResourceOptions(provider=xs)),
]
pulumi.export("workstations", [ws.vm.resource_name for ws in workstations])
