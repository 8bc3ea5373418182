"""The lab stack: on each endpoint of `virtplane lab up` (vSphere, Proxmox VE and Hyper-V), a network and
three VMs.

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

# The Hyper-V host: a VLAN on its switch (HYPERV_SWITCH, lab-switch), a Generation 1 web VM (BIOS), a
# Generation 2 database VM (UEFI, secure boot, nested virtualization) and a Generation 2 desk VM whose name
# Hyper-V takes as it is, apostrophe included (names travel as data, never as PowerShell text).
hv = virtplane.Endpoint("lab-hyperv", kind="hyperv")
on_hv = pulumi.ResourceOptions(provider=hv)

hv_net = virtplane.Network("lab-hv-app", vlan=config.get_int("vlan") or 120, opts=on_hv)

hv_web = virtplane.VirtualMachine(
    "lab-hv-web",
    cpus=2,
    memory="2GiB",
    firmware="bios",
    disks=[virtplane.Disk("20GiB", bus="ide")],
    nics=[virtplane.Nic(hv_net)],
    tags=["web", "lab"],
    opts=on_hv,
)

hv_db = virtplane.VirtualMachine(
    "lab-hv-db",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("40GiB"), virtplane.Disk("100GiB", thin=False)],
    nics=[virtplane.Nic(hv_net)],
    nested_virtualization=True,
    tags=["db", "lab"],
    opts=on_hv,
)

hv_desk = virtplane.VirtualMachine(
    "Ana's desk",
    cpus=2,
    memory="4GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("60GiB")],
    nics=[virtplane.Nic(hv_net)],
    tags=["desk", "lab"],
    opts=on_hv,
)

pulumi.export("vms", [vm.resource_name for vm in [*webs, db, *pve_webs, pve_db, hv_web, hv_db, hv_desk]])
