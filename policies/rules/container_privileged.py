"""ct.privileged (mandatory, waivable): a privileged container is a security finding.

In a privileged container, root is root on the host: its only walls are AppArmor, seccomp and namespaces, and LXC
does not treat an escape from one as a security issue. Proxmox VE's guide therefore keeps privileged containers for
trusted environments, and makes new containers unprivileged. The finding blocks ``apply`` until the stack waives it
with its reason (``waive: {ct.privileged@<container>: "…"}``), so no privileged container is made by accident; a stack
may instead downgrade it to an advisory. A clone that does not say is its source's: cannot be verified.

Sources: Proxmox VE Administration Guide, "Proxmox Container Toolkit" (Security Considerations: privileged and
unprivileged containers).

Links:
- https://pve.proxmox.com/pve-docs/chapter-pct.html
"""

from __future__ import annotations

from virtplane.inventory import Inventory
from virtplane.policies import sources
from virtplane.policies.containers import ContainerUnderCheck
from virtplane.policies.model import MANDATORY, Finding, Rule, StackUnderCheck

RULE = Rule("ct.privileged", MANDATORY, "Containers run unprivileged unless a waiver says why",
            "In a privileged container root is root on the host, kept in only by AppArmor, seccomp and namespaces; "
            "Proxmox recommends them for trusted environments only. Run it unprivileged, or waive the rule for it "
            "with a reason.",
            (sources.PVE_PCT,), applies=lambda ct: ct.unprivileged is not True)


def check(ct: ContainerUnderCheck, inventory: Inventory, stack: StackUnderCheck) -> list[Finding]:
    if ct.unprivileged is None:
        return [ct.unknown(RULE, "whether the clone runs unprivileged (it keeps its source's setting)",
                           field="unprivileged")]
    if ct.unprivileged is False:
        return [ct.finding(RULE, "the container is privileged: its root user is root on the host", field="unprivileged",
                           remediation="set unprivileged=True, or waive ct.privileged for it with a reason in "
                                       "virtplane:policy")]
    return []
