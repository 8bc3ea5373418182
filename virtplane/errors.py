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


class ProviderError(VirtplaneError):
    """A hypervisor refused or failed an operation; the message includes the hypervisor's own text."""


class OwnershipError(VirtplaneError):
    """A same-named object exists on the hypervisor without our ownership marker."""


class ConnectionFailed(VirtplaneError):
    """An endpoint could not be reached or logged into."""


def raise_all(errors: list[VirtplaneError]) -> None:
    """Report every error found at once: one as it is; several as one error of their common type (else a
    VirtplaneError) listing each sentence on its own line."""
    if not errors:
        return
    if len(errors) == 1:
        raise errors[0]
    kinds = {type(error) for error in errors}
    cls = kinds.pop() if len(kinds) == 1 else VirtplaneError
    combined = cls.__new__(cls)
    Exception.__init__(combined, f"{len(errors)} problems:\n" + "\n".join(f"  {error}" for error in errors))
    raise combined
