"""One module per rule: ``RULE`` (id, default level, help, vendor sources) and ``check(vm, inventory, stack)``.

``ALL`` is the order the VM rules run in; ``CONTAINER_RULES`` the containers' (``check(ct, inventory, stack)``,
policies/containers.py); ``EVERY`` both, the order rules are listed in (docs catalogue, SARIF ``rules[]``). The
host-level refusals most VM rules report are found once per VM by placement's ``judge`` (virtplane/host_checks.py,
virtplane/device_choice.py), each tagged with the id of the rule that owns it."""

from virtplane.policies.rules import (
    container_devices,
    container_docker,
    container_privileged,
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
CONTAINER_RULES = (container_privileged, container_docker, container_devices)
EVERY = ALL + CONTAINER_RULES
BY_ID = {module.RULE.id: module for module in EVERY}
