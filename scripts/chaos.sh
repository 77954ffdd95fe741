#!/usr/bin/env bash
# The chaos suite's long form: bash scripts/chaos.sh [SECONDS] [SEED]   (default 600 s, a new seed)
# The test command runs a 20 s form. A failure prints the seed: WARDEN_CHAOS_SEED=... replays
# the same faults. Needs root (process users, rlimits of the daemon), as the test command does.
set -euo pipefail
cd "$(dirname "$0")/.."
export WARDEN_CHAOS_SECONDS=${1:-600}
[ -n "${2:-}" ] && export WARDEN_CHAOS_SEED=$2
exec cargo test --locked -p warden --test chaos -- --nocapture
