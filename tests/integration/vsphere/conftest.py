"""One vSphere simulator for the whole session, and connected providers on it."""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Connect, Disconnect
from pyVmomi import SoapAdapter

from virtplane.providers.vsphere import stream
from virtplane.providers.vsphere.provider import API_VERSION, VsphereProvider
from virtplane_lab import vcsim

_names = itertools.count()


@pytest.fixture(scope="session")
def simulator(vcsim_instance: vcsim.VcsimInstance) -> vcsim.VcsimInstance:
    """The session's simulator (tests/conftest.py); tests here use names no other test uses."""
    return vcsim_instance


@pytest.fixture(scope="session")
def provider(simulator: vcsim.VcsimInstance) -> Iterator[VsphereProvider]:
    connected = VsphereProvider.connect(VsphereProvider.settings_from("lab", {}, simulator.environ()))
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def raw_si(simulator: vcsim.VcsimInstance) -> Iterator[Any]:
    """A plain pyVmomi session, for changes made behind virtplane's back (at the API version virtplane
    speaks: an older one cannot read a VM holding a Dynamic DirectPath GPU)."""
    host, port = simulator.host.rsplit(":", 1)
    si = Connect(host=host, port=int(port), user=simulator.user, pwd=simulator.password,
                 sslContext=ssl.create_default_context(cafile=simulator.ca_file), version=API_VERSION)
    yield si
    Disconnect(si)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A VM / network name no other test uses."""
    return f"t{next(_names)}-{request.node.name[5:30].replace('_', '-')}"


@pytest.fixture
def stack(name: str) -> str:
    return f"stack-{name}"


class SoapCalls(list[str]):
    """Every SOAP method this process calls, in order, with the arguments of the last call of each in ``args``."""

    def __init__(self) -> None:
        super().__init__()
        self.args: dict[str, Any] = {}


def _record_soap_calls(monkeypatch: pytest.MonkeyPatch, *, wire_names: bool) -> SoapCalls:
    calls = SoapCalls()
    original = SoapAdapter.SoapStubAdapter.InvokeMethod

    def recording(self, mo, info, args, outerStub=None):
        method = info.wsdlName if wire_names else info.name
        calls.append(method)
        calls.args[method] = args
        return original(self, mo, info, args, outerStub)

    monkeypatch.setattr(SoapAdapter.SoapStubAdapter, "InvokeMethod", recording)
    original_page = stream.Reader.page  # the streaming reader sends its PropertyCollector calls itself

    def recording_page(self, collector, info, args, rows):
        method = info.wsdlName if wire_names else info.name
        calls.append(method)
        calls.args[method] = args
        return original_page(self, collector, info, args, rows)

    monkeypatch.setattr(stream.Reader, "page", recording_page)
    return calls


@pytest.fixture
def soap_calls(monkeypatch: pytest.MonkeyPatch) -> SoapCalls:
    """SOAP calls by pyVmomi's method name (``Destroy`` for DestroyView)."""
    return _record_soap_calls(monkeypatch, wire_names=False)


@pytest.fixture
def soap_methods(monkeypatch: pytest.MonkeyPatch) -> SoapCalls:
    """SOAP calls by their name on the wire (``DestroyView``)."""
    return _record_soap_calls(monkeypatch, wire_names=True)
