"""The XenServer / XCP-ng Provider: one pool through its master (verified TLS, the official ``xenapi`` client);
hands out the kind drivers and reads the hosts' facts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel

from virtplane.errors import ConnectionFailed
from virtplane.inventory import Host
from virtplane.providers.base import PENDING_PREFIX, Provider
from virtplane.providers.xenserver import settings as settings_module
from virtplane.providers.xenserver.client import XapiClient
from virtplane.providers.xenserver.network import NetworkDriver
from virtplane.providers.xenserver.pool_facts import PoolFacts
from virtplane.providers.xenserver.pool_reader import PoolReader
from virtplane.providers.xenserver.settings import ENV, INPUT_ONLY, XenserverSettings
from virtplane.providers.xenserver.vm import VirtualMachineDriver


class XenserverProvider(Provider):
    name = "xenserver"
    settings_model = XenserverSettings
    setting_names = (*ENV, *INPUT_ONLY)
    identity_settings = frozenset({"server"})  # the pool's master (another address may be another pool)
    offers_linked_clones = True  # VM.clone: copy-on-write disks where the SR supports it (VM.copy is the full copy)

    def __init__(self, client: XapiClient, settings: XenserverSettings) -> None:
        self.client = client
        self.settings = settings
        self.facts = PoolFacts(client, settings)
        self.drivers = {
            "VirtualMachine": VirtualMachineDriver(client, settings, self.facts),
            "Network": NetworkDriver(client, settings, self.facts),
        }

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        return settings_module.settings_from(endpoint, inputs, environ)

    @classmethod
    def connect(cls, settings: BaseModel) -> XenserverProvider:
        config = cast(XenserverSettings, settings)
        if config.ca_file and not config.insecure and not os.path.isfile(config.ca_file):
            raise ConnectionFailed(f"cannot use {ENV['ca_file']} {config.ca_file} to verify XenServer endpoint "
                                   f"'{config.endpoint_name}' at {config.url}: no such file")
        return cls(XapiClient(config), config)

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """XAPI's names are free strings (``name_label``); only the prefix virtplane gives a VM it is still making
        cannot begin one."""
        if kind == "VirtualMachine" and name.startswith(PENDING_PREFIX):
            return f"must not begin with '{PENDING_PREFIX}' (virtplane's name for a VM it is still making)"
        return None

    def identity(self) -> str:
        """The pool's uuid: every member and address of one pool is one backend."""
        return f"pool {self.facts.uuid()}"

    def hosts(self) -> list[Host]:
        return PoolReader(self.client).hosts(self.settings.endpoint_name)

    def close(self) -> None:
        self.client.close()
