"""Batched reads through the PropertyCollector: one container view, paged RetrievePropertiesEx.

``stream=True`` reads the pages with the streaming reader (stream.py: the fields virtplane's normalization reads,
as read-only records), for the reads that scale with the VMs; otherwise pyVmomi deserializes them whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyVmomi import vim, vmodl

from virtplane.providers.vsphere.faults import provider_error
from virtplane.providers.vsphere.stream import Reader

PAGE_SIZE = 1000
Row = tuple[Any, dict[str, Any]]


def retrieve(content: Any, container: Any, vim_type: type, paths: Sequence[str], page_size: int = PAGE_SIZE,
             recursive: bool = True, stream: bool = False) -> list[Row]:
    """Read ``paths`` of every ``vim_type`` object under ``container``: [(moref, {path: value})].

    ``content`` is the ServiceContent (``si.RetrieveContent()``, read once per connection).
    """
    return retrieve_types(content, container, {vim_type: paths}, page_size=page_size, recursive=recursive,
                          stream=stream)


def retrieve_types(content: Any, container: Any, wanted: Mapping[type, Sequence[str]],
                   page_size: int = PAGE_SIZE, recursive: bool = True, stream: bool = False) -> list[Row]:
    """Like ``retrieve`` for several types in one pass (paths of a supertype apply to subtypes)."""
    try:
        view = content.viewManager.CreateContainerView(container, list(wanted), recursive)
    except vmodl.MethodFault as fault:
        raise provider_error("open a view of the inventory", fault) from None
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView)
        objects = [vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])]
        return _collect(content.propertyCollector, objects, wanted, page_size, stream)
    finally:
        with contextlib.suppress(vmodl.MethodFault):
            view.DestroyView()


def retrieve_objects(content: Any, objects: Iterable[Any], vim_type: type, paths: Sequence[str],
                     page_size: int = PAGE_SIZE, stream: bool = False) -> list[Row]:
    """Read ``paths`` of the given objects in one paged pass (objects gone meanwhile are skipped)."""
    specs = [vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in objects]
    if not specs:
        return []
    return _collect(content.propertyCollector, specs, {vim_type: paths}, page_size, stream)


def _collect(collector: Any, objects: list[Any], wanted: Mapping[type, Sequence[str]], page_size: int,
             stream: bool = False) -> list[Row]:
    props = [vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=list(paths), all=False)
             for t, paths in wanted.items()]
    spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=objects, propSet=props,
                                                   reportMissingObjectsInResults=True)
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)
    rows: list[Row] = []
    stub = collector._stub
    try:
        if stream and Reader.usable(stub):
            return Reader(stub).collect(collector, spec, options)
        result = collector.RetrievePropertiesEx(specSet=[spec], options=options)
        while result is not None:
            rows.extend((item.obj, {p.name: p.val for p in item.propSet or []})
                        for item in result.objects or [])
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(token=result.token)
    except vmodl.MethodFault as fault:
        raise provider_error("read the inventory", fault) from None
    return rows
