"""The Proxmox VE Provider: connect (verified TLS, ticket or API token), hand out the kind drivers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel

from virtplane.errors import ConnectionFailed, ProviderError
from virtplane.inventory import Host
from virtplane.providers.base import Provider
from virtplane.providers.proxmox import settings as settings_module
from virtplane.providers.proxmox.client import PveClient
from virtplane.providers.proxmox.cluster import Cluster
from virtplane.providers.proxmox.container import ContainerDriver
from virtplane.providers.proxmox.host_facts import cluster_identity
from virtplane.providers.proxmox.host_reader import HostReader
from virtplane.providers.proxmox.names import vm_name_problem
from virtplane.providers.proxmox.network import NetworkDriver
from virtplane.providers.proxmox.settings import ENV, INPUT_ONLY, ProxmoxSettings
from virtplane.providers.proxmox.vm import VirtualMachineDriver
from virtplane.providers.proxmox.vmids import VmidAllocator


class ProxmoxProvider(Provider):
    name = "proxmox"
    settings_model = ProxmoxSettings
    offers_linked_clones = True  # linked clones of templates (qm clone without --full)
    setting_names = (*ENV, *INPUT_ONLY)  # the Endpoint's arguments (settings_from turns them into ProxmoxSettings)
    identity_settings = frozenset({"endpoint"})  # one cluster: its VMs are found on every node

    def __init__(self, client: PveClient, settings: ProxmoxSettings):
        self.client = client
        self.settings = settings
        self.cluster = Cluster(client, settings.storage)
        vmids = VmidAllocator(client)  # VMs and containers share PVE's VMID space
        self.drivers = {
            "VirtualMachine": VirtualMachineDriver(client, self.cluster, settings, vmids),
            "Network": NetworkDriver(self.cluster, settings),
            "Container": ContainerDriver(client, self.cluster, settings, vmids),
        }

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        return settings_module.settings_from(endpoint, inputs, environ)

    @classmethod
    def connect(cls, settings: BaseModel) -> ProxmoxProvider:
        config = cast(ProxmoxSettings, settings)
        if config.ca_file and not config.insecure and not os.path.isfile(config.ca_file):
            raise ConnectionFailed(f"cannot use {ENV['ca_file']} {config.ca_file} to verify Proxmox endpoint "
                                   f"'{config.endpoint_name}' at {config.url}: no such file")
        return cls(PveClient(config), config)

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """VM and container names are DNS names (providers/proxmox/names.py; a container's is its hostname unless it
        declares one); networks have no name on the cluster."""
        return vm_name_problem(name) if kind in ("VirtualMachine", "Container") else None

    def identity(self) -> str:
        """The cluster's name (``/cluster/status``), or ``node:<name>`` for a standalone node."""
        rows = self.client.get("/cluster/status", "read the cluster status")
        found = cluster_identity(rows)
        if found is None:
            raise ProviderError(f"Proxmox endpoint '{self.settings.endpoint_name}' names neither a cluster nor a "
                                "single node in /cluster/status, so it cannot be told apart from other endpoints")
        return found

    def hosts(self) -> list[Host]:
        """Every node's facts, read in one batched pass (see ``host_reader``)."""
        return HostReader(self.client, self.settings.endpoint_name).hosts()

    def close(self) -> None:
        self.client.close()
