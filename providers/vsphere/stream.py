"""A streaming reader of the PropertyCollector's pages, for the big reads (every VM's devices).

pyVmomi turns a ``RetrievePropertiesEx`` reply into typed objects with a Python callback per XML element and a
type check per field set: at 10,000 VMs (~85 MB of XML) that is ~17 s of client CPU, against ~1 s the server
takes to write it. This reader sends the same request in the same session — pyVmomi serializes it and lends
one of its pooled HTTPS connections, with the session cookie — parses the reply with libxml2 (lxml) as it
arrives, handing Python one ``objects`` element at a time (each dropped once converted, so the XML never piles
up), and converts only the fields in ``FIELDS``: what virtplane's normalization of VMs and of host device use
reads. Measured at 2,000 VMs (bench/drift_vsphere.py), it takes about an eighth of pyVmomi's client CPU.
Everything else about the session (login, tasks, writes, faults) stays pyVmomi's: a fault reply (HTTP 500) is
deserialized by pyVmomi and raised as the same ``vmodl.MethodFault`` the pyVmomi reader raises.

The reply is the SOAP document of the vSphere Web Services API (``RetrievePropertiesExResponse`` /
``ContinueRetrievePropertiesExResponse`` carrying a ``RetrieveResult``: ``token`` and ``objects`` of
``ObjectContent``: ``obj``, ``propSet`` of ``DynamicProperty`` ``name``/``val``), per the vSphere Web Services
SDK Programming Guide, "Property Collector" and the API reference of ``PropertyCollector``.
"""

from __future__ import annotations

import base64
import http.client
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from lxml.etree import XMLPullParser
from lxml.etree import _Element as Element
from pyVmomi import Iso8601, SoapAdapter, VmomiSupport, vmodl

from virtplane.gc_pause import cycle_collector_paused

VIM_NS = "urn:vim25"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_V = "{" + VIM_NS + "}"
OBJECTS, TOKEN, OBJ, PROP_SET, NAME, VAL = (_V + tag for tag in ("objects", "token", "obj", "propSet", "name", "val"))
CHUNK = 1 << 16

# The fields of data objects this reader converts (by field name, in any type): those the normalization of VMs
# (vm.py, devices.py, pci.py, ownership.py, unexpressed.py, guestinfo.py) and of host device use (host_facts.py)
# reads. A field of a type that is not listed reads as an AttributeError naming it, so a normalization that starts
# reading another field fails the test comparing both readers (tests/integration/vsphere/test_stream_reader.py)
# until it is added here (a getattr with a default would hide it: that test compares the results too).
FIELDS = frozenset({
    # VirtualDevice and its subtypes: identity, controller, slot and capacity
    "key", "controllerKey", "unitNumber", "busNumber", "capacityInKB",
    # backings: disks, NICs (standard and distributed port groups), GPUs (fixed, dynamic, vGPU), SR-IOV
    "backing", "datastore", "fileName", "thinProvisioned", "port", "portgroupKey", "switchUuid", "deviceName",
    "vgpu", "allowedDevice", "vendorId", "deviceId", "assignedId", "id", "sriovBacking",
    "physicalFunctionBacking",
    # customValue (CustomFieldStringValue), extraConfig (OptionValue): key and value
    "value",
    # bootOptions
    "efiSecureBootEnabled",
    # a device's label (Description), named by what import lists as no field's (unexpressed.py)
    "deviceInfo", "label",
})


class Record:
    """A vSphere data object as this reader read it: the fields in ``FIELDS`` that the reply carried, and for the
    other listed fields pyVmomi's defaults (None, [], False, 0). It answers ``isinstance`` for its vSphere type
    (``isinstance(record, vim.vm.device.VirtualDisk)``) as pyVmomi's own objects do, so one normalization reads
    both. It is a partial copy and is never sent back to vSphere: a write re-reads the object through pyVmomi."""

    def __init__(self, vmomi_type: type, fields: dict[str, Any]):
        self.__dict__.update(fields)
        self.__dict__["_vmomi_type"] = vmomi_type

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() consults __class__, as for pyVmomi's objects
        return self.__dict__["_vmomi_type"]

    def __getattr__(self, name: str) -> Any:
        vmomi_type = self.__dict__["_vmomi_type"]
        spec = _properties(vmomi_type).get(name)
        if spec is None or name not in FIELDS:
            what = "has no field" if spec is None else "is read by the streaming reader without field"
            raise AttributeError(f"{vmomi_type.__name__} {what} {name!r}")
        return spec.default()

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("a streamed vSphere record is read-only; re-read the object through pyVmomi to change it")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "_vmomi_type")
        return f"Record({self.__dict__['_vmomi_type'].__name__}, {fields})"


class _Property:
    """One field of a data object type: its pyVmomi type, whether it is an array, its default."""

    __slots__ = ("array", "item", "kind", "name", "optional")

    def __init__(self, info: Any):
        self.name = info.name
        self.array = issubclass(info.type, list)
        self.item = info.type.Item if self.array else info.type  # the type of the value (of each, in an array)
        self.optional = bool(info.flags & VmomiSupport.F_OPTIONAL)
        self.kind = _kind(self.item)

    def default(self) -> Any:
        if self.array:
            return []
        if self.optional or self.kind in ("data", "moref", "enum"):
            return None
        return {"bool": False, "str": "", "int": 0, "float": 0.0}.get(self.kind)


_PROPERTIES: dict[type, dict[str, _Property]] = {}
_WANTED: dict[type, dict[str, _Property]] = {}
_TYPES: dict[str, type] = {}
_KINDS: dict[type, str] = {}


def _properties(vmomi_type: type) -> dict[str, _Property]:
    found = _PROPERTIES.get(vmomi_type)
    if found is None:
        found = {info.name: _Property(info) for info in vmomi_type._GetPropertyList()}
        _PROPERTIES[vmomi_type] = found
    return found


def _wanted(vmomi_type: type) -> dict[str, _Property]:
    """The type's fields in FIELDS, by their XML tag (``{urn:vim25}key``)."""
    found = _WANTED.get(vmomi_type)
    if found is None:
        found = {_V + name: spec for name, spec in _properties(vmomi_type).items() if name in FIELDS}
        _WANTED[vmomi_type] = found
    return found


def _kind(vmomi_type: type) -> str:
    """How a value of this type is read: data, moref, array, bool, int, float, str, enum, datetime, binary."""
    kind = _KINDS.get(vmomi_type)
    if kind is not None:
        return kind
    if issubclass(vmomi_type, list):
        kind = "array"
    elif issubclass(vmomi_type, VmomiSupport.ManagedObject):
        kind = "moref"
    elif issubclass(vmomi_type, VmomiSupport.DataObject):
        kind = "data"
    elif vmomi_type is bool:
        kind = "bool"
    elif issubclass(vmomi_type, VmomiSupport.Enum):
        kind = "enum"
    elif issubclass(vmomi_type, int):
        kind = "int"
    elif issubclass(vmomi_type, float):
        kind = "float"
    elif vmomi_type is VmomiSupport.binary:
        kind = "binary"
    elif vmomi_type is VmomiSupport.datetime:
        kind = "datetime"
    else:
        kind = "str"
    _KINDS[vmomi_type] = kind
    return kind


class Reader:
    """Reads PropertyCollector pages for one session: ``stub`` is pyVmomi's SOAP stub of the connection."""

    def __init__(self, stub: Any):
        self._stub = stub
        self._version = stub.version

    @staticmethod
    def usable(stub: Any) -> bool:
        """True when the session's stub is pyVmomi's plain SOAP stub, whose pooled connections this reader
        borrows (a session-oriented or JSON stub is read through pyVmomi)."""
        return type(stub) is SoapAdapter.SoapStubAdapter

    def collect(self, collector: Any, spec: Any, options: Any) -> list[tuple[Any, dict[str, Any]]]:
        """(moref, {path: value}) for every object the filter selects, page after page.

        Python's cycle collector is paused meanwhile (virtplane/gc_pause.py): the records hold no cycles."""
        pc = vmodl.query.PropertyCollector
        rows: list[tuple[Any, dict[str, Any]]] = []
        with cycle_collector_paused():
            token = self.page(collector, pc._GetMethodInfo("RetrievePropertiesEx"), [[spec], options], rows)
            while token:
                token = self.page(collector, pc._GetMethodInfo("ContinueRetrievePropertiesEx"), [token], rows)
        return rows

    def page(self, collector: Any, method: Any, args: Sequence[Any], rows: list[tuple[Any, dict[str, Any]]]
             ) -> str | None:
        """Send one call of ``method`` and append the objects of its reply to ``rows``; the next page's token."""
        stub = self._stub
        body = stub.SerializeRequest(collector, method, args)
        headers = {"Cookie": stub.cookie, "SOAPAction": stub.versionId,
                   "Content-Type": f"text/xml; charset={SoapAdapter.XML_ENCODING}"}
        if stub._acceptCompressedResponses:
            headers["Accept-Encoding"] = "gzip, deflate"
        conn = stub.GetConnection()
        try:
            conn.request("POST", stub.path, body, headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            stub.DropConnections()
            raise
        if response.status == 500:  # a fault: pyVmomi reads it into the MethodFault it raises
            fault = SoapAdapter.SoapResponseDeserializer(stub).Deserialize(_Decoded(response), method.result)
            response.read()
            stub.ReturnConnection(conn)
            raise fault
        if response.status != 200:
            conn.close()
            raise http.client.HTTPException(f"{response.status} {response.reason}")
        token = None
        try:
            # Only the ends of ``objects`` and ``token`` reach Python; no entity of the reply is expanded.
            parser = XMLPullParser(events=("end",), tag=(OBJECTS, TOKEN), resolve_entities=False, no_network=True)
            for chunk in _Decoded(response).chunks():
                parser.feed(chunk)
                for _, element in parser.read_events():
                    if element.tag == OBJECTS:
                        rows.append(self._object(element))
                        element.clear(keep_tail=True)  # and drop it, and the ones before, from the document
                        while element.getprevious() is not None:
                            del element.getparent()[0]
                    elif element.tag == TOKEN:
                        token = element.text
            parser.close()
        except BaseException:
            conn.close()
            raise
        stub.ReturnConnection(conn)
        return token

    def _object(self, element: Element) -> tuple[Any, dict[str, Any]]:
        ref = None
        props: dict[str, Any] = {}
        for child in element:
            if child.tag == PROP_SET:
                name = val = None
                for part in child:
                    if part.tag == NAME:
                        name = part.text
                    elif part.tag == VAL:
                        val = part
                if name is not None and val is not None:
                    props[name] = self._value(val, object)
            elif child.tag == OBJ:
                ref = self._moref(child)
        return ref, props

    def _type(self, xsi: str) -> type:
        found = _TYPES.get(xsi)
        if found is None:
            prefix, _, name = xsi.rpartition(":")
            if name == "ManagedObjectReference":  # a reference's own type is in its "type" attribute
                _TYPES[xsi] = VmomiSupport.ManagedObject
                return VmomiSupport.ManagedObject
            try:
                found = VmomiSupport.GetWsdlType(XSD_NS if prefix else VIM_NS, name)
            except KeyError:
                found = VmomiSupport.GetWsdlType(VIM_NS, name)
            found = VmomiSupport.GetCompatibleType(found, self._version)
            _TYPES[xsi] = found
        return found

    def _value(self, element: Element, expected: type) -> Any:
        xsi = element.get(XSI_TYPE)
        vmomi_type = (_TYPES.get(xsi) or self._type(xsi)) if xsi else expected
        kind = _KINDS.get(vmomi_type) or _kind(vmomi_type)
        if kind == "int":
            return int(element.text)
        if kind == "data":
            return self._record(element, vmomi_type)
        if kind == "str" or kind == "enum":
            return element.text or ""
        if kind == "array":
            item = vmomi_type.Item
            return [self._value(child, item) for child in element]
        if kind == "moref":
            return self._moref(element)
        text = element.text or ""
        if kind == "bool":
            return text == "true" or text == "1"
        if kind == "float":
            return float(text)
        if kind == "datetime":
            return Iso8601.ParseISO8601(text)
        if kind == "binary":
            return base64.b64decode(text)
        return text

    def _record(self, element: Element, vmomi_type: type) -> Record:
        wanted = _wanted(vmomi_type)  # fields of a newer API than the session speaks are not there, as in pyVmomi
        fields: dict[str, Any] = {}
        for child in element:
            spec = wanted.get(child.tag)
            if spec is None:
                continue
            if spec.array:
                fields.setdefault(spec.name, []).append(self._value(child, spec.item))
            else:
                fields[spec.name] = self._value(child, spec.item)
        return Record(vmomi_type, fields)

    def _moref(self, element: Element) -> Any:
        return self._type(element.get("type") or "ManagedObject")(element.text, self._stub)


class _Decoded:
    """The reply's body, inflated when the server compressed it (pyVmomi asks for gzip or deflate)."""

    def __init__(self, response: http.client.HTTPResponse):
        self._response = response
        encoding = (response.getheader("Content-Encoding") or "identity").lower()
        self._inflate = (zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip"
                         else zlib.decompressobj() if encoding == "deflate" else None)

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self._response.read(CHUNK)
            if not data:
                break
            yield self._inflate.decompress(data) if self._inflate else data
        if self._inflate:
            yield self._inflate.flush()

    def read(self, size: int = -1) -> bytes:  # for pyVmomi's fault deserializer
        data = self._response.read(size if size > 0 else None)
        return self._inflate.decompress(data) if self._inflate else data
