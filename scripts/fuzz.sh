#!/usr/bin/env bash
# Runs one fuzz target for a while: bash scripts/fuzz.sh TARGET [SECONDS]   (targets: fuzz/fuzz_targets)
# Installs cargo-fuzz when missing; libFuzzer needs the compiler's unstable flags, which
# RUSTC_BOOTSTRAP allows on the stable toolchain. New inputs go to fuzz/corpus/TARGET; a crash
# is saved under fuzz/artifacts/TARGET and fails the run. The repository keeps the seed inputs
# only (fuzz/corpus/TARGET as committed); `git clean fuzz/corpus` drops what a run added.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz.sh TARGET [SECONDS]}
seconds=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
mkdir -p "fuzz/corpus/$target"
# The workspace's dependency versions, not whatever is newest.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -max_len=8192
