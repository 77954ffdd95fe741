#!/usr/bin/env python3
"""Summarizes a failover_client.py log: requests, failed requests (and how many of them were
in flight when the fault struck), the worst latency over the
whole run, before the fault (the machine's own noise), and from the fault until the primary is
back (and when, after the fault, that worst one ended), the worst of the requests that met the
switch (started in the first 250 ms after the fault), and the failback time (from the moment the primary is back to the first answer from it).
Times are in the log's clock (the wall clock, time.time()).

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
# Of those, the ones sent before the fault and still in flight when it struck: in TCP mode no
# proxy can send those again (it cannot know what the peer did with the bytes).
in_flight = sum(
    1 for r in rows if r[2].startswith("FAIL") and r[0] < a.fault <= r[0] + r[1]
)
before = worst(r for r in rows if r[0] + r[1] < a.fault)
# A request is in the fault's window when it ends after the fault and starts before the return.
window = [r for r in rows if r[0] + r[1] >= a.fault and r[0] < a.back]
during = worst(window)
# Where in the window the worst one ended (ms after the fault): the switch itself happens in
# the first requests after the fault; a worst far later is the machine's noise.
at = max(window, key=lambda r: r[1], default=None)
# The switch: requests that ended after the fault and started within SWITCH of it, by when
# every proxy here has noticed (2 checks 100 ms apart, or the first refused connect).
SWITCH = 0.25
switch = worst(r for r in window if r[0] < a.fault + SWITCH)
at_ms = "-" if at is None else f"{(at[0] + at[1] - a.fault) * 1000:.0f}"
back = next((r[0] + r[1] for r in rows if r[0] >= a.back and r[2] == a.primary), None)
failback = "never" if back is None else f"{(back - a.back) * 1000:.0f}"
print(
    f"requests={len(rows)} failed={failed} failed_in_flight={in_flight} worst_ms={worst(rows):.1f} "
    f"worst_before_ms={before:.1f} worst_switch_ms={switch:.1f} "
    f"worst_fault_ms={during:.1f} worst_fault_at_ms={at_ms} "
    f"failback_ms={failback}"
)
