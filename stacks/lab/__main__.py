"""The lab stack: on each endpoint of `virtplane lab up` (vSphere, Proxmox VE, Hyper-V and XenServer), a network,
VMs, the accelerator VMs the lab's seeded hardware can hold (a vGPU workstation and a passthrough VM everywhere,
an SR-IOV appliance on vSphere, Proxmox VE and XenServer), each placed at plan time on the host that has the device
(docs/devices.md), a pool of vGPU desktops cloned from the endpoint's golden image (docs/desktops.md); on Proxmox
VE a system container (LXC) beside the VMs (docs/containers.md); and on the lab's libvirt daemon (real QEMU) a
network and two VMs (docs/providers/libvirt.md).

Connection settings come from the environment (`eval "$(virtplane lab env)"`).

The Linux web and database VMs get cloud-init from templates/ (docs/cloud-init.md): an admin user with the lab's SSH
key everywhere, nginx on the web servers (whose application token is a secret: plans show only the digest) and a
fixed address on the database servers. vSphere delivers it in guestinfo keys, Proxmox VE as snippets on the lab's
lab-snippets storage (web) or as PVE's own options (database: the template says no more than they can), Hyper-V as a
NoCloud ISO in a DVD drive, XenServer as a config-drive VDI.
"""

import pulumi

import virtplane

config = pulumi.Config()
web_count = config.get_int("webCount") or 2
vlan = config.get_int("vlan") or 120
LAB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZpcnRwbGFuZWxhYmV4YW1wbGVrZXk lab@virtplane"  # set lab:sshKey
admin = {"admin_user": config.get("adminUser") or "ops", "ssh_key": config.get("sshKey") or LAB_KEY, "vlan": vlan}
app_token = config.get_secret("appToken") or pulumi.Output.secret("lab-app-token-not-for-production")


def web_init() -> virtplane.CloudInit:
    return virtplane.CloudInit(user_data="templates/web.yaml.j2", vars={**admin, "app_token": app_token})


def db_init(address: str) -> virtplane.CloudInit:
    return virtplane.CloudInit(user_data="templates/db.yaml.j2", network_config="templates/network.yaml.j2",
                               vars={**admin, "address": address, "gateway": f"10.{vlan}.0.1"})


esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
on_esx = pulumi.ResourceOptions(provider=esx)

app_net = virtplane.Network("lab-app", vlan=vlan, opts=on_esx)

webs = [
    virtplane.VirtualMachine(
        f"lab-web-{i}",
        cpus=2,
        memory="2GiB",
        disks=[virtplane.Disk("20GiB")],
        nics=[virtplane.Nic(app_net)],
        tags=["web", "lab"],
        cloud_init=web_init(),
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
    cloud_init=db_init(f"10.{vlan}.0.10"),
    opts=on_esx,
)

# Accelerators on vSphere. Only DC0_C0_H0 has GPUs enabled for passthrough, two A100s and an L4 (H1's A100 is
# capable, not enabled; H2 has none). A GPU cannot be given whole and sliced into vGPUs at once, so the lab holds a vGPU
# workstation (profile grid_a100-20c on an A100, in Shared Direct; each A100 already runs another team's 20 GB vGPU:
# equal-size mode takes only 20 GB ones), a passthrough VM that names the L4's address (fixed DirectPath I/O; its
# large BAR needs UEFI, and virtplane writes the 64-bit MMIO settings) and an SR-IOV appliance (a virtual function of
# H0's X710). Placement puts all three on H0 (`→ host DC0_C0_H0` in the plan). What the lab's hosts refuse is in
# stacks/lab-refused (a second stack `make lab` does not apply).
gpu_ws = virtplane.VirtualMachine(
    "lab-gpu-ws",
    cpus=4,
    memory="16GiB",
    firmware="uefi",
    disks=[virtplane.Disk("40GiB")],
    nics=[virtplane.Nic(app_net)],
    gpus=[virtplane.Gpu("vgpu", profile="grid_a100-20c")],
    tags=["gpu", "lab"],
    opts=on_esx,
)

gpu_passthrough = virtplane.VirtualMachine(
    "lab-gpu-pt",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    disks=[virtplane.Disk("40GiB")],
    nics=[virtplane.Nic(app_net)],
    gpus=[virtplane.Gpu("passthrough", device="0000:af:00.0")],
    tags=["gpu", "lab"],
    opts=on_esx,
)

sriov_appliance = virtplane.VirtualMachine(
    "lab-sriov",
    cpus=2,
    memory="4GiB",
    disks=[virtplane.Disk("10GiB")],
    nics=[virtplane.Nic(app_net, adapter="sriov")],
    tags=["sriov", "lab"],
    opts=on_esx,
)

# Desktops on vSphere: four linked clones of the template lab-golden (its current snapshot), each with a vGPU of
# lab-gpu-ws's size (a time-sliced GPU hosts one frame-buffer size at a time) on DC0_C0_H0's two A100s, the lab's
# vGPU GPUs in Shared Direct mode. Their 2 x 80 GB hold eight 20 GB vGPUs: vdi-pool-3, vdi-pool-4 (another team's)
# and lab-gpu-ws hold three, so a sixth desktop is refused at plan, naming the numbers.
desktops = virtplane.DesktopPool(
    "lab-vdi",
    template="lab-golden",
    size=4,
    cpus=2,
    memory="4GiB",
    gpus=[virtplane.Gpu("vgpu", profile="grid_a100-20c")],
    nics=[virtplane.Nic(app_net)],
    tags=["vdi", "lab"],
    opts=on_esx,
)

# The same shape on the Proxmox cluster: a VLAN on the nodes' bridge, two web VMs placed by virtplane
# (the online node with the most free memory) and a database VM pinned to a node.
pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
on_pve = pulumi.ResourceOptions(provider=pve)

pve_net = virtplane.Network("lab-pve-app", vlan=vlan, opts=on_pve)

# Accelerators on Proxmox VE. pve1's A100 (mapping `a100`) cannot be passed through whole while it serves mdev
# instances, and pve2 has an L4 with no mdev types: the lab holds a vGPU workstation (mdev type nvidia-471 on pve1),
# a passthrough VM (placement gives it the L4, so it lands on pve2) and an SR-IOV appliance (a virtual function of
# pve2's X710). The lab's nodes report 6 GiB free and device VMs reserve all their memory (balloon=0), so these stay
# small and come first: a plan places VMs in declaration order, counting what it placed, and the web VMs below would
# otherwise fill pve1 and pve2. A VF's VLAN cannot be set in a VM's configuration, so the appliance's VF is on the
# bridge untagged, beside a VirtIO NIC on the VLAN.
pve_gpu_ws = virtplane.VirtualMachine(
    "lab-pve-gpu-ws",
    cpus=4,
    memory="4GiB",
    machine="q35",
    firmware="uefi",
    disks=[virtplane.Disk("40GiB")],
    nics=[virtplane.Nic(pve_net)],
    gpus=[virtplane.Gpu("vgpu", profile="nvidia-471")],
    tags=["gpu", "lab"],
    opts=on_pve,
)

pve_gpu_passthrough = virtplane.VirtualMachine(
    "lab-pve-gpu-pt",
    cpus=2,
    memory="2GiB",
    machine="q35",
    firmware="uefi",
    disks=[virtplane.Disk("20GiB")],
    nics=[virtplane.Nic(pve_net)],
    gpus=[virtplane.Gpu("passthrough")],
    tags=["gpu", "lab"],
    opts=on_pve,
)

pve_sriov_appliance = virtplane.VirtualMachine(
    "lab-pve-sriov",
    cpus=2,
    memory="2GiB",
    machine="q35",
    disks=[virtplane.Disk("10GiB")],
    nics=[virtplane.Nic(pve_net), virtplane.Nic("vmbr0", adapter="sriov")],
    tags=["sriov", "lab"],
    opts=on_pve,
)

# Desktops on Proxmox VE: four linked clones of the template lab-golden on pve1, each with an A100-4C mdev
# instance (nvidia-471, the workstation's type). Their memory is reserved too: 4 x 512 MiB fill what the
# workstation leaves of pve1's 6 GiB.
pve_desktops = virtplane.DesktopPool(
    "lab-pve-vdi",
    template="lab-golden",
    size=4,
    cpus=2,
    memory="512MiB",
    gpus=[virtplane.Gpu("vgpu", profile="nvidia-471")],
    nics=[virtplane.Nic(pve_net)],
    tags=["vdi", "lab"],
    opts=on_pve,
)

pve_webs = [
    virtplane.VirtualMachine(
        f"lab-pve-web-{i}",
        cpus=2,
        memory="2GiB",
        disks=[virtplane.Disk("20GiB")],
        nics=[virtplane.Nic(pve_net)],
        tags=["web", "lab"],
        cloud_init=web_init(),
        opts=on_pve,
    )
    for i in range(1, web_count + 1)
]

pve_db = virtplane.VirtualMachine(
    "lab-pve-db",
    cpus=4,
    sockets=2,
    memory="4GiB",  # pve2 has 6 GiB free; lab-pve-gpu-pt and lab-pve-sriov reserve 2 GiB each there
    node="pve2",
    machine="q35",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("40GiB"), virtplane.Disk("100GiB", bus="virtio-blk")],
    nics=[virtplane.Nic(pve_net)],
    nested_virtualization=True,
    tags=["db", "lab"],
    cloud_init=db_init(f"10.{vlan}.0.20"),
    opts=on_pve,
)

# A system container (LXC) on Proxmox VE, beside the VMs: Debian 12 from the template the lab's nodes hold (storage
# `local`), unprivileged (the default), with a mount point for its data and a NIC on the VLAN. It will run Docker
# (docker=True), so the policy checks it has the two features Docker needs in an unprivileged container.
pve_ct = virtplane.Container(
    "lab-pve-ct",
    template="debian-12-standard_12.7-1_amd64.tar.zst",
    cpus=2,
    memory="1GiB",
    swap="512MiB",
    rootfs=virtplane.Disk("8GiB"),
    mounts=[virtplane.Mount("/srv/data", "10GiB")],
    nics=[virtplane.Nic(pve_net)],
    features=virtplane.ContainerFeatures(nesting=True, keyctl=True),
    docker=True,
    node="pve3",
    tags=["ct", "lab"],
    opts=on_pve,
)

# The Hyper-V host: a VLAN on its switch (HYPERV_SWITCH, lab-switch), a Generation 1 web VM (BIOS), a
# Generation 2 database VM (UEFI, secure boot, nested virtualization) and a Generation 2 desk VM whose name
# Hyper-V takes as it is, apostrophe included (names travel as data, never as PowerShell text).
hv = virtplane.Endpoint("lab-hyperv", kind="hyperv")
on_hv = pulumi.ResourceOptions(provider=hv)

hv_net = virtplane.Network("lab-hv-app", vlan=vlan, opts=on_hv)

hv_web = virtplane.VirtualMachine(
    "lab-hv-web",
    cpus=2,
    memory="2GiB",
    firmware="bios",
    disks=[virtplane.Disk("20GiB", bus="ide")],
    nics=[virtplane.Nic(hv_net)],
    tags=["web", "lab"],
    cloud_init=web_init(),
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
    cloud_init=db_init(f"10.{vlan}.0.30"),
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

# Accelerators on Hyper-V: a GPU partition of LAB-HV1's partitionable GPU (profile gpu-p/8: the GPU split in eight;
# configuration version 12.0, the host's default) and a passthrough VM holding the host's DDA GPU (NVIDIA A2) by
# Discrete Device Assignment: `virtplane lab up` dismounts that GPU from the host at start, as the DDA page has an
# administrator do once, so the inventory lists it; the VM gets static memory. The lab has no SR-IOV appliance
# here: lab-switch is an internal switch, made without IOV (SR-IOV is chosen when an external switch is created on
# an SR-IOV NIC, and LAB-HV1's NIC has no virtual functions).
hv_gpu_ws = virtplane.VirtualMachine(
    "lab-hv-gpu-ws",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("60GiB")],
    nics=[virtplane.Nic(hv_net)],
    gpus=[virtplane.Gpu("vgpu", profile="gpu-p/8")],
    tags=["gpu", "lab"],
    opts=on_hv,
)

hv_gpu_passthrough = virtplane.VirtualMachine(
    "lab-hv-gpu-pt",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("60GiB")],
    nics=[virtplane.Nic(hv_net)],
    gpus=[virtplane.Gpu("passthrough")],
    tags=["gpu", "lab"],
    opts=on_hv,
)

# Desktops on Hyper-V: differencing VHDXs on lab-golden's VHDX, each with a partition of LAB-HV1's GPU. The GPU is
# split in eight (virtplane sets the partition count before the first partition: Set-VMHostPartitionableGpu; one
# count at a time, so lab-hv-gpu-ws takes gpu-p/8 too) and lab-hv-gpu-ws holds one partition: four desktops take
# four more (an eighth is refused at plan, naming the numbers).
hv_desktops = virtplane.DesktopPool(
    "lab-hv-vdi",
    template="lab-golden",
    size=4,
    cpus=2,
    memory="2GiB",
    gpus=[virtplane.Gpu("vgpu", profile="gpu-p/8")],
    nics=[virtplane.Nic(hv_net)],
    tags=["vdi", "lab"],
    opts=on_hv,
)

# The XenServer pool (lab-pool: xs-gpu, xs-sriov, xs-plain): a VLAN network made once for the pool, a web VM from the
# endpoint's template (Other install media), a database VM (UEFI, secure boot, two sockets, nested virtualization:
# placed on a host that offers it), a VM cloned from the custom template debian-12-base (its 10 GiB disk is kept and
# grown), a vGPU workstation (GRID A100-4C on xs-gpu's A100), a passthrough VM (xs-gpu's L4, the only GPU with the
# passthrough type enabled) and an SR-IOV appliance on the pool's SR-IOV network lab-sriov (xs-sriov's X710).
xs = virtplane.Endpoint("lab-xenserver", kind="xenserver")
on_xs = pulumi.ResourceOptions(provider=xs)

xs_net = virtplane.Network("lab-xs-app", vlan=vlan, opts=on_xs)

xs_web = virtplane.VirtualMachine(
    "lab-xs-web",
    cpus=2,
    memory="2GiB",
    disks=[virtplane.Disk("20GiB")],
    nics=[virtplane.Nic(xs_net)],
    tags=["web", "lab"],
    cloud_init=web_init(),
    opts=on_xs,
)

xs_db = virtplane.VirtualMachine(
    "lab-xs-db",
    cpus=4,
    sockets=2,
    memory="8GiB",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("40GiB"), virtplane.Disk("100GiB")],
    nics=[virtplane.Nic(xs_net)],
    nested_virtualization=True,
    tags=["db", "lab"],
    cloud_init=db_init(f"10.{vlan}.0.40"),
    opts=on_xs,
)

xs_debian = virtplane.VirtualMachine(
    "lab-xs-debian",
    clone_from="debian-12-base",
    linked_clone=True,
    cpus=2,
    memory="2GiB",
    disks=[virtplane.Disk("20GiB")],
    nics=[virtplane.Nic(xs_net)],
    tags=["app", "lab"],
    opts=on_xs,
)

xs_gpu_ws = virtplane.VirtualMachine(
    "lab-xs-gpu-ws",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    disks=[virtplane.Disk("40GiB")],
    nics=[virtplane.Nic(xs_net)],
    gpus=[virtplane.Gpu("vgpu", profile="GRID A100-4C")],
    tags=["gpu", "lab"],
    opts=on_xs,
)

xs_gpu_passthrough = virtplane.VirtualMachine(
    "lab-xs-gpu-pt",
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    disks=[virtplane.Disk("40GiB")],
    nics=[virtplane.Nic(xs_net)],
    gpus=[virtplane.Gpu("passthrough")],
    tags=["gpu", "lab"],
    opts=on_xs,
)

xs_sriov_appliance = virtplane.VirtualMachine(
    "lab-xs-sriov",
    cpus=2,
    memory="4GiB",
    disks=[virtplane.Disk("10GiB")],
    nics=[virtplane.Nic(xs_net), virtplane.Nic("lab-sriov", adapter="sriov")],
    tags=["sriov", "lab"],
    opts=on_xs,
)

# Desktops on XenServer: four clones (VM.clone, copy-on-write) of the custom template debian-12-base, each with a
# GRID A100-4C vGPU on xs-gpu's A100, as the workstation has.
xs_desktops = virtplane.DesktopPool(
    "lab-xs-vdi",
    template="debian-12-base",
    size=4,
    cpus=2,
    memory="2GiB",
    gpus=[virtplane.Gpu("vgpu", profile="GRID A100-4C")],
    nics=[virtplane.Nic(xs_net)],
    tags=["vdi", "lab"],
    opts=on_xs,
)

# The lab's libvirt daemon: real QEMU (TCG), with a storage pool and a network named 'default'. A network of its own
# for the web VM and a UEFI database VM with secure boot, kept small: QEMU emulates every instruction; cloud-init
# on a seed CD-ROM, as on the other hypervisors. Its host has
# no GPU or SR-IOV device (the lab never hands QEMU the machine's own), and libvirt's test driver, which has ours,
# gives every connection a fresh copy of its host: a device VM there would not outlive `virtplane apply`
# (docs/providers/libvirt.md).
kvm = virtplane.Endpoint("lab-libvirt", kind="libvirt")
on_kvm = pulumi.ResourceOptions(provider=kvm)

kvm_net = virtplane.Network("lab-kvm-app", vlan=config.get_int("vlan") or 120, opts=on_kvm)

kvm_web = virtplane.VirtualMachine(
    "lab-kvm-web",
    cpus=1,
    memory="256MiB",
    disks=[virtplane.Disk("2GiB")],
    nics=[virtplane.Nic(kvm_net)],
    cloud_init=web_init(),
    tags=["web", "lab"],
    opts=on_kvm,
)

kvm_db = virtplane.VirtualMachine(
    "lab-kvm-db",
    cpus=2,
    sockets=1,
    memory="512MiB",
    machine="q35",
    firmware="uefi",
    secure_boot=True,
    disks=[virtplane.Disk("4GiB"), virtplane.Disk("8GiB", bus="virtio-blk")],
    nics=[virtplane.Nic(kvm_net), virtplane.Nic("default", adapter="e1000e")],
    cloud_init=db_init(f"10.{vlan}.0.50"),
    tags=["db", "lab"],
    opts=on_kvm,
)

lab_vms = [*webs, db, gpu_ws, gpu_passthrough, sriov_appliance, pve_gpu_ws, pve_gpu_passthrough, pve_sriov_appliance,
           *pve_webs, pve_db, hv_web, hv_db, hv_desk, hv_gpu_ws, hv_gpu_passthrough, xs_web, xs_db, xs_debian,
           xs_gpu_ws, xs_gpu_passthrough, xs_sriov_appliance, kvm_web, kvm_db]
pulumi.export("vms", [vm.resource_name for vm in lab_vms])
pulumi.export("desktops", {pool.resource_name: pool.desktops
                           for pool in (desktops, pve_desktops, hv_desktops, xs_desktops)})
pulumi.export("containers", [pve_ct.resource_name])
