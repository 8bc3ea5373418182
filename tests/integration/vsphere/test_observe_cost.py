"""Observe reads every VM in a bounded number of SOAP calls, whatever the number of VMs."""

from __future__ import annotations

from virtplane.providers.base import Owner
from virtplane.specs import VirtualMachineSpec


def test_observe_uses_the_same_number_of_calls_for_5_and_15_vms(provider, stack, name, soap_calls):
    driver = provider.driver("VirtualMachine")
    spec = VirtualMachineSpec(cpus=1, memory=128, disks=[{"size": 1}], nics=[{"network": "DC0_DVPG0"}],
                              power="off")
    counts = []
    for total in (5, 15):
        while len(driver.observe(stack, {}).owned) < total:
            index = len(driver.observe(stack, {}).owned)
            driver.create(Owner(stack, f"{name}-{index}"), spec)
        names = [f"{name}-{i}" for i in range(total)] + [f"{name}-missing"]
        soap_calls.clear()
        result = driver.observe(stack, {"VirtualMachine": dict.fromkeys(names)})
        counts.append(len(soap_calls))
        assert len(result.owned) == total
    assert counts[0] == counts[1]
    assert counts[0] <= 4
