"""The lab stack: one network and three VMs on the vSphere endpoint of `virtplane lab up`.

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

pulumi.export("vms", [vm.resource_name for vm in [*webs, db]])
