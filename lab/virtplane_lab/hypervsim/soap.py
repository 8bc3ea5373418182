"""WS-Management SOAP envelopes: read a request's header and body, write replies and faults."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE = TRANSFER + "Create"
ACTION_DELETE = TRANSFER + "Delete"
ACTION_COMMAND = SHELL + "Command"
ACTION_SEND = SHELL + "Send"
ACTION_RECEIVE = SHELL + "Receive"
ACTION_SIGNAL = SHELL + "Signal"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
STATE_DONE = SHELL + "CommandState/Done"
STATE_RUNNING = SHELL + "CommandState/Running"

# WSMan fault codes a real host uses, as pypsrp reads them (WSManFaultError.code).
CODE_OPERATION_TIMEOUT = 2150858793
CODE_SHELL_NOT_FOUND = 2150858843
CODE_ACTION_NOT_SUPPORTED = 2150858783


class Fault(Exception):
    """A WSMan fault to answer with (HTTP 500)."""

    def __init__(self, code: int, reason: str, subcode: str = "w:InternalError") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode


@dataclass
class Request:
    """One parsed WSMan request."""

    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str]
    operation_timeout: float
    body: ET.Element

    @property
    def shell_id(self) -> str | None:
        return self.selectors.get("ShellId")


def _seconds(text: str | None) -> float:
    """``PT20S`` / ``PT20.000S`` to seconds (other forms: 20 s)."""
    if not text or not text.startswith("PT") or not text.endswith("S"):
        return 20.0
    try:
        return float(text[2:-1])
    except ValueError:
        return 20.0


def parse(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise Fault(CODE_ACTION_NOT_SUPPORTED, f"The request is not well-formed XML: {error}") from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise Fault(CODE_ACTION_NOT_SUPPORTED, "The request is not a SOAP envelope.")

    def text(path: str) -> str:
        element = header.find(path, NS)
        return (element.text or "").strip() if element is not None else ""

    selectors = {s.attrib.get("Name", ""): (s.text or "")
                 for s in header.findall("wsman:SelectorSet/wsman:Selector", NS)}
    return Request(action=text("wsa:Action"), message_id=text("wsa:MessageID"), resource_uri=text("wsman:ResourceURI"),
                   selectors=selectors, operation_timeout=_seconds(text("wsman:OperationTimeout")), body=body)


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def envelope(request: Request, action: str, body_children: list[ET.Element]) -> bytes:
    root = ET.Element(_q("s", "Envelope"))
    header = ET.SubElement(root, _q("s", "Header"))
    ET.SubElement(header, _q("wsa", "Action")).text = action
    ET.SubElement(header, _q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, _q("wsa", "To")).text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    ET.SubElement(header, _q("wsa", "RelatesTo")).text = request.message_id
    body = ET.SubElement(root, _q("s", "Body"))
    body.extend(body_children)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False)


def fault(request: Request | None, error: Fault) -> bytes:
    root = ET.Element(_q("s", "Envelope"))
    header = ET.SubElement(root, _q("s", "Header"))
    ET.SubElement(header, _q("wsa", "Action")).text = FAULT_ACTION
    ET.SubElement(header, _q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    if request is not None:
        ET.SubElement(header, _q("wsa", "RelatesTo")).text = request.message_id
    body = ET.SubElement(root, _q("s", "Body"))
    fault_el = ET.SubElement(body, _q("s", "Fault"))
    code = ET.SubElement(fault_el, _q("s", "Code"))
    ET.SubElement(code, _q("s", "Value")).text = "s:Receiver"
    sub = ET.SubElement(code, _q("s", "Subcode"))
    ET.SubElement(sub, _q("s", "Value")).text = error.subcode
    reason = ET.SubElement(fault_el, _q("s", "Reason"))
    reason_text = ET.SubElement(reason, _q("s", "Text"))
    reason_text.set(_q("xml", "lang"), "en-US")
    reason_text.text = error.reason
    detail = ET.SubElement(fault_el, _q("s", "Detail"))
    wsman_fault = ET.SubElement(detail, _q("wsmanfault", "WSManFault"), Code=str(error.code), Machine="localhost")
    ET.SubElement(wsman_fault, _q("wsmanfault", "Message")).text = error.reason
    return ET.tostring(root, encoding="utf-8")


def element(prefix: str, name: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.Element(_q(prefix, name), attrib)
    el.text = text
    return el


def sub(parent: ET.Element, prefix: str, name: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, _q(prefix, name), attrib)
    el.text = text
    return el


def find(body: ET.Element, path: str) -> ET.Element | None:
    return body.find(path, NS)


def findall(body: ET.Element, path: str) -> list[ET.Element]:
    return body.findall(path, NS)
