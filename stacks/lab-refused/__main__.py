"""VMs the lab's hosts refuse, one per hardware fact, for `virtplane check stacks/lab-refused` (exit 2, one mandatory
finding each) and as examples of what the policy layer catches before anything is made. `make lab` does not apply
this stack; `virtplane apply` refuses it.

The lab's hardware that says no (docs/policies.md, "Rule catalogue"):
- DC0_C0_H1's A10 (0000:61:00.0) is claimed by render-farm-7, another team's powered-off VM with a Dynamic
  DirectPath I/O device: vSphere gives it a free A10 when it powers on, and this is the only one.
- DC0_C0_H0's two A100s (80 GB) each run a 20 GB vGPU (vdi-pool-3, vdi-pool-4) in NVIDIA's default equal-size
  mode: they take only 20 GB vGPUs.
- DC0_C0_H0's L4 maps a 32 GB BAR: it needs UEFI firmware and 64-bit MMIO, and the VM boots BIOS.
- pve1's T4 (mapping t4) is held by render-9, another team's stopped VM.
- pve2's A2 (0000:86:00.0) shares IOMMU group 70 with an NVMe drive: it cannot be passed through alone.

Connection settings come from the environment (`eval "$(virtplane lab env)"`).
"""

import pulumi

import virtplane

esx = virtplane.Endpoint("lab-vsphere", kind="vsphere")
on_esx = pulumi.ResourceOptions(provider=esx)

virtplane.VirtualMachine(
    "refused-gpu-in-use",  # hw.device-in-use
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    node="DC0_C0_H1",
    gpus=[virtplane.Gpu("passthrough", device="0000:61:00.0")],
    opts=on_esx,
)

virtplane.VirtualMachine(
    "refused-vgpu-size-mix",  # hw.vgpu-size
    cpus=4,
    memory="8GiB",
    firmware="uefi",
    node="DC0_C0_H0",
    gpus=[virtplane.Gpu("vgpu", profile="grid_a100-40c")],
    opts=on_esx,
)

virtplane.VirtualMachine(
    "refused-large-bar-bios",  # hw.mmio
    cpus=4,
    memory="8GiB",
    firmware="bios",
    node="DC0_C0_H0",
    gpus=[virtplane.Gpu("passthrough", device="0000:af:00.0")],
    opts=on_esx,
)

pve = virtplane.Endpoint("lab-proxmox", kind="proxmox")
on_pve = pulumi.ResourceOptions(provider=pve)

virtplane.VirtualMachine(
    "refused-pve-gpu-in-use",  # hw.device-in-use
    cpus=2,
    memory="2GiB",
    machine="q35",
    firmware="uefi",
    node="pve1",
    gpus=[virtplane.Gpu("passthrough", device="t4")],
    opts=on_pve,
)

virtplane.VirtualMachine(
    "refused-pve-iommu-group",  # hw.device-group
    cpus=2,
    memory="2GiB",
    machine="q35",
    firmware="uefi",
    node="pve2",
    gpus=[virtplane.Gpu("passthrough", device="0000:86:00.0")],
    opts=on_pve,
)
