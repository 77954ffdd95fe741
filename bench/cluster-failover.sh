#!/usr/bin/env bash
# Node death to the floating address answering from another node: Warden (etcd, lease_ttl 1s)
# against keepalived (VRRP), side by side in network namespaces (bench/cluster_failover.py).
# Installs etcd-server, keepalived and resource-agents when missing; runs as root.
# Usage: bash bench/cluster-failover.sh [--trials N] [--only warden|keepalived]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in etcd-server keepalived resource-agents protobuf-compiler; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
if [ "${#need[@]}" -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"
fi
cargo build -q --release -p warden
exec "${sudo_cmd[@]}" python3 bench/cluster_failover.py "$@"
