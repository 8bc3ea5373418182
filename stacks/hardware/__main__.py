"""A stack that asks for hardware: a passthrough GPU, vGPU slices, an SR-IOV NIC and nested virtualization, on a
vSphere endpoint (``vc``) and a Proxmox VE endpoint (``pve``). `virtplane check stacks/hardware --inventory
stacks/hardware/inventory.json` checks it offline against the committed host facts (see README, "Policy checks").
"""

import pulumi

import virtplane

vc = virtplane.Endpoint("vc", kind="vsphere")
on_vc = pulumi.ResourceOptions(provider=vc)
pve = virtplane.Endpoint("pve", kind="proxmox")
on_pve = pulumi.ResourceOptions(provider=pve)

virtplane.VirtualMachine("render-1", cpus=16, memory="64GiB", firmware="uefi", machine="vmx-19", node="esx-gpu",
                         gpus=[virtplane.Gpu("passthrough", device="0000:3b:00.0")], opts=on_vc)
virtplane.VirtualMachine("infer-1", cpus=8, memory="32GiB", machine="vmx-19", firmware="uefi",
                         gpus=[virtplane.Gpu("vgpu", profile="grid_a100-20c")], opts=on_vc)
virtplane.VirtualMachine("edge-1", cpus=4, memory="16GiB", machine="vmx-19",
                         nics=[virtplane.Nic("fast-net", adapter="sriov")], opts=on_vc)
virtplane.VirtualMachine("vdi-1", cpus=4, memory="16GiB", machine="q35", node="pve1",
                         gpus=[virtplane.Gpu("vgpu", profile="nvidia-471")], opts=on_pve)
virtplane.VirtualMachine("ci-runner", cpus=8, memory="16GiB", nested_virtualization=True, node="pve1", opts=on_pve)
