"""What each host's facts say to each request shape, judged once per plan instead of once per VM and candidate host.

The host checks that never read ``usage`` (virtplane/host_checks.py ``HOST_FACT_CHECKS``) give one answer for one
(request shape, host) pair for as long as the host's facts stay the same, so placement (virtplane/placement.py
``judge``) takes their refusals and unknowns from here and runs only the capacity checks and the device choice
afresh. Refusals and unknowns are frozen, so the same ones can be handed to every VM of the shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtplane.host_checks import HOST_FACT_CHECKS, request_shape
from virtplane.inventory import Host
from virtplane.specs import VirtualMachineSpec
from virtplane.verdicts import Judgement, Refusal, Unknown

if TYPE_CHECKING:
    from virtplane.placement import Usage


class FactVerdicts:
    """One plan's (or one check's) answers of ``HOST_FACT_CHECKS``, per host object and request shape."""

    def __init__(self) -> None:
        # (id of the host, request shape) -> (the host, its refusals, its unknowns); the host is kept so that an id
        # reused by another object can never return another host's answer
        self._said: dict[tuple[int, tuple[object, ...]], tuple[Host, tuple[Refusal, ...], tuple[Unknown, ...]]] = {}

    def judge(self, spec: VirtualMachineSpec, host: Host, usage: Usage, judgement: Judgement) -> None:
        """Add to ``judgement`` what ``HOST_FACT_CHECKS`` say about ``spec`` on ``host``, in their order."""
        key = (id(host), request_shape(spec))
        said = self._said.get(key)
        if said is None or said[0] is not host:
            fresh = Judgement()
            for check in HOST_FACT_CHECKS:
                check(spec, host, usage, fresh)
            said = self._said[key] = (host, tuple(fresh.refusals), tuple(fresh.unknowns))
        judgement.refusals.extend(said[1])
        judgement.unknowns.extend(said[2])
