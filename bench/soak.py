#!/usr/bin/env python3
"""The soak: steady proxy load through the quickstart's listener while its web servers are
killed in turn, sampling the daemon every 5 s. Writes a CSV: elapsed s, RSS KiB, open fds,
requests, failed requests, p50 and p99 latency in ms (of the 5 s window), the fault of the
window. Standard library only.

  soak.py SECONDS DAEMON_PID DATA_DIR OUT.csv [PROXY_PORT]
"""
import csv
import http.client
import os
import signal
import sys
import threading
import time

seconds, daemon, data, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
port = int(sys.argv[5]) if len(sys.argv) > 5 else 8000
RATE = 50  # requests a second, per client thread
CLIENTS = 2

lock = threading.Lock()
window = {"lat": [], "failed": 0}
stop = time.monotonic() + seconds


def client():
    conn = None
    period = 1.0 / RATE
    nxt = time.monotonic()
    while time.monotonic() < stop:
        nxt += period
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except Exception:
            ok = False
            conn = None
        dt = (time.monotonic() - t0) * 1000
        with lock:
            if ok:
                window["lat"].append(dt)
            else:
                window["failed"] += 1
        time.sleep(max(0.0, nxt - time.monotonic()))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def kill_resource(name):
    try:
        with open(os.path.join(data, "run", f"{name}.pid")) as f:
            os.kill(int(f.read().split()[0]), signal.SIGKILL)
        return f"kill -9 {name}"
    except (OSError, ValueError, IndexError):
        return ""


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
for t in threads:
    t.start()
start = time.monotonic()
next_kill = start + 90
victims = ["web", "web-backup"]
fault = ""
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["elapsed_s", "rss_kib", "fds", "requests", "failed", "p50_ms", "p99_ms", "fault"])
    while time.monotonic() < stop:
        time.sleep(5)
        now = time.monotonic()
        if now >= next_kill:
            fault = kill_resource(victims[0])
            victims.reverse()
            next_kill += 90
        with lock:
            lat, failed = window["lat"], window["failed"]
            window["lat"], window["failed"] = [], 0
        row = [round(now - start), rss_kib(daemon), fds(daemon), len(lat) + failed, failed,
               round(pct(lat, 0.5), 2), round(pct(lat, 0.99), 2), fault]
        w.writerow(row)
        f.flush()
        print(*row, flush=True)
        fault = ""
for t in threads:
    t.join()
