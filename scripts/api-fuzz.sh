#!/usr/bin/env bash
# Fuzzes the daemon's API with schemathesis (from PyPI) against its own OpenAPI document
# (GET /v1/openapi.json): a daemon from target/debug runs an OCF Dummy, a supervised process,
# an upstream and a listener; schemathesis sends generated requests (with the token, so
# mutations run too) and checks that no answer is a 5xx, that each status, content type and
# body is one the document declares. The daemon must still be alive at the end.
# Run by scripts/test.sh; by hand: bash scripts/api-fuzz.sh [MAX_EXAMPLES].
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-${WARDEN_API_FUZZ_EXAMPLES:-25}}
bin=target/debug/warden
[ -x "$bin" ] || cargo build -p warden --locked

# schemathesis in a virtual environment of its own, at a pinned version.
venv=target/schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi

dir=$(mktemp -d)
daemon=
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
peer_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
front_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/warden.toml" <<TOML
[cluster]
name = "fuzz"
data_dir = "data"

[api]
listen = "127.0.0.1:0"

[[node]]
name = "n1"

[[resource]]
id = "dummy"
class = "ocf"
type = "Dummy"
params = { state = "$dir/dummy.state" }
ops = [{ name = "monitor", interval = "2s" }]

[[resource]]
id = "web"
class = "process"
command = ["sleep", "100000"]
ops = [{ name = "monitor", interval = "2s" }]

[[upstream]]
name = "app"
primary = ["127.0.0.1:$peer_port"]

[[listener]]
name = "site"
listen = "127.0.0.1:$front_port"
upstream = "app"
protocol = "http"
TOML
"$bin" run --config "$dir/warden.toml" --log-output "$dir/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -s "$dir/data/api.addr" ] && break; sleep 0.1; done
addr=$(cat "$dir/data/api.addr")
token=$(cat "$dir/data/api.token")

# /v1/events never ends (a stream); /v1/shutdown would end the run: both have tests of
# their own (tests/web.rs, tests/daemon.rs).
status=0
"$venv/bin/schemathesis" run "http://$addr/v1/openapi.json" \
  --checks all --exclude-checks ignored_auth \
  --exclude-path /v1/events --exclude-path /v1/shutdown \
  -H "Authorization: Bearer $token" -H "Host: $addr" \
  --phases examples,coverage,fuzzing --max-examples "$examples" --workers 1 \
  --request-timeout 10 --suppress-health-check all --no-color || status=$?
if ! kill -0 "$daemon" 2>/dev/null; then
  echo "the daemon died under the fuzzer; its log:" >&2
  tail -50 "$dir/daemon.log" >&2
  exit 1
fi
if grep -q 'panicked' "$dir/daemon.log"; then
  echo "the daemon panicked under the fuzzer:" >&2
  grep -A5 'panicked' "$dir/daemon.log" >&2
  exit 1
fi
exit "$status"
