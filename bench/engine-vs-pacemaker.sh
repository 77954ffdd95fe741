#!/usr/bin/env bash
# Scheduler benchmark, side by side in one run: Warden's engine and Pacemaker's scheduler
# (crm_simulate, Debian's pacemaker-cli-utils) on the same cluster in steady state with one
# monitor failure. Usage: bench/engine-vs-pacemaker.sh [RESOURCESxNODES ...]
# (default: 1000x5 8000x10; Pacemaker needs about a minute for the large one).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ "${#sizes[@]}" -gt 0 ] || sizes=(1000x5 8000x10)

if ! command -v crm_simulate >/dev/null; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q pacemaker-cli-utils
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
warden_out=$(WARDEN_BENCH_SIZES="${sizes[*]}" cargo bench -q -p warden-engine --bench schedule 2>/dev/null)
echo "$warden_out" | grep -v '^RESULT'

printf '\n%-16s %14s %14s %10s\n' "cluster" "warden" "crm_simulate" "ratio"
for size in "${sizes[@]}"; do
  r=${size%x*}; n=${size#*x}
  python3 bench/cib.py "$r" "$n" > "$work/steady.xml"
  victim="r$((r / 2))"; node="node$(( (r / 2) % n + 1 ))"
  # The steady state must need nothing, as in Warden's bench.
  if crm_simulate -x "$work/steady.xml" -R 2>/dev/null | grep -qE '^\s+\* (Start|Stop|Move|Recover)'; then
    echo "crm_simulate does not see $size as steady" >&2; exit 1
  fi
  start=$(date +%s%N)
  crm_simulate -Q -x "$work/steady.xml" -i "${victim}_monitor_10000@${node}=1" -R >/dev/null 2>&1
  pcmk_ns=$(( $(date +%s%N) - start ))
  warden_ns=$(echo "$warden_out" | awk -v r="$r" -v n="$n" '$1=="RESULT" && $2=="resources="r && $3=="nodes="n {sub("median_ns=","",$4); print $4}')
  printf '%-16s %12.2fms %12.0fms %9.0fx\n' "$size" "$(echo "$warden_ns/1000000" | bc -l)" "$(echo "$pcmk_ns/1000000" | bc -l)" "$(echo "$pcmk_ns/$warden_ns" | bc -l)"
done
