#!/usr/bin/env bash
# Runs Warden's whole test suite on a fresh Debian machine with the Rust toolchain:
# installs the system packages the tests need (with apt, only when missing), then runs
# formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use, installed only when missing:
# resource-agents: the real OCF agents (ocf:heartbeat:Dummy, IPaddr2) the tests run.
# protobuf-compiler: protoc, which the etcd client's build needs.
# etcd-server: the real etcd cluster the several-machine tests run (etcdctl comes with it).
# openssl: makes an X.509 v1 certificate and serves it (s_server) for the https check test.
# libfaketime: runs a daemon with its wall clock stepped (the clock-step tests and chaos).
# fence-agents: the real fence agents (fence_dummy) the fencing tests call.
# systemd: booted in namespaces of its own by tests/systemd.rs (systemd units as resources,
# `systemctl restart` of Warden); util-linux's unshare and nsenter come with Debian.
# chromium: the headless browser tests/web.rs drives (through playwright-core, from npm).
# dpkg-dev: apt-get source, which brings Pacemaker's source for scripts/conformance.sh.
packages=(resource-agents protobuf-compiler etcd-server openssl libfaketime fence-agents systemd chromium dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# python3 runs the web server of the health-check test (any python3 on PATH will do).
command -v python3 >/dev/null || missing+=(python3)
# python3's venv (with ensurepip) holds schemathesis, from PyPI, for scripts/api-fuzz.sh.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# node and npm run the browser test's driver (any Node.js 18 or later on PATH will do).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
if [ "${#missing[@]}" -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "${missing[@]}"
fi

# playwright-core, the browser test's driver (no browser download: it drives Debian's chromium),
# at the version crates/warden/tests/web/package-lock.json pins.
npm ci --prefix crates/warden/tests/web --no-audit --no-fund --loglevel=error

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The API against its OpenAPI document (/v1/openapi.json) with schemathesis: no 5xx, every
# status, content type and body as documented, the daemon alive after it.
bash scripts/api-fuzz.sh
# Pacemaker 2.1.5's scheduler corpus through `warden simulate --cib`: every case matches or is
# listed, with its reason, in tests/conformance/pacemaker-2.1.5.txt (which only shrinks).
bash scripts/conformance.sh
# The benchmarks must keep building (they are run by hand: see docs/benchmarks.md). Built in the
# test profile, whose dependencies the tests just built: `cargo bench --no-run` would build
# every dependency again, optimized, for minutes, to prove the same thing.
cargo build --workspace --benches --locked
# Every fuzz target (fuzz/fuzz_targets, cargo-fuzz) builds and runs a little on its seeds:
# a crash fails the suite (its input is kept in fuzz/artifacts/TARGET). Longer runs by hand:
# bash scripts/fuzz.sh TARGET SECONDS.
bash scripts/fuzz.sh all "${WARDEN_FUZZ_SECONDS:-10}"
# The Debian package (scripts/package.sh, from the debug build the tests made) installs into a
# clean root, its example configuration passes check-config, and a purge leaves nothing.
deb=$(bash scripts/package.sh --debug | tail -1)
root=$(mktemp -d)
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg_root=("${sudo_cmd[@]}" dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null)
"${dpkg_root[@]}" -i "$deb" >/dev/null
"$root/usr/bin/warden" check-config "$root/etc/warden/warden.toml"
test "$(stat -c %a "$root/var/lib/warden")" = 700
test -s "$root/usr/share/man/man1/warden.1.gz"
test -s "$root/usr/share/bash-completion/completions/warden"
grep -q '^Type=notify' "$root/lib/systemd/system/warden.service"
"${dpkg_root[@]}" -P warden >/dev/null
test ! -e "$root/usr/bin/warden" && test ! -e "$root/var/lib/warden"
"${sudo_cmd[@]}" rm -rf "$root"
echo "package: $deb installs, checks its configuration and purges cleanly"
