#!/usr/bin/env bash
# Failover proxy benchmark, side by side in one run (docs/benchmarks.md): Warden, HAProxy
# and nginx from Debian's packages, set up the same way in front of the same two backends (a
# primary A and a backup B, each a one-process nginx answering its name):
#   HAProxy: `check inter 100 fall 2 rise 2` (HTTP check) on A and B, B `backup`
#   nginx:   A `max_fails=1`, B `backup`, connect and read timeouts 1 s (no active checks)
#   Warden:  an HTTP check every 100 ms, fall 2, rise 2, B a backup, upstream_timeout 1 s
# For each proxy, in HTTP mode (one keep-alive client connection) and TCP mode (a new
# connection per request): a client sends a GET every 5 ms; A is SIGKILLed (then restarted) or
# SIGSTOPped (then continued); we report failed requests, the worst latency, and the failback
# time (A back -> first answer from A). Then throughput and p99 with wrk through each.
# With LOGGED=1, each proxy writes an access log line per request to a file: HAProxy
# `option httplog`/`tcplog` to stdout, nginx `access_log` (combined, and a stream format),
# Warden `access_log` in HAProxy's format.
# Usage: bench/proxy-vs-haproxy-nginx.sh   (installs haproxy, nginx, wrk when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
command -v wrk >/dev/null || need+=(wrk)
if [ "${#need[@]}" -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"
fi
cargo build -q --release -p warden
warden=target/release/warden

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  pkill -f "$work/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(port); PB=$(port); PH=$(port); PHT=$(port); PN=$(port); PNT=$(port); PW=$(port); PWT=$(port)

backend_conf() { # NAME PORT
  cat > "$work/$1.conf" <<EOF
daemon off; master_process off; worker_processes 1;
pid $work/$1.pid; error_log $work/$1.err;
events { worker_connections 4096; }
http { access_log off; default_type text/plain;
  server { listen 127.0.0.1:$2 reuseport; location / { return 200 "$1\n"; } } }
EOF
}
start_backend() { # NAME -> pid in $bpid
  nginx -p "$work" -c "$work/$1.conf" &
  bpid=$!
  pids+=("$bpid")
  sleep 0.2
}
backend_conf A "$PA"; backend_conf B "$PB"
start_backend A; A=$bpid
start_backend B

logged=${LOGGED:-0}
h_global=""; h_defaults=""; h_http=""; h_tcp=""; h_out=/dev/null
n_http="access_log off;"; n_stream=""; w_http=""; w_tcp=""
if [ "$logged" = 1 ]; then
  h_global="log stdout format raw local0"; h_defaults="log global"
  h_http="option httplog"; h_tcp="option tcplog"; h_out="$work/haproxy-access.log"
  n_http="access_log $work/nginx-access.log;"
  n_stream="log_format basic '\$remote_addr [\$time_local] \$protocol \$status \$bytes_sent \$bytes_received \$session_time \"\$upstream_addr\"'; access_log $work/nginx-stream.log basic;"
  w_http="access_log = \"$work/warden-http.log\""; w_tcp="access_log = \"$work/warden-tcp.log\""
fi
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 8192
  $h_global
defaults
  $h_defaults
  timeout connect 1s
  timeout client 30s
  timeout server 30s
frontend web
  bind 127.0.0.1:$PH
  mode http
  $h_http
  default_backend app
backend app
  mode http
  option httpchk GET /
  server a 127.0.0.1:$PA check inter 100 fall 2 rise 2
  server b 127.0.0.1:$PB check inter 100 fall 2 rise 2 backup
frontend tcp
  bind 127.0.0.1:$PHT
  mode tcp
  $h_tcp
  default_backend apptcp
backend apptcp
  mode tcp
  option httpchk GET /
  server a 127.0.0.1:$PA check inter 100 fall 2 rise 2
  server b 127.0.0.1:$PB check inter 100 fall 2 rise 2 backup
EOF
haproxy -f "$work/haproxy.cfg" -db >"$h_out" 2>/dev/null &
pids+=($!); haproxy_pid=$!

cat > "$work/nginx-proxy.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process off; worker_processes 1;
pid $work/proxy.pid; error_log $work/proxy.err;
events { worker_connections 8192; }
http { $n_http
  upstream app { server 127.0.0.1:$PA max_fails=1; server 127.0.0.1:$PB backup; keepalive 64; }
  server { listen 127.0.0.1:$PN;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_connect_timeout 1s; proxy_read_timeout 1s; proxy_next_upstream error timeout; } } }
stream { $n_stream
  upstream apptcp { server 127.0.0.1:$PA max_fails=1; server 127.0.0.1:$PB backup; }
  server { listen 127.0.0.1:$PNT; proxy_pass apptcp; proxy_connect_timeout 1s; } }
EOF
nginx -p "$work" -c "$work/nginx-proxy.conf" &
pids+=($!); nginx_pid=$!

mkdir -p "$work/warden"
cat > "$work/warden.toml" <<EOF
[cluster]
name = "bench"
data_dir = "$work/warden"
[api]
listen = "127.0.0.1:0"
[[upstream]]
name = "app"
primary = ["127.0.0.1:$PA"]
backup = ["127.0.0.1:$PB"]
check = { type = "http", path = "/", interval = "100ms", timeout = "100ms", fall = 2, rise = 2, valid_statuses = [200] }
[[listener]]
name = "http"
listen = "127.0.0.1:$PW"
upstream = "app"
protocol = "http"
upstream_timeout = "1s"
$w_http
[[listener]]
name = "tcp"
listen = "127.0.0.1:$PWT"
upstream = "app"
$w_tcp
EOF
"$warden" run --config "$work/warden.toml" --log-level warn --log-output "$work/warden.log" &
pids+=($!); warden_pid=$!
sleep 2

results=()
scenario() { # PROXYNAME PORT MODE FAULT
  local name=$1 p=$2 mode=$3 fault=$4
  case " ${PROXIES:-haproxy nginx warden} " in *" $name "*) ;; *) return 0 ;; esac
  local log="$work/$name-$mode-$fault.log" stop="$work/stop"
  rm -f "$stop"
  python3 bench/failover_client.py --port "$p" --mode "$mode" --out "$log" --stop "$stop" &
  local client=$!
  sleep 1
  local at back
  # The wall clock, read by bash itself: the fault's time is the kill's, to the microsecond.
  at=$EPOCHREALTIME
  if [ "$fault" = kill ]; then kill -9 "$A"; else kill -STOP "$A"; fi
  sleep 3
  back=$EPOCHREALTIME
  if [ "$fault" = kill ]; then start_backend A; A=$bpid; else kill -CONT "$A"; fi
  sleep 6
  touch "$stop"; wait "$client"
  local r
  r=$(python3 bench/failover_report.py "$log" --fault "$at" --back "$back" --primary A)
  results+=("$(printf '%-8s %-5s %-5s %s' "$name" "$([ "$mode" = keepalive ] && echo http || echo tcp)" "$fault" "$r")")
  echo "${results[-1]}"
  sleep 2
}
# ONLY=throughput skips the failover scenarios, ONLY=failover the throughput; REPEAT=N runs the kill scenarios N times (3);
# PROXIES="warden" runs the failover scenarios through those proxies only.
repeat=${REPEAT:-3}
[ "${ONLY:-}" = throughput ] || echo "failover: a GET every 5 ms; A killed or hung after 1 s, back 3 s later (kill: $repeat runs)"
for fault in kill hang; do
  [ "${ONLY:-}" = throughput ] && break
  runs=1; [ "$fault" = kill ] && runs=$repeat
  for _ in $(seq "$runs"); do
    scenario haproxy "$PH" keepalive "$fault"; scenario nginx "$PN" keepalive "$fault"; scenario warden "$PW" keepalive "$fault"
    scenario haproxy "$PHT" close "$fault"; scenario nginx "$PNT" close "$fault"; scenario warden "$PWT" close "$fault"
  done
done
if [ "${ONLY:-}" != throughput ]; then
  echo
  echo "kill, over $repeat runs: failed requests in all (those in flight when A died), median and largest worst latency at the switch (requests started within 250 ms of the kill) and in the whole fault window"
  for name in haproxy nginx warden; do
    for mode in http tcp; do
      printf '%s\n' "${results[@]}" | awk -v n="$name" -v m="$mode" '$1==n && $2==m && $3=="kill"' |
        python3 bench/failover_summary.py "$name" "$mode"
    done
  done
fi

[ "${ONLY:-}" = failover ] && exit 0
echo
rounds=${ROUNDS:-9}
echo "throughput: wrk -t1 -c32 -d2s through each proxy in turn, $rounds rounds, the order rotated each round (medians, and the median of each round's Warden/HAProxy ratio: this machine is shared, so only runs side by side compare)"
# CPU time (user + system, all threads) a process has used, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
tp() { # NAME PORT PID -> appends "rps p99_ms cpu_us_per_request" to $work/tp-NAME
  local out rps p99 t0 t1 reqs cpu
  t0=$(ticks "$3")
  out=$(wrk -t1 -c32 -d2s --latency "http://127.0.0.1:$2/")
  t1=$(ticks "$3")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  cpu=$(python3 -c "import os; print(f'{($t1 - $t0) / os.sysconf(\"SC_CLK_TCK\") * 1e6 / max($reqs, 1):.2f}')")
  p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}')
  echo "$rps $p99 $cpu" >> "$work/tp-$1"
}
runs=("haproxy-http $PH $haproxy_pid" "nginx-http $PN $nginx_pid" "warden-http $PW $warden_pid"
      "haproxy-tcp $PHT $haproxy_pid" "nginx-tcp $PNT $nginx_pid" "warden-tcp $PWT $warden_pid")
for r in $(seq "$rounds"); do
  tp direct "$PA" "$A"
  for i in $(seq 0 $((${#runs[@]} - 1))); do
    # shellcheck disable=SC2086
    tp ${runs[$(( (i + r) % ${#runs[@]} ))]}
  done
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for name in direct haproxy-http nginx-http warden-http haproxy-tcp nginx-tcp warden-tcp; do
  rps=$(cut -d' ' -f1 "$work/tp-$name" | median)
  p99=$(cut -d' ' -f2 "$work/tp-$name" | median)
  cpu=$(cut -d' ' -f3 "$work/tp-$name" | median)
  printf '%-13s requests/s=%-10s p99_ms=%-8s cpu_us_per_request=%s\n' "$name" "$rps" "$p99" "$cpu"
done
if [ "$logged" = 1 ]; then
  echo "access log lines written: haproxy $(wc -l < "$work/haproxy-access.log"), nginx $(cat "$work/nginx-access.log" "$work/nginx-stream.log" | wc -l), warden $(cat "$work/warden-http.log" "$work/warden-tcp.log" | wc -l)"
  tail -n 1 "$work/haproxy-access.log" "$work/warden-http.log" "$work/warden-tcp.log"
fi
for mode in http tcp; do
  for peer in haproxy nginx; do
    rps=$(paste -d' ' "$work/tp-warden-$mode" "$work/tp-$peer-$mode" | awk '{print $1 / $4}' | median)
    cpu=$(paste -d' ' "$work/tp-warden-$mode" "$work/tp-$peer-$mode" | awk '{print $3 / $6}' | median)
    printf 'warden/%-7s %-4s requests/s ratio=%.2f cpu_per_request ratio=%.2f (per-round medians)\n' "$peer" "$mode" "$rps" "$cpu"
  done
done
