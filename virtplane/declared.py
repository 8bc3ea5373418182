"""What a stack program declares, as collected for virtplane's own engine (no Pulumi engine present)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virtplane.errors import SpecError
from virtplane.specs import Spec

if TYPE_CHECKING:
    from virtplane.pools.spec import DeclaredPool


@dataclass
class DeclaredEndpoint:
    name: str
    kind: str
    inputs: dict[str, Any]


@dataclass
class DeclaredResource:
    kind: str
    name: str
    spec: Spec
    endpoint: str
    depends_on: set[str] = field(default_factory=set)
    file: str | None = None  # where the stack program declared it (for SARIF locations)
    line: int | None = None
    pool: str | None = None  # the DesktopPool this VM is a desktop of
    import_id: str | None = None  # opts.import_: the id of an existing object this resource stands for (an import)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class DesiredStack:
    """Everything one evaluation of a stack program declared."""

    project: str
    stack: str
    endpoints: dict[str, DeclaredEndpoint] = field(default_factory=dict)
    resources: dict[str, DeclaredResource] = field(default_factory=dict)
    pools: dict[str, DeclaredPool] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """The name written into ownership markers: ``project/stack``."""
        return f"{self.project}/{self.stack}"


class Collector:
    """Receives resources from their constructors while a program is evaluated by virtplane. A resource that
    fails validation is noted (``refuse``) and the program goes on, so every error of the stack is reported in
    one run."""

    def __init__(self) -> None:
        self.endpoints: dict[str, DeclaredEndpoint] = {}
        self.resources: list[tuple[str, str, Spec, Any, set[str], tuple[str, int] | None]] = []
        self.root: str | None = None  # the stack directory: declaration sites are the first frame inside it
        self.pools: dict[str, tuple[Any, Any]] = {}  # pool name -> (PoolSpec, its Endpoint or None)
        self.pool_of: dict[str, str] = {}  # desktop (VM) name -> its pool's name
        self.imports: dict[tuple[str, str], str] = {}  # (kind, name) -> opts.import_
        self._refused: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._order: dict[tuple[str, str], int] = {}

    def declare(self, kind: str, name: str) -> None:
        """Note that the program declared ``kind`` ``name`` (valid or not), for the order errors are reported in."""
        self._order.setdefault((kind, name), len(self._order))

    def refuse(self, error: SpecError) -> None:
        """Note ``error``; the problems of one resource are kept together, in the order they were found."""
        noted = self._refused.setdefault((error.kind, error.name), [])
        noted.extend(problem for problem in error.problems if problem not in noted)

    def errors(self) -> list[SpecError]:
        """Every error noted, one per resource, in declaration order."""
        keys = sorted(self._refused, key=lambda key: self._order.get(key, len(self._order)))
        return [SpecError(kind, name, self._refused[(kind, name)]) for kind, name in keys]


_active: Collector | None = None


def active_collector() -> Collector | None:
    return _active


def set_collector(collector: Collector | None) -> None:
    global _active
    _active = collector
