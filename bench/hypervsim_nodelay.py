"""The Hyper-V simulator with Nagle's algorithm off on its sockets, for the drift benchmark.

http.server writes a response's headers and body in separate sends; with Nagle on, the body waits for the
client's (delayed, up to 40 ms) ACK of the headers, so each WinRM request costs ~50 ms on loopback — a
latency a real host (http.sys) does not add. socketserver's ``disable_nagle_algorithm`` turns it off;
nothing else changes. ``python bench/hypervsim_nodelay.py <the simulator's arguments>``."""

from __future__ import annotations

import runpy
import socketserver

if __name__ == "__main__":
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    runpy.run_module("virtplane_lab.hypervsim", run_name="__main__", alter_sys=True)
