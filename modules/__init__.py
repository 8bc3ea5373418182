"""Reusable, hypervisor-portable components (Pulumi ComponentResources) built from virtplane resources."""
