#!/usr/bin/env bash
# A failover story told by `warden simulate` on examples/two-nodes.toml: dummy starts on
# node1, its monitor fails three times (migration_threshold = 3) and it moves to node2; a
# minute later the failures expire and it moves back. Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p warden
w=target/release/warden
c=examples/two-nodes.toml
s=$(mktemp -d)
trap 'rm -rf "$s"' EXIT
step() { printf '\n\033[1m$ warden simulate %s\033[0m\n' "$*"; "$w" simulate --config "$c" "$@"; }

step --node-up node1 --node-up node2 --at 2026-01-01T00:00:00Z --save-state "$s/0.json"
for i in 1 2 3; do
  step --state "$s/$((i - 1)).json" --at +10s --inject dummy:monitor:10s@node1=7 --save-state "$s/$i.json"
done
step --state "$s/3.json" --at +60s --save-state "$s/4.json"
