"""ct.docker (mandatory): a container that says it runs Docker (``docker=True``) can run it.

Docker inside an unprivileged LXC container needs two feature flags: ``nesting`` (namespaces inside the container:
Docker makes its own) and ``keyctl`` ("For unprivileged containers only: Allow the use of the keyctl() system call.
This is required to use docker inside a container", PVE's API). Without them the container starts and Docker fails
inside it, so a stack that says ``docker=True`` is refused until both are on. A flag a clone leaves unset is its
source's: cannot be verified. (Proxmox itself recommends running application containers in a VM.)

Sources: Proxmox VE API viewer, ``/nodes/{node}/lxc`` (``features``: nesting, keyctl); Proxmox VE Administration
Guide, "Proxmox Container Toolkit".

Links:
- https://pve.proxmox.com/pve-docs/api-viewer/index.html#/nodes/{node}/lxc
- https://pve.proxmox.com/pve-docs/chapter-pct.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.containers import ContainerUnderCheck
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck

RULE = Rule("ct.docker", MANDATORY, "Docker in an unprivileged container needs nesting and keyctl",
            "A container declared with docker=True that runs unprivileged needs the features nesting and keyctl, or "
            "Docker fails inside it.",
            (sources.PVE_LXC_API, sources.PVE_PCT), applies=lambda ct: ct.spec.docker)
NEEDED = ("nesting", "keyctl")


def check(ct: ContainerUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if not ct.spec.docker:
        return []
    if ct.unprivileged is None:
        return [ct.unknown(RULE, "whether the clone runs unprivileged, which decides the features Docker needs",
                           field="unprivileged")]
    if not ct.unprivileged:
        return []
    features = ct.spec.features
    unset = [flag for flag in NEEDED if features is None or getattr(features, flag) is None]
    off = [flag for flag in NEEDED if features is not None and getattr(features, flag) is False]
    found = []
    if off:
        found.append(ct.finding(
            RULE, f"Docker in an unprivileged container needs features {' and '.join(NEEDED)}; "
                  f"{' and '.join(off)} {'is' if len(off) == 1 else 'are'} off",
            field=f"features.{off[0]}",
            remediation="features=ContainerFeatures(nesting=True, keyctl=True), or run Docker in a VM"))
    if unset:
        found.append(ct.unknown(RULE, f"the clone's {' and '.join(unset)} feature (its source's)",
                                field=f"features.{unset[0]}", remediation="declare features=ContainerFeatures("
                                                                           "nesting=True, keyctl=True)"))
    return found
