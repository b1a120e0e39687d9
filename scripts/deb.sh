#!/bin/sh
# Builds the Debian package of vj-suite from built binaries, with dpkg-deb (no debhelper):
#   /usr/bin/vj-*                         the binaries
#   /usr/lib/systemd/user/                the user units and their drop-in directories, with
#                                         ExecStart=/usr/bin/... (the units say %h/.local/bin)
#   /etc/vj/vj.toml                       the defaults, a conffile (kept on upgrade if edited)
#   /usr/share/doc/vj-suite/              README, docs/, the systemd >= 254 back-off drop-in
# Nothing is enabled or started by the package: each user runs
#   systemctl --user daemon-reload && systemctl --user enable --now vj.target
#
#   deb.sh BIN_SRC_DIR [OUT_DIR]   (default OUT_DIR: target/debian); prints the .deb's path
# DEB_COMPRESS=gzip|none (default xz): the tests build with gzip, quicker on debug binaries.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:?usage: deb.sh BIN_SRC_DIR [OUT_DIR]}" && pwd)
out=${2:-$repo/target/debian}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/vj-suite"
doc="$pkg/usr/share/doc/vj-suite"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/lib/systemd/user" "$pkg/etc/vj" "$doc/docs"

for f in "$repo"/src/bin/*.rs; do
    b=$(basename "$f" .rs)
    if [ ! -x "$src/$b" ]; then
        echo "deb.sh: $src/$b is missing: build first (make build)" >&2
        exit 1
    fi
    install -m 0755 "$src/$b" "$pkg/usr/bin/$b"
done
strip --strip-debug "$pkg"/usr/bin/* 2>/dev/null || true

# The units as install.sh writes them, for the system-wide layout: binaries in /usr/bin,
# documentation in /usr/share/doc. The state and cache paths stay %h/...: each user's own.
unit_file() {
    sed -e "s|%h/.local/bin|/usr/bin|g" -e "s|file://%h/.local/share/doc|file:///usr/share/doc|g" "$1" >"$2"
    chmod 0644 "$2"
}
for u in "$repo"/units/*.socket "$repo"/units/*.service "$repo"/units/*.target; do
    unit_file "$u" "$pkg/usr/lib/systemd/user/$(basename "$u")"
done
for d in "$repo"/units/*.service.d; do
    name=$(basename "$d")
    mkdir -p "$pkg/usr/lib/systemd/user/$name"
    for c in "$d"/*.conf; do unit_file "$c" "$pkg/usr/lib/systemd/user/$name/$(basename "$c")"; done
done

install -m 0644 "$repo/etc/vj.toml" "$pkg/etc/vj/vj.toml"
echo /etc/vj/vj.toml >"$pkg/DEBIAN/conffiles"
install -m 0644 "$repo/README.md" "$doc/README.md"
for f in "$repo"/docs/*.md; do install -m 0644 "$f" "$doc/docs/$(basename "$f")"; done
# Restart back-off needs systemd >= 254: shipped as an example, not in vj-.service.d/.
install -m 0644 "$repo/units/backoff/restart-backoff.conf" "$doc/restart-backoff.conf"
cat >"$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vj-suite
Source: $(sed -n 's/^repository = "\(.*\)"/\1/p' "$repo/Cargo.toml")

Files: *
License: MIT

Files: usr/bin/vj-audio
Copyright: Ableton AG (the Link library, built in through the rusty_link crate)
License: GPL-2.0-or-later
Comment: vj-audio is linked with Ableton Link, so this binary is distributed under the
 GPL, version 2 or later (/usr/share/common-licenses/GPL-2). Its sources: crates.io's
 rusty_link, which carries Link's. Built with --no-default-features, vj-audio has no Link
 and is MIT like the rest.
COPYRIGHT

size=$(du -sk "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: vj-suite
Version: $version
Architecture: $arch
Maintainer: vj-suite developers <vj-suite@users.noreply.github.com>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1, libasound2 (>= 1.0.16), libpulse0 (>= 14)
Recommends: systemd
Section: sound
Priority: optional
Homepage: $(sed -n 's/^homepage = "\(.*\)"/\1/p' "$repo/Cargo.toml")
Description: live music described over OSC for VJs
 Small socket-activated systemd user services that listen to the music being
 played and describe it live over OSC (bands, beats, tempo, track, lyrics),
 with an OSCQuery server, mDNS discovery and control over OSC.
 .
 Nothing starts on its own: run "systemctl --user enable --now vj.target".
CONTROL

find "$pkg" -type d -exec chmod 0755 {} +
mkdir -p "$out"
deb="$out/vj-suite_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
