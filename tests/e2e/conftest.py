"""Fixtures of the plugin tests on the real protocol peers (tests/support/plugin_peers.py)."""

from tests.support.plugin_peers import endpoint, plugin

__all__ = ["endpoint", "plugin"]
