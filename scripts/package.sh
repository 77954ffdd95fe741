#!/usr/bin/env bash
# Builds Warden's Debian package with dpkg-deb (no other tool) and prints its path last.
#   bash scripts/package.sh            # from a release build (cargo build --release)
#   bash scripts/package.sh --debug    # from the debug build the tests use (quick; for tests)
# The package: /usr/bin/warden, the systemd unit, /etc/warden/warden.toml (a commented
# example, a conffile), /var/lib/warden (0700), man pages generated from the command's own
# definitions, bash/zsh/fish completions, the license and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  cargo build --locked --bin warden
else
  cargo build --locked --release --bin warden
fi
bin="target/$profile/warden"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
out="target/deb"
stage="$out/warden_${version}_${arch}"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/warden" \
  "$stage/var/lib/warden" "$stage/usr/share/man/man1" "$stage/usr/share/doc/warden" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d"

install -m 0755 "$bin" "$stage/usr/bin/warden"
strip --strip-debug "$stage/usr/bin/warden" 2>/dev/null || true
install -m 0644 packaging/warden.service "$stage/lib/systemd/system/warden.service"
"$bin" config example > "$stage/etc/warden/warden.toml"
chmod 0644 "$stage/etc/warden/warden.toml"
chmod 0700 "$stage/var/lib/warden"
"$bin" manpages "$stage/usr/share/man/man1"
gzip -9n "$stage"/usr/share/man/man1/*.1
"$bin" completions bash > "$stage/usr/share/bash-completion/completions/warden"
"$bin" completions zsh > "$stage/usr/share/zsh/vendor-completions/_warden"
"$bin" completions fish > "$stage/usr/share/fish/vendor_completions.d/warden.fish"
cp LICENSE "$stage/usr/share/doc/warden/copyright"
cp README.md ARCHITECTURE.md docs/*.md "$stage/usr/share/doc/warden/"
install -m 0644 packaging/grafana/warden.json "$stage/usr/share/doc/warden/grafana-dashboard.json"
gzip -9n -c CHANGELOG.md > "$stage/usr/share/doc/warden/changelog.gz"

size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: warden
Version: $version
Architecture: $arch
Maintainer: Warden developers <warden@localhost>
Installed-Size: $size
Depends: libc6, util-linux
Recommends: resource-agents
Suggests: etcd-server
Section: admin
Priority: optional
Description: high-availability manager: resources, health checks, failover proxy
 One binary that keeps services available: OCF resource agents and supervised
 processes with Pacemaker's failure semantics, active health checks of upstream
 peers, a failover TCP/HTTP proxy, and several machines coordinated through etcd.
CONTROL
echo /etc/warden/warden.toml > "$stage/DEBIAN/conffiles"
# systemd learns of the unit; nothing is started or enabled (the operator edits the file
# first). Skipped when installing into another root (DPKG_ROOT).
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
POSTINST
cat > "$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf "${DPKG_ROOT:-}/var/lib/warden"
fi
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

deb="$out/warden_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
