"""The virtplane hardware policy pack: the rules of ``virtplane check`` under ``pulumi preview/up --policy-pack``.

The Pulumi CLI runs this file (``python -m pulumi.policy ENGINE_ADDR PACK_DIR``); see policies/crossguard/adapter.py
for the policies and how host facts are configured."""

from pulumi_policy import PolicyPack

from virtplane.policies.crossguard.adapter import policies

PolicyPack("virtplane-hardware", policies(),
           description="virtplane: VMs against host hardware facts (devices, vGPU, SR-IOV, nested, IOMMU)")
