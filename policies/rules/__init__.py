"""One module per rule: ``RULE`` (id, default level, help, vendor sources) and ``check(vm, inventory, stack)``.

``ALL`` is the order rules run and are listed in (README catalogue, SARIF ``rules[]``)."""

from virtplane.policies.rules import (
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
    virtualization,
)

ALL = (placement, virtualization, slat, iommu, nested, gpu_passthrough, vgpu, sriov, mmio, graphics_mode,
       nested_with_devices, hardware_version, memory_reservation, mobility, numa)
BY_ID = {module.RULE.id: module for module in ALL}
