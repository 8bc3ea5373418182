"""The Hyper-V Provider: one host over WinRM/PSRP; hands out the kind drivers and reads the host's facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from virtplane.errors import ConnectionFailed
from virtplane.inventory import Host
from virtplane.providers.base import Provider
from virtplane.providers.hyperv import settings as settings_module
from virtplane.providers.hyperv.client import Cmd, HypervClient, by_type, pipe
from virtplane.providers.hyperv.devices import PNP_CLASSES
from virtplane.providers.hyperv.host_facts import host_facts
from virtplane.providers.hyperv.network import NetworkDriver
from virtplane.providers.hyperv.settings import ENV, INPUT_ONLY, HypervSettings
from virtplane.providers.hyperv.vm import HOST_VERSION_READS, VirtualMachineDriver
from virtplane.providers.hyperv.vm_state import MAX_NAME


@dataclass
class HostInfo:
    name: str
    vhd_path: str | None


class HypervProvider(Provider):
    name = "hyperv"
    settings_model = HypervSettings
    offers_linked_clones = True  # a differencing VHDX whose parent is the golden image's VHDX
    setting_names = (*ENV, *INPUT_ONLY)
    identity_settings = frozenset({"server"})  # one Hyper-V host

    def __init__(self, client: HypervClient, settings: HypervSettings, host: HostInfo) -> None:
        self.client = client
        self.settings = settings
        self.host = host
        self.drivers = {
            "VirtualMachine": VirtualMachineDriver(client, settings, host),
            "Network": NetworkDriver(client, settings),
        }

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        return settings_module.settings_from(endpoint, inputs, environ)

    @classmethod
    def connect(cls, settings: BaseModel) -> HypervProvider:
        config = cast(HypervSettings, settings)
        client = HypervClient(config)
        try:
            result = client.run([pipe(Cmd("Get-VMHost")), pipe(Cmd("Get-Service", {"Name": "ClusSvc"}))],
                                 "read the host", retry_read=False,
                                 tolerate=lambda error: error.is_("NoServiceFoundForGivenName"))
        except ConnectionFailed:
            raise
        except Exception as exc:  # a ProviderError wrapping the connection failure
            raise ConnectionFailed(str(exc)) from None
        [vmhost] = by_type(result.objects, "VMHost")[:1] or [None]
        cluster = [s for s in by_type(result.objects, "ServiceController") if str(s.get("Status")) == "Running"]
        if cluster:
            client.close()
            raise ConnectionFailed(
                f"Hyper-V endpoint '{config.endpoint_name}' ({config.host}) is a Failover Cluster node (its Cluster "
                "service runs), and virtplane does not manage clustered Hyper-V yet: Get-VM sees only this node's VMs, "
                "so a VM live-migrated to another node would look deleted; point the endpoint at a standalone host")
        name = (vmhost.text("ComputerName") or vmhost.text("Name")) if vmhost is not None else None
        vhd_path = vmhost.text("VirtualHardDiskPath") if vmhost is not None else None
        return cls(client, config, HostInfo(name or config.host, vhd_path))

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """Hyper-V takes any name up to 100 characters (quotes, ``$``, brackets included): they travel as data."""
        if 0 < len(name) <= MAX_NAME:
            return None
        return f"must be 1 to {MAX_NAME} characters on Hyper-V; it has {len(name)}"

    def identity(self) -> str:
        return f"host {self.host.name}"

    def hosts(self) -> list[Host]:
        statements = [pipe(Cmd("Get-VMHost")), pipe(Cmd("Get-VMHostSupportedVersion")),
                      pipe(Cmd("Get-VMHostAssignableDevice")), pipe(Cmd("Get-VMHostPartitionableGpu")),
                      pipe(Cmd("Get-VMSwitch")), pipe(Cmd("Get-VM"), Cmd("Get-VMAssignableDevice")),
                      pipe(Cmd("Get-VM"), Cmd("Get-VMGpuPartitionAdapter")), pipe(Cmd("Get-VMHostNumaNode")),
                      *HOST_VERSION_READS[:2],
                      pipe(Cmd("Get-PnpDevice", {"Class": list(PNP_CLASSES)}),
                           Cmd("Select-Object", {"Property": ["InstanceId", "Class", "FriendlyName"]}))]
        # a cmdlet the host lacks (Get-VMHostPartitionableGpu before Windows Server 2025) leaves that fact unknown
        result = self.client.run(statements, "read the host's facts", retry_read=True,
                                 tolerate=lambda error: error.is_("CommandNotFoundException"))
        objects = result.objects
        [vmhost] = by_type(objects, "VMHost")[:1] or objects[:1]
        [system] = by_type(objects, "Win32_OperatingSystem")[:1] or [None]
        return [host_facts(self.settings.endpoint_name, vmhost, by_type(objects, "VMHostSupportedVersion"),
                           by_type(objects, "VMHostAssignableDevice"), by_type(objects, "VMHostPartitionableGpu"),
                           by_type(objects, "VMSwitch"), by_type(objects, "VMAssignedDevice"),
                           processors=by_type(objects, "Win32_Processor"), system=system,
                           numa=by_type(objects, "VMHostNumaNode"), pnp=by_type(objects, "Win32_PnPEntity"),
                           partitions=by_type(objects, "VMGpuPartitionAdapter"))]

    def close(self) -> None:
        self.client.close()
