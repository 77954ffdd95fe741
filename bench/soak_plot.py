#!/usr/bin/env python3
"""Plots a soak's CSV (bench/soak.py) to a PNG: RSS and fds, latency, failed requests.

  soak_plot.py SOAK.csv OUT.png
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

rows = list(csv.DictReader(open(sys.argv[1])))
t = [int(r["elapsed_s"]) / 60 for r in rows]
fig, ax = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
ax[0].plot(t, [int(r["rss_kib"]) / 1024 for r in rows], label="daemon RSS (MiB)")
ax[0].plot(t, [int(r["fds"]) for r in rows], label="daemon open fds")
ax[0].legend(loc="upper left")
ax[0].set_ylim(bottom=0)
ax[1].plot(t, [float(r["p50_ms"]) for r in rows], label="p50 (ms)")
ax[1].plot(t, [float(r["p99_ms"]) for r in rows], label="p99 (ms)")
ax[1].set_yscale("log")
ax[1].legend(loc="upper left")
ax[2].bar(t, [int(r["failed"]) for r in rows], width=0.05, label="failed requests per 5 s")
for x, r in zip(t, rows):
    if r["fault"]:
        for a in ax:
            a.axvline(x, color="grey", alpha=0.3, linewidth=0.8)
ax[2].legend(loc="upper left")
ax[2].set_xlabel("minutes (grey lines: a web server killed with kill -9)")
total = sum(int(r["requests"]) for r in rows)
failed = sum(int(r["failed"]) for r in rows)
fig.suptitle(f"Warden soak: quickstart under load, {total} requests, {failed} failed")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
