#!/usr/bin/env python3
"""Sums up repeated runs of one proxy and mode from failover_report.py lines on stdin: failed
requests in all (and those in flight when the fault struck), and the median and largest of the
worst latency at the switch and in the whole fault's window.

  failover_summary.py NAME MODE < report-lines
"""
import re
import statistics
import sys

name, mode = sys.argv[1], sys.argv[2]
rows = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in sys.stdin if "=" in line]
if rows:
    def spread(key):
        w = sorted(float(r[key]) for r in rows)
        return f"median={statistics.median(w):.1f} max={w[-1]:.1f}"

    failed = sum(int(r["failed"]) for r in rows)
    in_flight = sum(int(r.get("failed_in_flight", 0)) for r in rows)
    print(
        f"{name:<8} {mode:<5} runs={len(rows)} failed={failed} (in flight at the fault: {in_flight}) "
        f"worst_switch_ms {spread('worst_switch_ms')} worst_fault_ms {spread('worst_fault_ms')}"
    )
