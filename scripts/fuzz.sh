#!/usr/bin/env bash
# Runs one fuzz target for a while: bash scripts/fuzz.sh TARGET [SECONDS]   (targets: fuzz/fuzz_targets;
# TARGET `all` runs each of them for SECONDS)
# Installs cargo-fuzz when missing; libFuzzer needs the compiler's unstable flags, which
# RUSTC_BOOTSTRAP allows on the stable toolchain. New inputs go to fuzz/corpus/TARGET; a crash
# is saved under fuzz/artifacts/TARGET and fails the run. The repository keeps the seed inputs
# only (fuzz/corpus/TARGET as committed); `git clean fuzz/corpus` drops what a run added.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz.sh TARGET [SECONDS]}
seconds=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# The workspace's dependency versions, not whatever is newest.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
if [ "$target" = all ]; then
  targets=$(cd fuzz/fuzz_targets && ls ./*.rs | sed 's|^\./||; s|\.rs$||')
else
  targets=$target
fi
# One build for every target (the runs below find it done).
RUSTC_BOOTSTRAP=1 cargo fuzz build
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  # New inputs go to a scratch copy: the committed seeds stay as they are.
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$t/." "$work/"
  echo "fuzz: $t for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "$work" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 | \
    grep -E '^(stat::number_of_executed_units|stat::new_units_added)|panicked|ERROR|SUMMARY|Test unit written' || true
  rm -rf "$work"
  # A crash leaves its input in fuzz/artifacts/TARGET: the run fails.
  if ls "fuzz/artifacts/$t"/crash-* "fuzz/artifacts/$t"/timeout-* "fuzz/artifacts/$t"/oom-* >/dev/null 2>&1; then
    echo "fuzz: $t failed; inputs in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
