"""virtplane's Pulumi resource provider plugin, ``pulumi-resource-virtplane``: a thin adapter from the
ResourceProvider gRPC protocol to virtplane's specs, diff and drivers (see provider.py)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("virtplane")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.1.0"
