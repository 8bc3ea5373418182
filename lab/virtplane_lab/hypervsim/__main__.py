"""Run one simulated Hyper-V host: ``python -m virtplane_lab.hypervsim --port 0 --password-file F …``.

Prints one JSON line once it listens: ``{"url", "host", "port", "tls", "control"}``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

from .app import Simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m virtplane_lab.hypervsim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--host-name", default="HV1", help="the Hyper-V host's computer name")
    parser.add_argument("--profile", default="plain", help="gpu | sriov | plain | a JSON file of host hardware")
    parser.add_argument("--user", default="virtplane")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--cert-out", help="serve HTTPS and write the CA certificate to this file")
    parser.add_argument("--work-dir", default=".", help="for the NTLM account file and the command log")
    parser.add_argument("--command-log", help="JSON lines, one per pipeline (default: WORK_DIR/commands.jsonl)")
    parser.add_argument("--state-dump", help="write the host's state as JSON here on exit and on /hypervsim/dump")
    args = parser.parse_args(argv)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    simulator = Simulator(
        host_name=args.host_name, profile=args.profile, user=args.user,
        password=Path(args.password_file).read_text().strip(), work_dir=work_dir,
        command_log=Path(args.command_log) if args.command_log else work_dir / "commands.jsonl",
        state_dump=Path(args.state_dump) if args.state_dump else None)
    simulator.listen(args.host, args.port, Path(args.cert_out) if args.cert_out else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps(simulator.ready()), flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        simulator.serve_forever()
    simulator.shutdown()


if __name__ == "__main__":
    main()
