"""A desktop pool's capacity as the policy layer reports it: the desktops no host can serve make one finding on the
pool (how many of its desktops fit, and why the first one left out does not), not one per desktop.

The rules evaluate each desktop as the VM it is (policies/evaluate.py, in declaration order, so the desktops that
fit are the lowest numbers); this folds their hw.placement findings together. virtplane plan and apply stop on the
same condition before anything is made, with the same numbers (virtplane/pools/placement.py)."""

from __future__ import annotations

from collections.abc import Mapping

from virtplane.policies.model import Finding
from virtplane.policies.rules import placement

RULE = placement.RULE.id


def fold(findings: list[Finding], pool_of: Mapping[str, str], sizes: Mapping[str, int]) -> list[Finding]:
    """``findings`` with each pool's hw.placement findings replaced by one on the pool (``pool_of``: desktop ->
    pool; ``sizes``: pool -> desktops declared)."""
    left_out: dict[str, list[Finding]] = {}
    kept: list[Finding] = []
    for finding in findings:
        pool = pool_of.get(finding.resource)
        if pool is not None and finding.rule == RULE and finding.blocking:
            if pool not in left_out:
                kept.append(finding)  # replaced below, in the first one's place
            left_out.setdefault(pool, []).append(finding)
        else:
            kept.append(finding)
    for pool, found in left_out.items():
        first = found[0]
        why = first.message.split(" — ", 1)[1] if " — " in first.message else first.message
        names = ", ".join(f.resource for f in found[:3]) + (" …" if len(found) > 3 else "")
        merged = Finding(RULE, first.level, pool, first.endpoint, None, first.field,
                         f"DesktopPool '{pool}': {len(found)} of its {sizes.get(pool, len(found))} desktops find no "
                         f"host of endpoint '{first.endpoint}' after the stack's other VMs ({names}); "
                         f"{first.resource}: {why}",
                         f"lower size by {len(found)}, or {first.remediation}", first.file, first.line,
                         first.waived, first.downgraded)
        kept[kept.index(first)] = merged
    return kept
