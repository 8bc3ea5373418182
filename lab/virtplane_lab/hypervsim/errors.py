"""Errors a cmdlet raises: terminating (the statement fails) or not (written, and the pipeline goes on).

Each carries what a real error record carries: the FullyQualifiedErrorId's first part (the cmdlet's class is
appended), the ErrorCategory and the target object. Hyper-V's cmdlets report an object they cannot find as
``InvalidArgument`` with FQID ``InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM`` and the name as
target (published output: "Hyper-V was unable to find a virtual machine with name "LABDC"." with CategoryInfo
"InvalidArgument: (LABDC:String) [Get-VM], VirtualizationException"; the same shape for Get-VMSwitch and for
Get-VMIdeController on a Generation 2 VM: "Generation 2 virtual machines do not support IDE.")."""

from __future__ import annotations

from typing import Any


class CmdletError(Exception):
    """A PowerShell error record to write. ``category`` is an ``ErrorCategory`` member name;
    ``error_id`` the first part of the FullyQualifiedErrorId (the cmdlet's class is appended)."""

    def __init__(self, message: str, *, category: str = "InvalidOperation", error_id: str | None = None,
                 reason: str = "VirtualizationException", target: Any = None, terminating: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id or category
        self.reason = reason
        self.target = target
        self.terminating = terminating
        self.stops_batch = False


def binding_error(message: str, error_id: str) -> CmdletError:
    """A parameter binding failure: terminating, as PowerShell's ParameterBindingException is."""
    return CmdletError(message, category="InvalidArgument", error_id=error_id, reason="ParameterBindingException",
                       terminating=True)


def not_found(message: str, target: Any = None) -> CmdletError:
    return CmdletError(message, category="InvalidArgument", error_id="InvalidParameter", target=target)


def invalid_state(message: str, target: Any = None) -> CmdletError:
    return CmdletError(message, category="InvalidOperation", error_id="InvalidState", target=target)


CURRENT_STATE = "The operation cannot be performed while the virtual machine is in its current state."
