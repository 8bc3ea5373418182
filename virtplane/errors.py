"""The errors virtplane reports to people: one sentence each, naming what went wrong and where."""

from __future__ import annotations


class VirtplaneError(Exception):
    """An error with a message fit to show a user as it is (no traceback)."""


class SpecError(VirtplaneError):
    """A declared resource failed validation; the message names the resource and the field."""

    def __init__(self, kind: str, name: str, problems: list[tuple[str, str]]):
        self.kind, self.name, self.problems = kind, name, problems
        details = "; ".join(f"field '{field}': {message}" for field, message in problems)
        super().__init__(f"{kind} '{name}': {details}")


class StackInvalid(VirtplaneError):
    """Several things are wrong with a stack (resources failing validation, a stack program that then failed):
    one line per error, each one sentence."""

    def __init__(self, errors: list[VirtplaneError]):
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


def raise_all(errors: list[VirtplaneError]) -> None:
    """Raise the one error, or all of them at once; nothing when ``errors`` is empty."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise StackInvalid(errors)


class ProviderError(VirtplaneError):
    """A hypervisor refused or failed an operation; the message includes the hypervisor's own text."""


class OwnershipError(VirtplaneError):
    """A same-named object exists on the hypervisor without our ownership marker."""


class ConnectionFailed(VirtplaneError):
    """An endpoint could not be reached or logged into."""

