"""One module per rule: ``RULE`` (id, default level, help, vendor sources) and ``check(vm, inventory, stack)``.

``ALL`` is the order rules run and are listed in (docs catalogue, SARIF ``rules[]``). The host-level refusals most
rules report are found once per VM by placement's ``judge`` (virtplane/host_checks.py, virtplane/device_choice.py),
each tagged with the id of the rule that owns it."""

from virtplane.policies.rules import (
    device_group,
    device_in_use,
    gpu_passthrough,
    graphics_mode,
    hardware_version,
    iommu,
    memory_reservation,
    mmio,
    mobility,
    nested,
    nested_with_devices,
    numa,
    placement,
    slat,
    sriov,
    vgpu,
    vgpu_size,
    virtualization,
)

ALL = (placement, virtualization, slat, iommu, nested, gpu_passthrough, device_group, device_in_use, vgpu, vgpu_size,
       sriov, mmio, graphics_mode, nested_with_devices, hardware_version, memory_reservation, mobility, numa)
BY_ID = {module.RULE.id: module for module in ALL}
