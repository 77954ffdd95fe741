#!/usr/bin/env bash
# The quickstart: Warden on this machine alone, managing an OCF Dummy resource and two small web
# servers behind its failover proxy (examples/quickstart.toml). It starts the daemon, sends a
# request through the proxy every 20 ms, kills the primary web server with kill -9 so you can
# watch Warden send the traffic to the backup, restart the primary and send it back, with no
# failed request; then it leaves the daemon running for you to play with:
#   export WARDEN_CONFIG=examples/quickstart.toml
#   target/release/warden status --watch
#   kill -9 "$(cut -d' ' -f1 target/quickstart/run/web.pid)"
#   curl http://127.0.0.1:8000/      (the proxy; http://127.0.0.1:7946/metrics counts its traffic)
#   open http://127.0.0.1:7946/       (the web console: watch a kill -9 there; docs/console.md)
# Ctrl-C stops the daemon, which stops the resources. QUICKSTART_DEMO_ONLY=1 stops after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

# What it needs: the OCF Dummy agent (resource-agents), python3 (the web servers) and protoc
# (protobuf-compiler: the etcd client's build compiles etcd's protocol files).
need=()
[ -x /usr/lib/ocf/resource.d/heartbeat/Dummy ] || need+=(resource-agents)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"
fi
echo "Building Warden (cargo build --release; the first build takes about 3 minutes, later ones seconds)..."
cargo build --release -p warden 2>&1 | grep -E '^(error|warning: unused)|Finished' || true
[ -x target/release/warden ] || { echo "the build failed: run cargo build --release -p warden to see why" >&2; exit 1; }
w=target/release/warden
export WARDEN_CONFIG=examples/quickstart.toml
# Each run starts from a clean slate: fail counts from an earlier run (web's migration_threshold
# is 5 within 10 minutes) would otherwise keep web stopped.
rm -rf target/quickstart
mkdir -p target/quickstart
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

"$w" check-config "$WARDEN_CONFIG"
"$w" run --log-output target/quickstart/warden.log &
daemon=$!
# Ctrl-C (or SIGTERM) stops the daemon, which stops the resources, and the script ends with 0.
stop() { kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; }
trap stop EXIT
trap 'echo; echo "Stopping Warden (it stops the resources)..."; exit 0' INT TERM

settled() { "$w" status --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if not s["transition_running"] and all("Started" in r["status"] for r in s["resources"]) else 1)' 2>/dev/null; }
for _ in $(seq 100); do settled && break; sleep 0.1; done
bold '$ warden status'
"$w" status
pid=$(cut -d' ' -f1 target/quickstart/run/web.pid)
get() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1/', timeout=5).read().decode().strip())"; }
bold "\$ curl http://127.0.0.1:8000/  (the failover proxy; the primary, web, answers)"
for _ in $(seq 50); do [ "$(get 8000 2>/dev/null)" = web ] && break; sleep 0.1; done
get 8000

# A client through the proxy: a request every 20 ms for 5 s, each answer (or failure) noted.
python3 - > target/quickstart/client.txt <<'PY' &
import time, urllib.request
end = time.monotonic() + 5
while time.monotonic() < end:
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5).read().decode().strip(), flush=True)
    except Exception as e:
        print(f"FAILED ({type(e).__name__})", flush=True)
    time.sleep(0.02)
PY
client=$!
sleep 1
bold "\$ kill -9 $pid   (the primary web server dies under a client sending a request every 20 ms)"
kill -9 "$pid"
sleep 0.5
for _ in $(seq 100); do settled && break; sleep 0.1; done
wait $client
bold "What the client got, in order (answers from the primary, then the backup, then the primary again):"
python3 - target/quickstart/client.txt <<'PY'
import itertools, sys
got = [l.strip() for l in open(sys.argv[1]) if l.strip()]
runs = [f"{who} x{len(list(g))}" for who, g in itertools.groupby(got)]
print("  " + ", then ".join(runs))
failed = sum(1 for g in got if g.startswith("FAILED"))
print(f"  {len(got)} requests, {failed} failed")
PY
bold '$ warden status   (the failure is recorded, and it runs again)'
"$w" status
bold '$ warden upstream status'
"$w" upstream status
bold '$ warden history web'
"$w" history web
bold "web is now pid $(cut -d' ' -f1 target/quickstart/run/web.pid) (was $pid). Logs: target/quickstart/warden.log"

if [ -n "${QUICKSTART_DEMO_ONLY:-}" ]; then
  exit 0
fi
bold "Warden keeps running. Watch it at http://127.0.0.1:7946/ (the web console), or in another terminal: WARDEN_CONFIG=$WARDEN_CONFIG $w status --watch. Ctrl-C to stop."
wait "$daemon" || true
