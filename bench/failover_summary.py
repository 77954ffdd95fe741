#!/usr/bin/env python3
"""Sums up repeated runs of one proxy and mode from failover_report.py lines on stdin: failed
requests in all, and the median and largest worst latency in the fault's window.

  failover_summary.py NAME MODE < report-lines
"""
import re
import statistics
import sys

name, mode = sys.argv[1], sys.argv[2]
rows = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in sys.stdin if "=" in line]
if rows:
    w = sorted(float(r["worst_fault_ms"]) for r in rows)
    failed = sum(int(r["failed"]) for r in rows)
    print(
        f"{name:<8} {mode:<5} runs={len(rows)} failed={failed} "
        f"worst_fault_ms median={statistics.median(w):.1f} max={w[-1]:.1f}"
    )
