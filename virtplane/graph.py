"""A small dependency graph: nodes, their dependencies, and a deterministic topological order."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from virtplane.errors import VirtplaneError

N = TypeVar("N", bound=Hashable)


class CycleError(VirtplaneError):
    """The declared dependencies form a cycle; the message names it."""


class Graph(Generic[N]):
    def __init__(self) -> None:
        self._deps: dict[N, set[N]] = {}

    def add(self, node: N, depends_on: Iterable[N] = ()) -> None:
        deps = self._deps.setdefault(node, set())
        for dep in depends_on:
            if dep != node:
                deps.add(dep)
                self._deps.setdefault(dep, set())

    def dependencies(self, node: N) -> set[N]:
        return set(self._deps.get(node, ()))

    def order(self) -> list[N]:
        """Every node after its dependencies; ties broken by name so plans are stable."""
        indegree = {node: len(deps) for node, deps in self._deps.items()}
        users: dict[N, list[N]] = {node: [] for node in self._deps}
        for node, deps in self._deps.items():
            for dep in deps:
                users[dep].append(node)
        ready = sorted((n for n, d in indegree.items() if d == 0), key=str)
        order: list[N] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for user in users[node]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    ready.append(user)
            ready.sort(key=str)
        if len(order) != len(self._deps):
            stuck = sorted((str(n) for n, d in indegree.items() if d > 0))
            raise CycleError(f"dependency cycle among: {', '.join(stuck)}")
        return order
