"""Which Provider class serves which endpoint ``kind``. Adding a hypervisor is one line here."""

from __future__ import annotations

import importlib

from virtplane.errors import SpecError
from virtplane.providers.base import Provider

KINDS = {
    "vsphere": "virtplane.providers.vsphere.provider:VsphereProvider",
    "proxmox": "virtplane.providers.proxmox.provider:ProxmoxProvider",
    "hyperv": "virtplane.providers.hyperv.provider:HypervProvider",
    "libvirt": "virtplane.providers.libvirt.provider:LibvirtProvider",
    "xenserver": "virtplane.providers.xenserver.provider:XenserverProvider",
}


def provider_class(kind: str, endpoint: str = "?") -> type[Provider]:
    target = KINDS.get(kind)
    if target is None:
        raise SpecError("Endpoint", endpoint, [("kind", f"got {kind!r}; expected one of {', '.join(KINDS)}")])
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
