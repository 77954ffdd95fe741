#!/usr/bin/env bash
# Pacemaker's own scheduler regression corpus (cts/scheduler in Pacemaker 2.1.5's source: each
# case a CIB and the Transition Summary crm_simulate prints for it) run through
# `warden simulate --cib`. Fetches Debian's pacemaker source package with apt (adding a deb-src
# list for it when there is none); nothing of Pacemaker's is committed. Each case either
# matches, or is listed in tests/conformance/pacemaker-2.1.5.txt with its class (n/a: uses
# something Warden does not carry over; differs: Warden schedules otherwise) and why; the run
# fails when a case outside the list does not match or a listed case changes class (so the
# list only shrinks). `bash scripts/conformance.sh --update` rewrites the list.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=target/pacemaker-2.1.5/cts/scheduler
if [ ! -d "$corpus/xml" ]; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  list=/etc/apt/sources.list.d/warden-deb-src.sources
  if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    . /etc/os-release
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$VERSION_CODENAME" "$VERSION_CODENAME" | "${sudo_cmd[@]}" tee "$list" >/dev/null
  fi
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
  work=$(mktemp -d)
  (cd "$work" && apt-get source --download-only -q pacemaker >/dev/null 2>&1)
  orig=$(ls "$work"/pacemaker_2.1.5.orig.tar.* 2>/dev/null | head -1)
  [ -n "$orig" ] || { echo "apt did not bring pacemaker 2.1.5's source (got: $(ls "$work"))" >&2; exit 1; }
  mkdir -p target/pacemaker-2.1.5
  tar -xf "$orig" -C target/pacemaker-2.1.5 --strip-components=1 --wildcards '*/cts/scheduler/xml/*' '*/cts/scheduler/summary/*'
  rm -rf "$work"
fi
bin=target/debug/warden
[ -x "$bin" ] || cargo build -p warden --locked
exec python3 scripts/conformance.py "$bin" "$corpus" tests/conformance/pacemaker-2.1.5.txt "$@"
