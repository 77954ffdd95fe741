#!/usr/bin/env python3
"""Node death to a floating address answering from another node: Warden on etcd against
keepalived (VRRP), side by side on the same network namespaces in one run.

Three node namespaces and a client namespace on a bridge (10.77.0.0/24, addresses that exist
only inside them). Each node runs a tiny TCP responder on :9000 that answers its name. The
floating address 10.77.0.100 is held by one node: for Warden, the ClusterLabs IPaddr2 agent
(unchanged) run by a 3-node Warden cluster on a 3-member etcd (heartbeat 50 ms, election
500 ms, pre-vote), lease_ttl 1s; for keepalived, a VRRP instance per node (nopreempt).

A trial cuts the holder off the network (its link leaves the bridge; the link itself stays
up, as in a partition behind a switch: the node is gone for everyone else) and times
from the cut to the first answer from another node, seen by a client in its own namespace that
connects every 10 ms. `ip monitor` in each namespace records when each node adds and deletes
the address, on one clock: "overlap" is how long two nodes held it at once. Then the link comes
back and the cluster settles before the next trial.

Run as root: sudo python3 bench/cluster_failover.py [--trials 20] [--only warden|keepalived]
(bench/cluster-failover.sh builds Warden and installs what is missing first).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TAG = f"wb{os.getpid() % 10000}"
NODES = (1, 2, 3)
VIP = "10.77.0.100"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARDEN = os.path.join(ROOT, "target/release/warden")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True).stdout


def ns(i):
    return f"{TAG}n{i}"


class Net:
    def __init__(self, work):
        self.work = work
        self.procs = []
        bridge = f"{TAG}b"
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "link", "set", bridge, "up")
        for i in list(NODES) + ["c"]:
            name = ns(i)
            host, peer = f"{TAG}h{i}", f"{TAG}p{i}"
            addr = "10.77.0.200/24" if i == "c" else f"10.77.0.{i}/24"
            sh("ip", "netns", "add", name)
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", name)
            sh("ip", "link", "set", host, "master", bridge, "up")
            sh("ip", "-n", name, "addr", "add", addr, "dev", peer)
            sh("ip", "-n", name, "link", "set", peer, "up")
            sh("ip", "-n", name, "link", "set", "lo", "up")
        for i in NODES:
            self.spawn(["ip", "netns", "exec", ns(i), sys.executable, "-c", RESPONDER, f"n{i}"],
                       f"responder{i}")

    def spawn(self, argv, name, env=None):
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def cut(self, i):
        # Off the bridge, the link itself up: a partition, not a cable pulled (keepalived
        # drops its address on a carrier loss, which a real partition does not cause).
        sh("ip", "link", "set", f"{TAG}h{i}", "nomaster")

    def heal(self, i):
        sh("ip", "link", "set", f"{TAG}h{i}", "master", f"{TAG}b")

    def holders(self):
        return [i for i in NODES
                if f"inet {VIP}/" in sh("ip", "-n", ns(i), "-o", "addr", "show")]

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for i in list(NODES) + ["c"]:
            subprocess.run(["ip", "netns", "del", ns(i)], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{TAG}b"], capture_output=True)


RESPONDER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(64)
while True:
    c, _ = s.accept()
    try: c.sendall(sys.argv[1].encode() + b"\n")
    finally: c.close()
"""

# Connects every 10 ms; prints "<ns> <answer>" whenever the answer changes.
CLIENT = r"""
import socket, sys, time
last = None
while True:
    try:
        c = socket.create_connection((sys.argv[1], 9000), timeout=0.05)
        a = c.recv(16).decode().strip() or "empty"
        c.close()
    except Exception:
        a = "-"
    if a != last:
        print(time.time_ns(), a, flush=True)
        last = a
    time.sleep(0.01)
"""


class Observer:
    """The client's answers and every node's address changes, on the wall clock."""

    def __init__(self, net, name):
        self.client_log = os.path.join(net.work, f"client-{name}.log")
        self.client = subprocess.Popen(
            ["ip", "netns", "exec", ns("c"), sys.executable, "-c", CLIENT, VIP],
            stdout=open(self.client_log, "w"), stderr=subprocess.DEVNULL)
        self.monitors = {}
        for i in NODES:
            path = os.path.join(net.work, f"addr-{name}-{i}.log")
            p = subprocess.Popen(["ip", "-n", ns(i), "-ts", "-o", "monitor", "address"],
                                 stdout=open(path, "w"), stderr=subprocess.DEVNULL)
            self.monitors[i] = (p, path)

    def answers(self):
        out = []
        for line in open(self.client_log):
            t, a = line.split()
            out.append((int(t), a))
        return out

    def wait_answer_from_other(self, since_ns, old, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, a in self.answers():
                if t >= since_ns and a not in ("-", old, "empty"):
                    return t, a
            time.sleep(0.01)
        return None, None

    def holding_intervals(self, start_ns, end_ns):
        """(node, from, to) for each span a node held the address within the window."""
        spans = []
        for i, (_, path) in self.monitors.items():
            held_since = start_ns if i in self.initially else None
            for line in open(path):
                if VIP + "/" not in line:
                    continue
                # [2026-12-04T21:30:00.123456] 3: wb..p1    inet 10.77.0.100/24 ...
                ts = line[1:line.index("]")]
                t = int(time.mktime(time.strptime(ts.split(".")[0], "%Y-%m-%dT%H:%M:%S")) * 1e9
                        + int(ts.split(".")[1].ljust(6, "0")[:6]) * 1000)
                if t < start_ns or t > end_ns:
                    continue
                if "Deleted" in line:
                    if held_since is not None:
                        spans.append((i, held_since, t))
                    held_since = None
                elif held_since is None:
                    held_since = t
            if held_since is not None:
                spans.append((i, held_since, end_ns))
        return spans

    def overlap_ms(self, start_ns, end_ns):
        spans = self.holding_intervals(start_ns, end_ns)
        worst = 0
        for a in spans:
            for b in spans:
                if a[0] < b[0]:
                    o = min(a[2], b[2]) - max(a[1], b[1])
                    worst = max(worst, o)
        return worst / 1e6

    def close(self):
        self.client.kill()
        for p, _ in self.monitors.values():
            p.kill()


def wait_single_holder(net, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = net.holders()
        if len(h) == 1:
            return h[0]
        time.sleep(0.05)
    raise SystemExit(f"no single holder of {VIP} after {timeout}s: {net.holders()}")


def trials(net, name, n, settle):
    obs = Observer(net, name)
    results = []
    try:
        for k in range(n):
            holder = wait_single_holder(net)
            time.sleep(settle)
            holder = wait_single_holder(net)
            obs.initially = set(net.holders())
            t0 = time.time_ns()
            net.cut(holder)
            t1, who = obs.wait_answer_from_other(t0, f"n{holder}", 30)
            # The cut node is still cut: give it the time it needs to give the address up
            # (Warden) or to show that it does not (keepalived), then heal.
            time.sleep(2.5)
            t_heal = time.time_ns()
            net.heal(holder)
            time.sleep(0.5)
            overlap = obs.overlap_ms(t0, t_heal)
            took = (t1 - t0) / 1e6 if t1 else float("inf")
            results.append((took, overlap))
            print(f"{name} trial {k + 1}: cut n{holder}, answer from {who} after {took:.0f} ms, "
                  f"overlap {overlap:.0f} ms", flush=True)
    finally:
        obs.close()
    return results


def run_warden(net, n):
    cluster = ",".join(f"e{i}=http://10.77.0.{i}:2380" for i in NODES)
    etcds = []
    for i in NODES:
        etcds.append(net.spawn([
            "ip", "netns", "exec", ns(i), "etcd", "--name", f"e{i}",
            "--data-dir", os.path.join(net.work, f"etcd{i}"),
            "--listen-client-urls", f"http://10.77.0.{i}:2379",
            "--advertise-client-urls", f"http://10.77.0.{i}:2379",
            "--listen-peer-urls", f"http://10.77.0.{i}:2380",
            "--initial-advertise-peer-urls", f"http://10.77.0.{i}:2380",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--heartbeat-interval", "50", "--election-timeout", "500", "--pre-vote"], f"etcd{i}"))
    endpoints = ", ".join(f'"http://10.77.0.{i}:2379"' for i in NODES)
    nodes = "".join(f'[[node]]\nname = "n{i}"\naddress = "10.77.0.{i}"\n' for i in NODES)
    config = f"""[cluster]
name = "bench"
data_dir = "data"
[cluster.etcd]
endpoints = [{endpoints}]
lease_ttl = "1s"
{nodes}
[resource_defaults]
resource_stickiness = 100
[[resource]]
id = "vip"
class = "ocf"
provider = "heartbeat"
type = "IPaddr2"
params = {{ ip = "{VIP}", cidr_netmask = "24" }}
ops = [{{ name = "monitor", interval = "1s" }}, {{ name = "stop", timeout = "300ms" }}]
"""
    wardens = []
    for i in NODES:
        d = os.path.join(net.work, f"n{i}")
        os.makedirs(d)
        with open(os.path.join(d, "warden.toml"), "w") as f:
            f.write(config)
        env = dict(os.environ, HA_RSCTMP=os.path.join(d, "rsctmp"))
        wardens.append(net.spawn(["ip", "netns", "exec", ns(i), WARDEN, "run", "--config",
                                  os.path.join(d, "warden.toml"), "--node", f"n{i}",
                                  "--log-output", os.path.join(d, "warden.log")],
                                 f"warden{i}", env=env))
    try:
        return trials(net, "warden", n, settle=2.0)
    finally:
        for p in wardens + etcds:
            p.terminate()
        for p in wardens + etcds:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for i in NODES:
            subprocess.run(["ip", "-n", ns(i), "addr", "del", f"{VIP}/24", "dev", f"{TAG}p{i}"],
                           capture_output=True)


def run_keepalived(net, n, advert, version):
    kas = []
    for i in NODES:
        conf = os.path.join(net.work, f"keepalived{i}-{advert}.conf")
        with open(conf, "w") as f:
            f.write(f"""global_defs {{
  router_id n{i}
  vrrp_version {version}
}}
vrrp_instance VI_1 {{
  state BACKUP
  nopreempt
  interface {TAG}p{i}
  virtual_router_id 51
  priority {101 - i}
  advert_int {advert}
  virtual_ipaddress {{
    {VIP}/24
  }}
}}
""")
        kas.append(net.spawn(["ip", "netns", "exec", ns(i), "keepalived", "-n", "-l", "-P",
                              "-G", "-f", conf,
                              "-p", os.path.join(net.work, f"ka{i}.pid"),
                              "-r", os.path.join(net.work, f"ka{i}-vrrp.pid")],
                             f"keepalived{i}"))
    try:
        return trials(net, f"keepalived(advert_int {advert})", n, settle=3 * float(advert) + 1)
    finally:
        for p in kas:
            p.terminate()
        for p in kas:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        time.sleep(1)


def summary(name, results):
    times = [t for t, _ in results]
    overlaps = [o for _, o in results]
    return (f"| {name} | {len(results)} | {statistics.median(times):.0f} ms | "
            f"{max(times):.0f} ms | {statistics.median(overlaps):.0f} ms | {max(overlaps):.0f} ms |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--only", choices=["warden", "keepalived"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    work = tempfile.mkdtemp(prefix="warden-failover-")
    net = Net(work)
    rows = []
    try:
        if args.only in (None, "warden"):
            rows.append(summary("Warden, etcd, lease_ttl 1s", run_warden(net, args.trials)))
        if args.only in (None, "keepalived"):
            rows.append(summary("keepalived, advert_int 1", run_keepalived(net, args.trials, "1", 2)))
            rows.append(summary("keepalived, VRRPv3 advert_int 0.1",
                                run_keepalived(net, args.trials, "0.1", 3)))
    finally:
        net.close()
    print("\n| system | trials | median | max | overlap (median) | overlap (max) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print(f"\n(logs in {work})")


if __name__ == "__main__":
    main()
