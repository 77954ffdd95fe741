#!/usr/bin/env python3
"""Summarizes a failover_client.py log: requests, failed requests, worst latency, and the
failback time (from the moment the primary is back, given as --back in the log's clock, to the
first answer from it again).

  failover_report.py LOG --back SECONDS --primary A
"""
import argparse

ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--back", type=float, required=True)
ap.add_argument("--primary", default="A")
a = ap.parse_args()
rows = []
for line in open(a.log):
    parts = line.split()
    if len(parts) == 3:
        rows.append((float(parts[0]), float(parts[1]), parts[2]))
failed = sum(1 for r in rows if r[2].startswith("FAIL"))
worst = max((r[1] for r in rows), default=0.0)
back = next((r[0] + r[1] for r in rows if r[0] >= a.back and r[2] == a.primary), None)
failback = "never" if back is None else f"{(back - a.back) * 1000:.0f}"
print(f"requests={len(rows)} failed={failed} worst_ms={worst * 1000:.1f} failback_ms={failback}")
