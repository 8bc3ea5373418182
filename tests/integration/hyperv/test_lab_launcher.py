"""The lab's Hyper-V launcher (``virtplane_lab.hyperv``) prepares its host over PSRP: the DDA GPU it is told to
dismount is assignable once the host serves, and asking again changes nothing."""

from __future__ import annotations

import pytest

from tests.support import hyperv as raw_hyperv
from virtplane.errors import VirtplaneError
from virtplane_lab import cli as lab_cli
from virtplane_lab import hyperv


def assignable(instance: hyperv.HypervInstance) -> list[str]:
    devices = raw_hyperv.run(instance, lambda ps: ps.add_cmdlet("Get-VMHostAssignableDevice"))
    return [raw_hyperv.prop(device, "LocationPath") for device in devices]


def test_a_host_started_with_dismount_lists_that_gpu_as_assignable_and_a_second_dismount_is_harmless(tmp_path):
    instance = hyperv.start(tmp_path, host_name="HV-LAUNCH", profile="gpu", name="launch",
                            dismount=lab_cli.HYPERV_DDA_GPUS)
    try:
        assert set(lab_cli.HYPERV_DDA_GPUS) <= set(assignable(instance))
        before = assignable(instance)
        hyperv.dismount_devices(instance, lab_cli.HYPERV_DDA_GPUS)
        assert assignable(instance) == before
    finally:
        instance.stop()


def test_a_host_started_without_dismount_keeps_its_gpu_mounted(tmp_path):
    instance = hyperv.start(tmp_path, host_name="HV-KEEP", profile="gpu", name="keep")
    try:
        assert not set(lab_cli.HYPERV_DDA_GPUS) & set(assignable(instance))
    finally:
        instance.stop()


def test_dismounting_on_a_host_without_iommu_fails_in_one_sentence_naming_the_device(tmp_path):
    with pytest.raises(VirtplaneError) as raised:
        hyperv.start(tmp_path, host_name="HV-NOIOV", profile="plain", name="noiov", dismount=lab_cli.HYPERV_DDA_GPUS)
    message = str(raised.value)
    assert message.startswith("dismounting the device 'PCIROOT(0)#PCI(0300)#PCI(0000)' on the Hyper-V simulator "
                              "failed: ") and "Discrete Device Assignment" in message
    assert "\n" not in message and "Traceback" not in message
