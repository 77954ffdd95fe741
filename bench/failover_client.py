#!/usr/bin/env python3
"""A client for the failover benchmark: one GET every 5 ms through a proxy, either over one
keep-alive connection (HTTP mode) or over a new connection each time (TCP mode), recording every
request as `start_seconds latency_seconds outcome` where outcome is the backend's name (the body)
or `FAIL:<why>`; start is on the wall clock, which the bench's shell reads for the fault's time
without starting a process. Runs until the file named by --stop exists.

  failover_client.py --host 127.0.0.1 --port 8000 --mode keepalive|close --out log --stop file
"""
import argparse
import http.client
import os
import time

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--mode", choices=["keepalive", "close"], default="keepalive")
ap.add_argument("--out", required=True)
ap.add_argument("--stop", required=True)
a = ap.parse_args()

conn = None
with open(a.out, "w") as out:
    while not os.path.exists(a.stop):
        start = time.time()
        try:
            if conn is None or a.mode == "close":
                if conn is not None:
                    conn.close()
                conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
            headers = {} if a.mode == "keepalive" else {"Connection": "close"}
            conn.request("GET", "/", headers=headers)
            r = conn.getresponse()
            body = r.read().decode().strip()
            outcome = body if r.status == 200 else f"FAIL:status-{r.status}"
        except Exception as e:  # noqa: BLE001 - every failure is a failed request here
            outcome = f"FAIL:{type(e).__name__}"
            conn = None
        took = time.time() - start
        out.write(f"{start:.6f} {took:.6f} {outcome}\n")
        out.flush()
        time.sleep(max(0.0, 0.005 - (time.time() - start)))
