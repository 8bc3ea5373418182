"""Creating N VMs in one `virtplane apply --parallel P` on fakepve (a fake Proxmox VE cluster), then planning again.

The issue's "done when": a 1,000-VM Proxmox apply at --parallel 32 converges in one run (no failed resource, every
VM once, no VMID shared) and the plan after it exits 0 (nothing to do). fakepve runs as its own process, empty,
with a latency added to every response (~20 ms: a LAN PVE cluster); the stack is bench/drift_proxmox.py's (its
three VM shapes cycled over nodes pve1..pve3, on one VLAN network), given through the CLI as a user would.
Measured: the apply's wall time and its failures, the second plan's wall time and exit code, and the VMs fakepve
holds afterwards.

    python bench/apply_proxmox.py [--vms 1000] [--parallel 32] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from proxmoxer import ProxmoxAPI

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.drift_proxmox import NODES, STACK, declared_specs, write_stack  # noqa: E402
from virtplane_lab import fakepve  # noqa: E402


def virtplane(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "virtplane", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    return done, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1_000)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="latency fakepve adds to every response (a LAN PVE cluster: ~20 ms)")
    args = parser.parse_args()
    n = args.vms

    work = Path(tempfile.mkdtemp(prefix="virtplane-bench-pve-apply-"))
    stack_dir = work / "stack"
    write_stack(stack_dir, declared_specs(n))
    print(f"Starting an empty fakepve ({', '.join(NODES)}; {args.latency_ms:g} ms per request) …", flush=True)
    # fakepve scales its latency by time_scale (0 would remove it): real time, time_scale 1 (tasks take 0 s).
    instance = fakepve.start(work, time_scale=1.0, latency=args.latency_ms / 1000)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROXMOX_VE_")}
    env.update(instance.environ())
    try:
        print(f"virtplane apply --parallel {args.parallel} of {n} VMs …", flush=True)
        applied, apply_seconds = virtplane("apply", str(stack_dir), "--yes", "--json", "--parallel",
                                           str(args.parallel), env=env)
        try:
            result = json.loads(applied.stdout)["result"]
        except (ValueError, KeyError):
            raise SystemExit(f"virtplane apply exited {applied.returncode} without a result: "
                             f"{applied.stderr.strip() or applied.stdout[-500:]}") from None
        failed = result["failed"]
        planned, plan_seconds = virtplane("plan", str(stack_dir), env=env)
        address = urlsplit(instance.url)
        api = ProxmoxAPI(address.hostname, port=address.port, user=instance.user, password=instance.password,
                         verify_ssl=instance.ca_file)
        rows = [row for row in api.cluster.resources.get(type="vm") if row.get("type") == "qemu"]
    finally:
        instance.stop()
    names = Counter(str(row.get("name")) for row in rows)
    vmids = {row["vmid"] for row in rows}

    print(f"\n{n} VMs of {STACK} created on fakepve at --parallel {args.parallel}; "
          f"{args.latency_ms:g} ms added per request")
    print(f"  apply        : {apply_seconds:7.2f} s  exit {applied.returncode}, {len(result['succeeded'])} succeeded, "
          f"{len(failed)} failed")
    for failure in failed[:5]:
        print(f"      {failure['resource']}: {failure['error']}")
    print(f"  plan again   : {plan_seconds:7.2f} s  exit {planned.returncode} (0: nothing to do)")
    print(f"  on fakepve   : {len(rows)} VMs, {len(names)} names, {len(vmids)} VMIDs, "
          f"{sum(1 for count in names.values() if count > 1)} names held twice")
    converged = (applied.returncode == 0 and not failed and planned.returncode == 0 and len(rows) == n
                 and len(names) == n and len(vmids) == n)
    print(f"\nConverged in one run: {'yes' if converged else 'NO'}")
    if not converged:
        print(f"  (kept for inspection: {work})")
        raise SystemExit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
