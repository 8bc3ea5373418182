"""Proxmox VE's rule for VM names: a DNS name.

The ``name`` parameter of ``POST /nodes/{node}/qemu`` has format ``dns-name`` (PVE API viewer; pve-common's
``pve_verify_dns_name``): dot-separated labels of letters, digits and ``-``, each starting and ending with a
letter or digit. PVE sets no length limit on it. Networks are VLAN tags on a bridge with no name on the
cluster (providers/proxmox/network.py), so any name the core accepts will do for them.
"""

from __future__ import annotations

import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
DNS_NAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
DNS_NAME_RULE = ("must be a DNS name on Proxmox VE: letters, digits and '-' in dot-separated labels, each "
                 "starting and ending with a letter or digit (no '_', no spaces)")


def vm_name_problem(name: str) -> str | None:
    """Why PVE would refuse ``name`` for a VM, or None."""
    if DNS_NAME.match(name):
        return None
    suggestion = _suggest(name)
    return DNS_NAME_RULE + (f"; e.g. '{suggestion}'" if suggestion else "")


def _suggest(name: str) -> str | None:
    """The name with every other character turned into '-' and stray dashes and dots trimmed, when that is valid."""
    labels = [re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9-]", "-", label)).strip("-") for label in name.split(".")]
    candidate = ".".join(label for label in labels if label)
    return candidate if candidate and candidate != name and DNS_NAME.match(candidate) else None
