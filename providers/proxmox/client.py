"""The HTTPS session to one Proxmox VE cluster: login, a shared connection pool, retries and error translation.

Built on proxmoxer's HTTPS backend (its session, ticket login and API-token header). One requests Session
with a pool sized for the concurrency is shared by every thread.

Retry policy:

- Reads (GET) are idempotent: a connection error, a timeout, or a transient status (502, 503, 504, 595-599,
  lost quorum) is retried a few times with a short backoff, then reported as one sentence.
- Writes (POST, PUT, DELETE) are retried only when the request provably never left (the connection could
  not be opened). When it may have been sent, ``OutcomeUnknown`` is raised: the caller re-reads before
  deciding (a create looks for its ownership marker before creating again), so nothing is duplicated.
- A 401 with a password login (an expired or revoked ticket) logs in again once and repeats the request:
  PVE refused it before acting on it.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from proxmoxer.backends.https import Backend, ProxmoxHTTPAuth
from proxmoxer.core import AuthenticationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from virtplane.errors import ConnectionFailed, ProviderError
from virtplane.providers.http_faults import connection_reason
from virtplane.providers.proxmox.faults import OutcomeUnknown, PveError, pve_text, refusal
from virtplane.providers.proxmox.settings import ENV, ProxmoxSettings

CONNECT_TIMEOUT = 15.0  # opening a connection; an unreachable endpoint fails within this
POOL_SIZE = 32  # connections kept per host: an apply's workers plus an observe's concurrent reads
READ_DELAYS = (0.25, 0.5, 1.0)  # pauses between the attempts of a read (so 4 attempts)
TRANSIENT_STATUSES = frozenset({502, 503, 504, 595, 596, 597, 599})


class PveClient:
    """Authenticated JSON calls to ``/api2/json`` of one endpoint; every call names what it is for."""

    def __init__(self, settings: ProxmoxSettings):
        self.settings = settings
        self._timeout = (CONNECT_TIMEOUT, settings.request_timeout)
        self._verify = _verification(settings)
        self._login_lock = threading.Lock()
        self._backend = self._open_backend()
        self._base_url = self._backend.get_base_url()
        self._session = self._backend.get_session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
        self._session.mount("https://", adapter)
        # Reads skip requests unless a proxy applies (see _send_read). False sends them through the session like
        # every other call (tests that watch or disturb the session's transport set it).
        self.direct_reads = not requests.utils.get_environ_proxies(self._base_url)
        self._read_pool = _read_pool(self._base_url, self._verify, self._timeout) if self.direct_reads else None
        if not isinstance(self._session.auth, ProxmoxHTTPAuth):  # a password login proved all it would
            self._probe()

    # ---- calls ---------------------------------------------------------------------------------------

    def get(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call("GET", path, what, params)

    def post(self, path: str, what: str, data: Mapping[str, Any] | None = None) -> Any:
        return self._call("POST", path, what, data)

    def put(self, path: str, what: str, data: Mapping[str, Any] | None = None) -> Any:
        return self._call("PUT", path, what, data)

    def delete(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call("DELETE", path, what, params)

    @property
    def session(self) -> requests.Session:
        """The pooled session every call goes through (its transports can be wrapped to watch the traffic)."""
        return self._session

    def close(self) -> None:
        self._session.close()
        if self._read_pool is not None:
            self._read_pool.close()

    # ---- plumbing ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, what: str, values: Mapping[str, Any] | None) -> Any:
        payload = _form(values)
        renewed = False
        attempt = 0
        while True:
            auth = self._session.auth
            try:
                response = self._send(method, path, payload)
            except requests.exceptions.RequestException as exc:
                reason = connection_reason(exc, CONNECT_TIMEOUT, self.settings.request_timeout)
                if method != "GET" and not _never_sent(exc):
                    raise OutcomeUnknown(f"the connection to Proxmox endpoint '{self.settings.endpoint_name}' "
                                         f"failed while trying to {what}, so whether it happened is unknown "
                                         f"({reason})") from None
                if attempt < len(READ_DELAYS):
                    time.sleep(READ_DELAYS[attempt])
                    attempt += 1
                    continue
                raise ProviderError(f"Proxmox could not {what}: cannot reach endpoint "
                                    f"'{self.settings.endpoint_name}' at {self.settings.url} ({reason}; tried "
                                    f"{attempt + 1} times)") from None
            if response.status_code == 401 and self.settings.password is not None and not renewed:
                self._renew_login(auth)
                renewed = True
                continue
            if response.status_code < 400:
                return _data(response, what)
            error = self._refusal(response, what)
            if method == "GET" and _transient(response.status_code, error.pve_text) and attempt < len(READ_DELAYS):
                time.sleep(READ_DELAYS[attempt])
                attempt += 1
                continue
            raise error

    def _send(self, method: str, path: str, payload: dict[str, Any]) -> requests.Response | Reply:
        url = self._base_url + path
        if method == "GET" and self.direct_reads and self._read_pool is not None:
            return self._send_read(url, payload)
        if method in ("GET", "DELETE"):
            return self._session.request(method, url, params=payload, timeout=self._timeout)
        return self._session.request(method, url, data=payload, timeout=self._timeout)

    def _send_read(self, url: str, params: dict[str, Any]) -> Reply:
        """A GET sent on a urllib3 connection pool of its own, with the session's credentials. An observe makes
        one read per VM, and requests' layers (a prepared request, proxy and CA lookups in the environment, a
        cookie jar per call, a Response object) cost twice the client CPU of the rest of the read
        (bench/drift_proxmox.py); a GET needs none of them. urllib3's errors come out as requests' own, which the
        retry policy and the error messages read."""
        request = SimpleNamespace(method="GET", headers={}, cert=None)
        auth = self._session.auth
        auth(request)  # the API token header; renews a ticket past its age like any other call
        if isinstance(auth, ProxmoxHTTPAuth):
            request.headers["Cookie"] = f"PVEAuthCookie={auth.get_tokens()[0]}"
        target = urlsplit(url).path + (f"?{urlencode(params)}" if params else "")
        assert self._read_pool is not None
        try:
            response = self._read_pool.urlopen("GET", target, headers=request.headers, retries=False,
                                               redirect=False, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        return Reply(response.status, response.reason or "", response.data)

    def _refusal(self, response: requests.Response | Reply, what: str) -> PveError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = pve_text(body.get("message") or response.reason, body.get("errors"))
        else:
            text = pve_text(response.reason or response.text[:200])
        return refusal(self.settings.endpoint_name, self.settings.principal, what, response.status_code, text)

    # ---- login ---------------------------------------------------------------------------------------

    def _open_backend(self) -> Backend:
        settings = self.settings
        try:
            if settings.api_token_id and settings.api_token_secret is not None:
                user, _, token_name = settings.api_token_id.partition("!")
                return Backend(settings.host, port=settings.port, user=user, token_name=token_name,
                               token_value=settings.api_token_secret.get_secret_value(),
                               verify_ssl=self._verify, timeout=self._timeout)
            assert settings.password is not None
            return Backend(settings.host, port=settings.port, user=settings.username,
                           password=settings.password.get_secret_value(), verify_ssl=self._verify,
                           timeout=self._timeout)
        except AuthenticationError:
            raise ConnectionFailed(f"Proxmox endpoint '{settings.endpoint_name}' at {settings.url} refused the "
                                   f"login of user {settings.username} (check the user name, the password and the "
                                   "realm)") from None
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(exc) from None

    def _probe(self) -> None:
        """One read that proves the address, the certificate and the credentials of an API token (which is not
        checked before its first use)."""
        try:
            response = self._send("GET", "/version", {})
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise ConnectionFailed(str(self._refusal(response, "read the Proxmox version"))) from None

    def _renew_login(self, seen: Any) -> None:
        """Log in again (a ticket expired or was revoked), once for all threads that saw the same 401."""
        with self._login_lock:
            if self._session.auth is not seen:
                return  # another thread renewed it meanwhile
            settings = self.settings
            assert settings.password is not None
            try:
                self._session.auth = ProxmoxHTTPAuth(settings.username, settings.password.get_secret_value(),
                                                     base_url=self._base_url, verify_ssl=self._verify,
                                                     timeout=self._timeout, service="PVE")
            except AuthenticationError:
                raise ProviderError(f"Proxmox endpoint '{settings.endpoint_name}' refused a new login of user "
                                    f"{settings.username} after its ticket expired (check the user name, the password "
                                    "and the realm)") from None
            except requests.exceptions.RequestException as exc:
                raise self._unreachable(exc) from None

    def _unreachable(self, exc: requests.exceptions.RequestException) -> ConnectionFailed:
        settings = self.settings
        reason = connection_reason(exc, CONNECT_TIMEOUT, settings.request_timeout)
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectionFailed(
                f"Proxmox endpoint '{settings.endpoint_name}' at {settings.url} presented a certificate that could "
                f"not be verified ({reason}): set {ENV['ca_file']} (ca_file=) to its CA bundle, or, for labs "
                f"only, {ENV['insecure']}=true")
        return ConnectionFailed(f"cannot reach Proxmox endpoint '{settings.endpoint_name}' at {settings.url}: "
                                f"{reason}")


class Reply:
    """A read's answer: what the client reads of a requests.Response."""

    __slots__ = ("content", "reason", "status_code")

    def __init__(self, status_code: int, reason: str, content: bytes):
        self.status_code = status_code
        self.reason = reason
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def _read_pool(base_url: str, verify: bool | str, timeout: tuple[float, float]) -> urllib3.HTTPSConnectionPool:
    """The connection pool reads go through, verifying TLS as the session does (``verify``: a CA file or
    directory, True for the system's CAs, False only when ``insecure`` is set)."""
    address = urlsplit(base_url)
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str) and os.path.isdir(verify):
        context = ssl.create_default_context(capath=verify)
    elif isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
    return urllib3.HTTPSConnectionPool(address.hostname, address.port or 443, maxsize=POOL_SIZE, block=False,
                                       ssl_context=context, timeout=urllib3.Timeout(connect=timeout[0],
                                                                                    read=timeout[1]),
                                       retries=False)


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.exceptions.RequestException:
    """urllib3's error as requests would have raised it (what the retry policy and connection_reason read)."""
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
            exc, urllib3.exceptions.NewConnectionError):  # which urllib3 derives from it: refused, unresolvable
        return requests.exceptions.ConnectTimeout(exc)
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(exc)
    return requests.exceptions.ConnectionError(exc)


def _verification(settings: ProxmoxSettings) -> bool | str:
    """requests' ``verify``: the endpoint's CA file; else the system's CAs (not requests' own bundle); off only
    when ``insecure`` is set."""
    if settings.verify is not True:
        return settings.verify
    system = ssl.get_default_verify_paths()
    for candidate in (system.cafile, system.capath):
        if candidate and os.path.exists(candidate):
            return candidate
    return True


def _form(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters as PVE takes them: booleans as 0/1, None left out."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if value is None:
            continue
        out[key] = int(value) if isinstance(value, bool) else value
    return out


def _data(response: requests.Response | Reply, what: str) -> Any:
    try:
        return response.json()["data"]
    except (ValueError, KeyError, TypeError):
        raise ProviderError(f"Proxmox answered the request to {what} with something that is not PVE's JSON "
                            f"(HTTP {response.status_code})") from None


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the connection could not even be opened, so the request cannot have reached PVE."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _transient(status: int, text: str) -> bool:
    return status in TRANSIENT_STATUSES or (status == 500 and "no quorum" in text)
