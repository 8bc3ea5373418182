import pytest

from virtplane.graph import CycleError, Graph


def test_nodes_come_after_their_dependencies_in_a_stable_order():
    graph: Graph[str] = Graph()
    graph.add("vm-b", {"net"})
    graph.add("vm-a", {"net"})
    graph.add("net")
    assert graph.order() == ["net", "vm-a", "vm-b"]


def test_a_cycle_is_an_error_naming_its_members():
    graph: Graph[str] = Graph()
    graph.add("a", {"b"})
    graph.add("b", {"a"})
    graph.add("c")
    with pytest.raises(CycleError, match="a, b"):
        graph.order()


def test_self_dependencies_are_ignored():
    graph: Graph[str] = Graph()
    graph.add("a", {"a"})
    assert graph.order() == ["a"]
