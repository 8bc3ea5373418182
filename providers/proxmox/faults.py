"""Turn Proxmox VE's answers and connection failures into one sentence a person can act on.

Every message says what virtplane was doing and carries PVE's own text. A few of PVE's errors get a short
explanation added, because their text alone does not say what to do: a missing privilege, a VM locked by
another operation, a configuration lock timeout, lost quorum and an unreachable node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from virtplane.errors import ProviderError

_PERMISSION = re.compile(r"Permission check failed \((?P<path>[^,()]*), (?P<privilege>[^()]+)\)", re.IGNORECASE)
_LOCKED = re.compile(r"VM is locked \((?P<lock>[^)]+)\)")


class PveError(ProviderError):
    """PVE answered with an error status; ``pve_text`` is PVE's own message (with per-field errors)."""

    def __init__(self, message: str, status: int, pve_text: str):
        super().__init__(message)
        self.status = status
        self.pve_text = pve_text

    @property
    def already_exists(self) -> bool:
        return "already exists" in self.pve_text

    @property
    def missing(self) -> bool:
        """The object is gone: PVE says its configuration file does not exist."""
        return "does not exist" in self.pve_text and "onfiguration file" in self.pve_text


class OutcomeUnknown(ProviderError):
    """A write was sent but no answer came back: it may or may not have happened. Re-read, then decide."""


class TaskFailed(ProviderError):
    """A PVE task ended with an exit status other than OK; ``exitstatus`` is PVE's text."""

    def __init__(self, message: str, exitstatus: str):
        super().__init__(message)
        self.exitstatus = exitstatus


class TaskTimeout(ProviderError):
    """A PVE task did not stop within virtplane's deadline (it may still finish)."""


def pve_text(message: str | None, errors: Mapping[str, Any] | None = None) -> str:
    """PVE's message and per-field errors as one line: ``parameter verification failed: memory: …``."""
    text = " ".join((message or "").split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    if errors:
        fields = "; ".join(f"{key}: {' / '.join(_lines(value))}" for key, value in sorted(errors.items()))
        text = f"{text}: {fields}" if text else fields
    return text or "no reason given"


def _lines(value: Any) -> list[str]:
    return [line.strip().rstrip(".") for line in str(value).splitlines() if line.strip()]


def explain(text: str) -> str:
    """PVE's text with what it means added, for the errors whose text alone does not say what to do."""
    locked = _LOCKED.search(text)
    if locked:
        return (f"{text} (another operation, {locked['lock']}, holds the VM; retry when it has finished, or "
                f"clear a stale lock with 'qm unlock')")
    if "can't lock file" in text and "got timeout" in text:
        return f"{text} (another task held the VM's configuration lock too long; retry when it has finished)"
    if "no quorum" in text:
        return f"{text} (the cluster has lost quorum, so its configuration is read-only until enough nodes are back)"
    if text.lower().startswith("no route to host"):
        return f"{text} (the node is offline or cannot be reached from the cluster)"
    return text


def refusal(endpoint: str, principal: str, what: str, status: int, text: str) -> PveError:
    """The error for an HTTP error answer from PVE while virtplane tried to ``what``."""
    found = _PERMISSION.search(text) if status == 403 else None
    if found and found["path"]:
        return permission_denied(endpoint, principal, what, found["privilege"], found["path"], text)
    if status == 403:
        message = (f"Proxmox endpoint '{endpoint}': permission denied to {what} ({text}; PVE names no privilege, "
                   f"so check the roles of {principal})")
    elif status == 401:
        message = f"Proxmox endpoint '{endpoint}' refused the credentials of {principal} while trying to {what}: {text}"
    elif status >= 500:
        message = f"Proxmox could not {what}: {explain(text)}"
    else:
        message = f"Proxmox refused to {what}: {explain(text)}"
    return PveError(message, status, text)


def permission_denied(endpoint: str, principal: str, what: str, privilege: str, path: str, text: str) -> PveError:
    """The refusal sentence names what virtplane was doing (and so the VM), the privilege, the path and who lacks it."""
    return PveError(f"Proxmox endpoint '{endpoint}' refused to {what}: permission denied for {privilege} on {path} "
                    f"({principal} lacks it)", 403, text)


def is_bare_permission_failure(error: PveError) -> bool:
    """A 403 in which PVE names no privilege (some of its checks, e.g. VM.Allocate on create, in some versions)."""
    return error.status == 403 and _PERMISSION.search(error.pve_text) is None


def task_failure(what: str, exitstatus: str) -> TaskFailed:
    return TaskFailed(f"Proxmox could not {what}: TASK ERROR: {explain(exitstatus)}", exitstatus)

