"""Sessions on one pool through the official ``xenapi`` client (``XenAPI.Session``), with error translation, the
pool member redirect, and task waiting.

- Login: ``session.login_with_password``. A pool member answers HOST_IS_SLAVE [master address]; the client logs
  in at that address once (same scheme and port) and keeps using it. A wrong user or password
  (SESSION_AUTHENTICATION_FAILED), a certificate that does not verify, or a pool out of reach is one sentence
  naming the endpoint; the password never appears in any of them.
- Concurrency: a ``XenAPI.Session`` is one HTTP connection and not thread-safe, so each thread borrows a session of
  its own from a small pool (each its own login), returned after the call.
- Transport: Python's xmlrpc transport sends a request a second time when the connection drops, which can run a
  write twice (VM.clone making two VMs); ours sends each request once. Reads (``get_*``) that fail on the
  connection are retried a few times on a new connection; a write that may have been sent raises
  ``OutcomeUnknown``, and the caller looks before it repeats anything.
- Tasks: long operations run as ``Async.<class>.<message>``; the task is polled until it is no longer pending
  (within ``task_timeout``) and destroyed afterwards. A failed task raises its error like a failed call.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from typing import Any
from urllib.parse import urlencode, urlsplit

import XenAPI

from virtplane.errors import ConnectionFailed, ProviderError
from virtplane.providers.xenserver.settings import ENV, XenserverSettings, with_host

API_VERSION = "2.21"
ORIGINATOR = "virtplane"
CONNECT_TIMEOUT = 60.0  # seconds a request may take on the wire (tasks are waited on separately)
READ_DELAYS = (0.25, 0.5, 1.0)  # pauses between the attempts of a read (so 4 attempts)
_RESULT = re.compile(r"^<value>(.*)</value>$", re.DOTALL)
_CONNECTION_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError)


class XapiFailure(ProviderError):
    """XAPI refused a call: ``code`` and ``params`` are its ErrorDescription."""

    def __init__(self, message: str, code: str, params: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class OutcomeUnknown(ProviderError):
    """The connection failed after a write may have reached the pool: whether it happened is unknown."""


class TaskTimeout(ProviderError):
    """A task was still pending when its time ran out."""


def describe(details: list[str]) -> str:
    """XAPI's ErrorDescription as text: the code, then its parameters."""
    code, *params = [str(item) for item in details] or ["UNKNOWN"]
    return f"{code}" + (f" ({', '.join(params)})" if params else "")


class _Transport(xmlrpc.client.SafeTransport):
    """One attempt per request, with a timeout on the wire."""

    def __init__(self, context: ssl.SSLContext | None, secure: bool) -> None:
        super().__init__(context=context)
        self._secure = secure

    def request(self, host: Any, handler: str, request_body: bytes, verbose: bool = False) -> Any:
        return self.single_request(host, handler, request_body, verbose)

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._secure:
            connection = super().make_connection(host)
        else:
            connection = xmlrpc.client.Transport.make_connection(self, host)
        connection.timeout = CONNECT_TIMEOUT
        return connection


class XapiClient:
    """Thread-safe calls to one pool; ``what`` ("clone template X for VM web1") goes into every error."""

    def __init__(self, settings: XenserverSettings) -> None:
        self.settings = settings
        self._context = _tls_context(settings)
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self.url = settings.url
        self._idle.append(self._login())

    # ---- calls ---------------------------------------------------------------------------------------

    def get(self, method: str, *args: Any, what: str) -> Any:
        """A call that changes nothing; retried on a new connection when the connection fails."""
        attempt = 0
        while True:
            try:
                return self._call(method, args, what)
            except _CONNECTION_ERRORS as exc:
                if attempt == len(READ_DELAYS):
                    raise ProviderError(f"XenServer could not {what}: cannot reach endpoint "
                                        f"'{self.settings.endpoint_name}' at {self.url} ({_reason(exc)}; tried "
                                        f"{attempt + 1} times)") from None
                time.sleep(READ_DELAYS[attempt])
                attempt += 1

    def call(self, method: str, *args: Any, what: str) -> Any:
        """A call that changes the pool: sent once; OutcomeUnknown when the answer is lost."""
        try:
            return self._call(method, args, what)
        except _CONNECTION_ERRORS as exc:
            raise OutcomeUnknown(f"the connection to XenServer endpoint '{self.settings.endpoint_name}' failed while "
                                 f"trying to {what}, so whether it happened is unknown ({_reason(exc)})") from None

    def put_raw(self, vdi: str, data: bytes, what: str) -> None:
        """Write a VDI's bytes with XAPI's HTTP handler ``PUT /import_raw_vdi?session_id=…&vdi=…&format=raw``, in a
        session of this client (XAPI documentation, "HTTP handlers")."""
        parts = urlsplit(self.url)
        with self._session() as session:
            query = urlencode({"session_id": session._session, "vdi": vdi, "format": "raw"})
            if parts.scheme == "https":
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, context=self._context, timeout=self.settings.task_timeout)
            else:
                connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                        timeout=self.settings.task_timeout)
            try:
                connection.request("PUT", f"/import_raw_vdi?{query}", body=data,
                                   headers={"Content-Type": "application/octet-stream"})
                response = connection.getresponse()
                body = response.read().decode(errors="replace")
            except _CONNECTION_ERRORS as exc:
                raise OutcomeUnknown(f"the connection to XenServer endpoint '{self.settings.endpoint_name}' failed "
                                     f"while trying to {what} ({_reason(exc)})") from None
            finally:
                connection.close()
        if response.status != 200:
            raise ProviderError(f"XenServer could not {what}: HTTP {response.status} {body.strip()[:200]}")

    def run(self, method: str, *args: Any, what: str, timeout: float | None = None) -> str:
        """``Async.<method>`` and wait for its task; returns the task's result (a ref, or "")."""
        task = self.call(f"Async.{method}", *args, what=what)
        limit = self.settings.task_timeout if timeout is None else timeout
        try:
            record = self.wait(task, limit, what)
        finally:
            self.forget(task)
        if record["status"] == "success":
            match = _RESULT.match(str(record.get("result") or ""))
            return unescape(match.group(1)) if match else ""
        details = list(record.get("error_info") or ["UNKNOWN"])
        raise XapiFailure(f"XenServer could not {what}: {describe(details)}", details[0], details[1:])

    def wait(self, task: str, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            record = self.get("task.get_record", task, what=f"follow the task to {what}")
            if record["status"] not in ("pending", "cancelling"):
                return dict(record)
            if time.monotonic() > deadline:
                raise TaskTimeout(f"XenServer did not {what} within {timeout:g} s (task {record.get('uuid')} is "
                                  "still pending)")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def settle(self, method: str, what: str) -> None:
        """Wait for the pool's pending ``Async.<method>`` tasks: after a lost answer, the call may be running still,
        and what it makes must be looked for once it is done."""
        where = f'field "name_label" = "Async.{method}" and field "status" = "pending"'
        for task in self.get("task.get_all_records_where", where, what=f"look for the tasks to {what}"):
            self.wait(task, self.settings.task_timeout, what)

    def forget(self, task: str) -> None:
        """Destroy a finished task; one already gone (or an unreachable pool) is not an error worth reporting."""
        with contextlib.suppress(ProviderError, *_CONNECTION_ERRORS):
            self._call("task.destroy", (task,), "destroy a finished task")

    def close(self) -> None:
        with self._lock:
            sessions, self._all, self._idle = list(self._all), [], []
        for session in sessions:
            with contextlib.suppress(Exception):  # logging out of a pool that is gone is no error
                session.xenapi.session.logout()

    # ---- plumbing ------------------------------------------------------------------------------------

    def _call(self, method: str, args: tuple[Any, ...], what: str) -> Any:
        with self._session() as session:
            target: Any = session.xenapi
            for part in method.split("."):
                target = getattr(target, part)
            try:
                return target(*args)
            except XenAPI.Failure as failure:
                details = [str(item) for item in failure.details]
                raise XapiFailure(f"XenServer could not {what}: {describe(details)}", details[0], details[1:]
                                  ) from None

    @contextmanager
    def _session(self) -> Iterator[Any]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._login()
        broken = False
        try:
            yield session
        except _CONNECTION_ERRORS:
            broken = True  # its connection is broken: the next call logs in afresh
            raise
        finally:
            with self._lock:
                if not broken:
                    self._idle.append(session)
                elif session in self._all:
                    self._all.remove(session)

    def _login(self) -> Any:
        settings = self.settings
        password = settings.password.get_secret_value()
        for attempt in range(2):
            session = XenAPI.Session(self.url, transport=_Transport(self._context, self.url.startswith("https")))
            try:
                session.xenapi.login_with_password(settings.username, password, API_VERSION, ORIGINATOR)
            except XenAPI.Failure as failure:
                details = [str(item) for item in failure.details]
                if details[0] == "HOST_IS_SLAVE" and attempt == 0 and len(details) > 1:
                    self.url = with_host(self.url, details[1])  # follow the member to its master, once
                    continue
                raise ConnectionFailed(self._refused(details)) from None
            except ssl.SSLError as exc:
                raise ConnectionFailed(
                    f"XenServer endpoint '{settings.endpoint_name}' at {self.url} presented a certificate that could "
                    f"not be verified ({_reason(exc)}): set {ENV['ca_file']} (ca_file=) to its CA bundle, or, for "
                    f"labs only, {ENV['insecure']}=true") from None
            except _CONNECTION_ERRORS as exc:
                raise ConnectionFailed(f"cannot reach XenServer endpoint '{settings.endpoint_name}' at {self.url}: "
                                       f"{_reason(exc)}") from None
            with self._lock:
                self._all.append(session)
            return session
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _refused(self, details: list[str]) -> str:
        settings = self.settings
        where = f"XenServer endpoint '{settings.endpoint_name}' at {self.url}"
        if details[0] == "SESSION_AUTHENTICATION_FAILED":
            return (f"{where} refused the login of user {settings.username} (check {ENV['username']} and "
                    f"{ENV['password']})")
        if details[0] == "HOST_IS_SLAVE":
            return f"{where} is a pool member that points at another member ({describe(details)}); set the master"
        return f"{where} refused the login of user {settings.username}: {describe(details)}"


def _tls_context(settings: XenserverSettings) -> ssl.SSLContext | None:
    if not settings.url.startswith("https"):
        return None
    if settings.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if settings.ca_file:
        try:
            return ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionFailed(f"cannot use {ENV['ca_file']} {settings.ca_file} to verify XenServer endpoint "
                                   f"'{settings.endpoint_name}': {_reason(exc)}") from None
    return ssl.create_default_context()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or "certificate verify failed"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
