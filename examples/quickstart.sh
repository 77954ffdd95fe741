#!/usr/bin/env bash
# The quickstart: Warden on this machine alone, managing an OCF Dummy resource and a small HTTP
# server (examples/quickstart.toml). It starts the daemon, kills the server with kill -9 so you
# can watch Warden notice and restart it, then leaves the daemon running for you to play with:
#   export WARDEN_CONFIG=examples/quickstart.toml
#   target/release/warden status --watch
#   kill -9 "$(cut -d' ' -f1 target/quickstart/run/web.pid)"
# Ctrl-C stops the daemon, which stops the resources. QUICKSTART_DEMO_ONLY=1 stops after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

# What it needs: the OCF Dummy agent (resource-agents) and python3 (the web server).
need=()
[ -x /usr/lib/ocf/resource.d/heartbeat/Dummy ] || need+=(resource-agents)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"
fi
cargo build -q --release -p warden
w=target/release/warden
export WARDEN_CONFIG=examples/quickstart.toml
mkdir -p target/quickstart
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

"$w" check-config "$WARDEN_CONFIG"
"$w" run --log-output target/quickstart/warden.log &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT INT TERM

settled() { "$w" status --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if not s["transition_running"] and all("Started" in r["status"] for r in s["resources"]) else 1)'; }
for _ in $(seq 100); do settled && break; sleep 0.1; done
bold '$ warden status'
"$w" status
pid=$(cut -d' ' -f1 target/quickstart/run/web.pid)
bold "\$ curl http://127.0.0.1:8080/  (the web resource answers)"
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/').status)"

bold "\$ kill -9 $pid   (the web server dies)"
kill -9 "$pid"
sleep 0.5
for _ in $(seq 100); do settled && break; sleep 0.1; done
bold '$ warden status   (the failure is recorded, and it runs again)'
"$w" status
bold '$ warden history web'
"$w" history web
bold "web is now pid $(cut -d' ' -f1 target/quickstart/run/web.pid) (was $pid). Logs: target/quickstart/warden.log"

if [ -n "${QUICKSTART_DEMO_ONLY:-}" ]; then
  exit 0
fi
bold "Warden keeps running. In another terminal: WARDEN_CONFIG=$WARDEN_CONFIG $w status --watch. Ctrl-C to stop."
wait $daemon
