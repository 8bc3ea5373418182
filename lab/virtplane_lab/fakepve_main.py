"""The lab's Proxmox VE endpoint: fakepve (an optional, AGPL test peer) as a three-node cluster with seeded
hardware (``fakepve_hardware.HardwarePve``: pve1 has a GPU with vGPU types, pve2 an SR-IOV NIC, pve3 no IOMMU) and a
shared directory storage for cloud-init snippets (``lab-snippets``), whose directory virtplane writes into.

Run as its own process by ``virtplane_lab.fakepve.start``; nothing else in virtplane imports fakepve.
It serves TLS with a certificate written for the client to verify, logs in with a password read from
a file, and writes one JSON line (the URL) to stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

NODES = ("pve1", "pve2", "pve3")


async def serve(args: argparse.Namespace) -> None:
    from fakepve.certs import make_cert

    from virtplane_lab.fakepve_hardware import HardwarePve

    password = Path(args.password_file).read_text().strip()
    pve = HardwarePve(user=args.user, password=password, host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    if args.workers:
        limit_workers(pve, args.workers, args.service_ms / 1000, args.latency)
    elif args.latency:
        pve.slow_network(args.latency)
    for node in NODES[: args.nodes]:
        pve.add_node(node)
    pve.seed_lab_guests()
    if args.snippets_dir:
        from virtplane_lab.fakepve import SNIPPETS_STORAGE

        pve.add_snippets_storage(SNIPPETS_STORAGE, args.snippets_dir)
    if args.guests:
        for guest in json.loads(Path(args.guests).read_text())["guests"]:
            pve.add_vm(int(guest["vmid"]), guest["name"], node=guest.get("node", NODES[0]),
                       status=guest.get("status", "stopped"), config=guest.get("config", {}),
                       template=guest.get("template", False))
    run_dir = Path(args.cert_out).parent
    cert, key, _ = make_cert(str(run_dir), name="fakepve", hosts=(args.host,))
    Path(cert).replace(args.cert_out)
    await pve.start(args.cert_out, key)
    Path(key).unlink()  # loaded; nothing needs it any more
    print(json.dumps({"url": pve.url}), flush=True)
    await asyncio.Event().wait()


def limit_workers(pve: Any, workers: int, service: float, latency: float) -> None:
    """Serve as a PVE node whose API daemon has ``workers`` worker processes: each request holds one for
    ``service`` seconds (plus fakepve's own handling), the others wait; the network's ``latency`` holds none.
    pveproxy, which serves the API on port 8006, runs 3 workers (``max_workers`` in pve-manager's
    PVE/Service/pveproxy.pm; pveproxy(8)), and a worker handles one API call at a time."""
    from aiohttp import web

    slots = asyncio.Semaphore(workers)

    @web.middleware
    async def worker(request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(latency)
        async with slots:
            await asyncio.sleep(service)
            return await handler(request)

    build = pve._build_app

    def build_app() -> web.Application:
        app = build()
        app.middlewares.insert(0, worker)
        return app

    pve._build_app = build_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=3, choices=range(1, len(NODES) + 1))
    parser.add_argument("--user", default="root@pam")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--cert-out", required=True)
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--guests", help='JSON file {"guests": [{"vmid", "name", "node", "status", "config"}]}')
    parser.add_argument("--latency", type=float, default=0.0, help="PVE seconds added to every response")
    parser.add_argument("--workers", type=int, default=0,
                        help="API worker processes (real PVE: 3); 0: fakepve's own, unlimited")
    parser.add_argument("--service-ms", type=float, default=5.0,
                        help="with --workers: milliseconds each request holds a worker")
    parser.add_argument("--snippets-dir", help="a directory: the shared snippets storage lab-snippets")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
