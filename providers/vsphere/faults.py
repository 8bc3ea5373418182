"""Turn vSphere faults into one-sentence messages a person can act on."""

from __future__ import annotations

from typing import Any

from virtplane.errors import ProviderError

# Fault attributes worth naming when vSphere (or the simulator) sends no message of its own.
_DETAIL_ATTRIBUTES = ("name", "invalidProperty", "property", "deviceIndex", "file", "datastore", "obj")


def fault_name(fault: Any) -> str:
    """The fault's short type name, e.g. ``InvalidDeviceSpec`` for ``vim.fault.InvalidDeviceSpec``."""
    return type(fault).__name__.rsplit(".", 1)[-1]


def fault_text(fault: Any) -> str:
    """vSphere's own message for ``fault`` (a MethodFault, a task error or any exception)."""
    for attribute in ("localizedMessage", "msg"):
        text = getattr(fault, attribute, None)
        if isinstance(text, str) and text.strip() and not text.startswith("*types."):
            return text.strip().rstrip(".")
    details = []
    for attribute in _DETAIL_ATTRIBUTES:
        value = getattr(fault, attribute, None)
        if value not in (None, "", 0):
            shown = getattr(value, "_moId", value)
            details.append(f"{attribute}={shown}")
    faults = getattr(fault, "faultMessage", None) or []
    details += [m.message for m in faults if getattr(m, "message", None)]
    name = fault_name(fault)
    if name in {"Exception", "MethodFault"} and str(fault):
        name = str(fault)
    return f"{name} ({', '.join(details)})" if details else name


def provider_error(what: str, fault: Any) -> ProviderError:
    """``ProviderError("vSphere could not <what>: <vSphere's message>")``."""
    return ProviderError(f"vSphere could not {what}: {fault_text(fault)}")
