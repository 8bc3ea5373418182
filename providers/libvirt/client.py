"""The libvirt connection: opened once per endpoint, shared by the drivers (libvirt connections are thread-safe:
https://libvirt.org/threadsafety.html), with libvirt's errors turned into one sentence each.

libvirt-python prints every error to stderr through its default handler; a handler of our own silences that, so
errors reach the user once, as virtplane's sentence with libvirt's message in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from virtplane.errors import ConnectionFailed, ProviderError

try:
    import libvirt
except ImportError:  # pragma: no cover - the extra is missing
    libvirt = None  # type: ignore[assignment]

T = TypeVar("T")
R = TypeVar("R")
READERS = 8  # calls in flight at once when reading many objects (the remote driver pipelines them)

# virErrorNumber values (https://libvirt.org/html/libvirt-virterror.html)
NO_SUPPORT = 3
NO_DOMAIN = 42
NO_NETWORK = 43
OPERATION_INVALID = 55
NO_STORAGE_POOL = 49
NO_STORAGE_VOL = 50
NO_NODE_DEVICE = 51


def module() -> Any:
    if libvirt is None:
        raise ConnectionFailed("the libvirt provider needs libvirt-python: pip install 'virtplane[libvirt]' (it "
                               "builds against Debian's libvirt-dev and pkg-config), or use Debian's "
                               "python3-libvirt")
    return libvirt


def code(error: BaseException) -> int | None:
    return error.get_error_code() if libvirt is not None and isinstance(error, libvirt.libvirtError) else None


def is_libvirt_error(error: BaseException) -> bool:
    return libvirt is not None and isinstance(error, libvirt.libvirtError)


def message(error: BaseException) -> str:
    if is_libvirt_error(error):
        return str(error.get_error_message() or error)  # type: ignore[attr-defined]
    return str(error)


def open_connection(uri: str, endpoint: str) -> Any:
    lib = module()
    lib.registerErrorHandler(lambda _context, _error: None, None)
    try:
        # no credential callbacks: libvirt never prompts; SSH keys, TLS certificates and SASL config still work
        return lib.openAuth(uri, [[], None, None], 0)
    except lib.libvirtError as error:
        raise ConnectionFailed(f"cannot connect to libvirt endpoint '{endpoint}' at {uri}: {message(error)}") from None


def call(what: str, function: Callable[..., R], *args: Any, tolerate: Iterable[int] = ()) -> R | None:
    """``function(*args)``; a libvirt error becomes a ProviderError saying ``what`` failed, except for the error
    codes in ``tolerate`` (then None)."""
    try:
        return function(*args)
    except Exception as error:
        if not is_libvirt_error(error):
            raise
        if code(error) in set(tolerate):
            return None
        raise ProviderError(f"libvirt could not {what}: {message(error)}") from None


def each(items: list[T], function: Callable[[T], R]) -> list[R]:
    """``function`` over ``items`` with a few calls in flight at once (order kept): ``READERS`` threads, each
    through its own share of the items (no future per item)."""
    if len(items) <= 1:
        return [function(item) for item in items]
    shares = [items[start::READERS] for start in range(min(READERS, len(items)))]
    with ThreadPoolExecutor(max_workers=len(shares)) as pool:
        done = list(pool.map(lambda share: [function(item) for item in share], shares))
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    for start, share in enumerate(done):
        results[start::READERS] = share
    return results
