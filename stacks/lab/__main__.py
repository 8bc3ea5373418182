"""The lab stack: on each endpoint of `virtplane lab up` (vSphere and Proxmox VE), a network and three VMs.

Connection settings come from the environment (`eval "$(virtplane lab env)"`).
"""

import pulumi

import virtplane

config = pulumi.Config()
web_count = config.get_int("webCount") or 2

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
on_esx = pulumi.ResourceOptions(provider=esx)

app_net = virtplane.Network("lab-app", vlan=config.get_int("vlan") or 120, opts=on_esx)

webs = [
    virtplane.VirtualMachine(
        f"lab-web-{i}",
        cpus=2,
        memory="2GiB",
        disks=[virtplane.Disk("20GiB")],
        nics=[virtplane.Nic(app_net)],
        tags=["web", "lab"],
        opts=on_esx,
    )
    for i in range(1, web_count + 1)
]

db = virtplane.VirtualMachine(
    "lab-db",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("40GiB"), virtplane.Disk("100GiB", thin=False)],
    nics=[virtplane.Nic(app_net)],
    nested_virtualization=True,
    tags=["db", "lab"],
    opts=on_esx,
)

# The same shape on the Proxmox cluster: a VLAN on the nodes' bridge, two web VMs placed by virtplane
# (the online node with the most free memory) and a database VM pinned to a node.
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
on_pve = pulumi.ResourceOptions(provider=pve)

pve_net = virtplane.Network("lab-pve-app", vlan=config.get_int("vlan") or 120, opts=on_pve)

pve_webs = [
    virtplane.VirtualMachine(
        f"lab-pve-web-{i}",
        cpus=2,
        memory="2GiB",
        disks=[virtplane.Disk("20GiB")],
        nics=[virtplane.Nic(pve_net)],
        tags=["web", "lab"],
        opts=on_pve,
    )
    for i in range(1, web_count + 1)
]

pve_db = virtplane.VirtualMachine(
    "lab-pve-db",
    cpus=4,
    sockets=2,
    memory="8GiB",
    node="pve2",
    machine="q35",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("40GiB"), virtplane.Disk("100GiB", bus="virtio-blk")],
    nics=[virtplane.Nic(pve_net)],
    nested_virtualization=True,
    tags=["db", "lab"],
    opts=on_pve,
)

pulumi.export("vms", [vm.resource_name for vm in [*webs, db, *pve_webs, pve_db]])
