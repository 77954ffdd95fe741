#!/usr/bin/env bash
# The soak, by hand: bash scripts/soak.sh [MINUTES]   (default 30)
# The quickstart's daemon (release build) under a steady 100 requests a second through its
# proxy while its web servers are killed with kill -9 in turn every 90 s; the daemon's RSS, open
# fds and the requests' latency sampled every 5 s into target/soak/soak.csv, plotted to
# docs/soak.png (matplotlib, from PyPI, installed when missing). The quickstart's file is used
# without web's migration_threshold: as in Pacemaker, failure_timeout clears a fail count only
# 10 minutes after the *last* failure, so a kill every 3 minutes would stop web for good at the
# fifth, and a kill of the backup then leaves no server.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
cargo build --release -p warden 2>&1 | grep -E '^error|Finished' || true
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
rm -rf target/quickstart target/soak
mkdir -p target/quickstart target/soak
grep -v '^meta = { migration_threshold' examples/quickstart.toml > examples/.soak.toml
export WARDEN_CONFIG=examples/.soak.toml
target/release/warden run --log-output target/soak/warden.log &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true; rm -f examples/.soak.toml' EXIT
for _ in $(seq 100); do
  target/release/warden status 2>/dev/null | grep -q 'web-backup Started' && break
  sleep 0.2
done
python3 bench/soak.py $((minutes * 60)) "$daemon" target/quickstart target/soak/soak.csv
python3 bench/soak_plot.py target/soak/soak.csv docs/soak.png
echo "docs/soak.png"
