#!/usr/bin/env bash
# The soak, by hand: bash scripts/soak.sh [MINUTES]   (default 30)
# The quickstart's daemon (release build) under a steady 100 requests a second through its
# proxy while its web servers are killed with kill -9 in turn every 90 s (so web, whose
# migration_threshold is 5 in 10 minutes, fails at most 4 times in any 10 minutes); the daemon's
# RSS, open fds and the requests' latency sampled every 5 s into target/soak/soak.csv, plotted
# to docs/soak.png (matplotlib, from PyPI, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
cargo build --release -p warden 2>&1 | grep -E '^error|Finished' || true
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
export WARDEN_CONFIG=examples/quickstart.toml
rm -rf target/quickstart target/soak
mkdir -p target/quickstart target/soak
target/release/warden run --log-output target/soak/warden.log &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  target/release/warden status 2>/dev/null | grep -q 'web-backup Started' && break
  sleep 0.2
done
python3 bench/soak.py $((minutes * 60)) "$daemon" target/quickstart target/soak/soak.csv
python3 bench/soak_plot.py target/soak/soak.csv docs/soak.png
echo "docs/soak.png"
