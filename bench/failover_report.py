#!/usr/bin/env python3
"""Summarizes a failover_client.py log: requests, failed requests, the worst latency over the
whole run, before the fault (the machine's own noise), and from the fault until the primary is
back, and the failback time (from the moment the primary is back to the first answer from it).
Times are in the log's clock (time.monotonic()).

  failover_report.py LOG --fault SECONDS --back SECONDS --primary A
"""
import argparse

ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--fault", type=float, required=True)
ap.add_argument("--back", type=float, required=True)
ap.add_argument("--primary", default="A")
a = ap.parse_args()
rows = []
for line in open(a.log):
    parts = line.split()
    if len(parts) == 3:
        rows.append((float(parts[0]), float(parts[1]), parts[2]))


def worst(rs):
    return max((r[1] for r in rs), default=0.0) * 1000


failed = sum(1 for r in rows if r[2].startswith("FAIL"))
before = worst(r for r in rows if r[0] + r[1] < a.fault)
# A request is in the fault's window when it ends after the fault and starts before the return.
during = worst(r for r in rows if r[0] + r[1] >= a.fault and r[0] < a.back)
back = next((r[0] + r[1] for r in rows if r[0] >= a.back and r[2] == a.primary), None)
failback = "never" if back is None else f"{(back - a.back) * 1000:.0f}"
print(
    f"requests={len(rows)} failed={failed} worst_ms={worst(rows):.1f} "
    f"worst_before_ms={before:.1f} worst_fault_ms={during:.1f} failback_ms={failback}"
)
