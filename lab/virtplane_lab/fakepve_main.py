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

NODES = ("pve1", "pve2", "pve3")


async def serve(args: argparse.Namespace) -> None:
    from fakepve.certs import make_cert

    from virtplane_lab.fakepve_hardware import HardwarePve

    password = Path(args.password_file).read_text().strip()
    pve = HardwarePve(user=args.user, password=password, host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    if args.latency:
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
    parser.add_argument("--snippets-dir", help="a directory: the shared snippets storage lab-snippets")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
