"""Run one simulated pool: ``python -m virtplane_lab.xapisim --port 0 --password-file F [--cert-out ca.pem]``.

Prints one JSON line once it listens: ``{"url", "member_url", "host", "port", "tls", "control"}``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

from .app import Simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m virtplane_lab.xapisim", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any port free on 127.0.0.1 and 127.0.0.2")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--cert-out", help="serve HTTPS and write the CA certificate to this file")
    parser.add_argument("--work-dir", default=".")
    args = parser.parse_args(argv)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    simulator = Simulator(user=args.user, password=Path(args.password_file).read_text().strip(), work_dir=work_dir)
    simulator.listen(args.port, Path(args.cert_out) if args.cert_out else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps(simulator.ready()), flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        simulator.serve_forever()
    simulator.shutdown()


if __name__ == "__main__":
    main()
