"""The vSphere Provider: connect with verified TLS, resolve placement, hand out kind drivers."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel
from pyVim.connect import Connect, Disconnect
from pyVmomi import vim, vmodl

from virtplane.errors import ConnectionFailed
from virtplane.inventory import Host
from virtplane.providers.base import Provider
from virtplane.providers.vsphere import settings as settings_module
from virtplane.providers.vsphere.faults import fault_text, provider_error
from virtplane.providers.vsphere.host_facts import read_hosts
from virtplane.providers.vsphere.inventory import Inventory
from virtplane.providers.vsphere.names import name_problem
from virtplane.providers.vsphere.network import NetworkDriver
from virtplane.providers.vsphere.settings import VsphereSettings
from virtplane.providers.vsphere.vm import VirtualMachineDriver

CONNECT_TIMEOUT = 15.0  # reaching the server; an unreachable one fails within this
CALL_TIMEOUT = 300.0  # any one SOAP call once connected
# The vSphere API version spoken. Dynamic DirectPath GPU backings exist from 7.0 on; a server advertising
# an older API (the simulator, vCenter 6.5) would otherwise be spoken to at that version, which silently
# turns such a backing into a plain one when written and fails to read a VM holding one.
API_VERSION = "vim.version.v7_0"


class VsphereProvider(Provider):
    name = "vsphere"
    settings_model = VsphereSettings
    offers_linked_clones = True  # snapshot-based: child disks on the template's current snapshot
    identity_settings = frozenset({"server", "datacenter"})  # VMs are read from the datacenter's VM folder

    def __init__(self, si: Any, settings: VsphereSettings, inventory: Inventory):
        self.si = si
        self.settings = settings
        self.inventory = inventory
        self.stream_reads = True  # the VMs' devices for the host inventory: the streaming reader (stream.py)
        self.drivers = {
            "VirtualMachine": VirtualMachineDriver(si, inventory),
            "Network": NetworkDriver(si, inventory),
        }

    @classmethod
    def settings_from(cls, endpoint: str, inputs: Mapping[str, Any], environ: Mapping[str, str]) -> BaseModel:
        return settings_module.settings_from(endpoint, inputs, environ)

    @classmethod
    def connect(cls, settings: BaseModel) -> VsphereProvider:
        config = cast(VsphereSettings, settings)
        si = _login(config)
        try:
            inventory = Inventory(si, config)
        except BaseException:
            _logout(si)
            raise
        return cls(si, config, inventory)

    @classmethod
    def name_problem(cls, kind: str, name: str) -> str | None:
        """VMs and port groups: at most 80 characters as vSphere stores them (providers/vsphere/names.py)."""
        return name_problem(name)

    def identity(self) -> str:
        """The vCenter's instance UUID (``content.about.instanceUuid``); the server address when it has none
        (a standalone ESXi host)."""
        try:
            about = self.si.RetrieveContent().about
        except vmodl.MethodFault as fault:
            raise provider_error("read the server's identity", fault) from None
        return about.instanceUuid or self.settings.server

    def hosts(self) -> list[Host]:
        """Every host of the endpoint's datacenter with its hardware facts, in one batched read. ``endpoint``
        on each Host is the server address (the provider does not know the stack's Endpoint name)."""
        placement = self.inventory.placement
        return read_hosts(self.si.RetrieveContent(), placement.datacenter, self.settings.server,
                          stream=self.stream_reads)

    def close(self) -> None:
        _logout(self.si)


def _login(settings: VsphereSettings) -> Any:
    target = f"{settings.host}:{settings.port}"
    try:
        socket.create_connection((settings.host.strip("[]"), settings.port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ConnectionFailed(f"cannot reach vSphere at {target}: {_reason(exc)}") from None
    context = _tls_context(settings, target)
    try:
        try:
            return Connect(host=settings.host, port=settings.port, user=settings.username,
                           pwd=settings.password.get_secret_value(), sslContext=context,
                           httpConnectionTimeout=CALL_TIMEOUT, version=API_VERSION)
        except vim.fault.HostConnectFault as fault:
            # pyVmomi wraps what went wrong on the wire (TLS, a dropped connection) in this fault.
            cause = fault.__context__
            if isinstance(cause, OSError | http.client.HTTPException):
                raise cause from None
            raise
    except vim.fault.InvalidLogin as fault:
        raise ConnectionFailed(f"vSphere at {target} refused the login for user {settings.username}: "
                               f"{fault_text(fault)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise ConnectionFailed(
            f"vSphere at {target} presented a certificate that could not be verified "
            f"({exc.verify_message or exc.reason}): set VSPHERE_CA_FILE (ca_file=) to its CA bundle, or, "
            "for labs only, VSPHERE_ALLOW_UNVERIFIED_SSL=true") from None
    except ssl.SSLError as exc:
        raise ConnectionFailed(f"the TLS handshake with vSphere at {target} failed: {exc.reason or exc}"
                               ) from None
    except vmodl.MethodFault as fault:
        raise ConnectionFailed(f"vSphere at {target} refused the connection: {fault_text(fault)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectionFailed(f"cannot reach vSphere at {target}: {_reason(exc)}") from None


def _tls_context(settings: VsphereSettings, target: str) -> ssl.SSLContext:
    if settings.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailed(f"cannot use VSPHERE_CA_FILE {settings.ca_file} to verify vSphere at {target}: "
                               f"{_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _logout(si: Any) -> None:
    with contextlib.suppress(Exception):  # logging out of a dead session must not hide the outcome
        Disconnect(si)
