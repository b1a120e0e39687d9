#!/bin/sh
# Installs vj-suite for the current user, honouring HOME and XDG_CONFIG_HOME:
#   binaries  -> ${BINDIR:-$HOME/.local/bin}
#   units     -> $XDG_CONFIG_HOME/systemd/user   (Linux; ExecStart filled with BINDIR), with the
#                drop-in directories of units/ (vj-.service.d/ for every vj-*.service)
#   plists    -> $HOME/Library/LaunchAgents       (macOS; paths filled in)
#   config    -> $XDG_CONFIG_HOME/vj/vj.toml      (the defaults, only if there is none)
#
#   install.sh BIN_SRC_DIR     install from a cargo target dir (target/release, target/debug)
#   install.sh --units-only    only the units/plists (and the config), for binaries that are
#                              already in BINDIR (a Homebrew install: BINDIR=$(brew --prefix)/bin)
#   install.sh --uninstall     remove what install put there (never the user's config)
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
bindir=${BINDIR:-$HOME/.local/bin}
config_home=${XDG_CONFIG_HOME:-$HOME/.config}
state_home=${XDG_STATE_HOME:-$HOME/.local/state}
cache_home=${XDG_CACHE_HOME:-$HOME/.cache}
unitdir="$config_home/systemd/user"
agents="$HOME/Library/LaunchAgents"
os=$(uname -s)

bins() { for f in "$repo"/src/bin/*.rs; do basename "$f" .rs; done; }

manager_answers() { systemctl --user show-environment >/dev/null 2>&1; }

# The drop-in directories of units/ (vj-.service.d, vj-audio.service.d, ...), by name.
dropin_dirs() {
    for d in "$repo"/units/*.service.d; do
        if [ -d "$d" ]; then basename "$d"; fi
    done
}

# A unit file or drop-in with the install paths filled in, replaced atomically.
install_unit_file() {
    sed -e "s|%h/.local/bin|$bindir|g" -e "s|%h/.local/state|$state_home|g" \
        -e "s|%h/.cache|$cache_home|g" "$1" >"$2.tmp"
    mv "$2.tmp" "$2"
}

systemd_version() { systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 + 0 }'; }

uninstall() {
    if [ "$os" = Darwin ]; then
        for p in "$repo"/launchd/*.plist; do
            label=$(basename "$p" .plist)
            launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
            rm -f "$agents/$label.plist"
        done
    else
        if manager_answers; then systemctl --user stop vj.target 2>/dev/null || true; fi
        for u in "$repo"/units/*.socket "$repo"/units/*.service "$repo"/units/*.target; do
            rm -f "$unitdir/$(basename "$u")"
        done
        # Only the drop-ins install put there: a user's own (LoadCredential=, ...) stay.
        for d in $(dropin_dirs); do
            for c in "$repo/units/$d"/*.conf; do rm -f "$unitdir/$d/$(basename "$c")"; done
            rmdir "$unitdir/$d" 2>/dev/null || true
        done
        rm -f "$unitdir/vj-.service.d/restart-backoff.conf"
        rmdir "$unitdir/vj-.service.d" 2>/dev/null || true
        if manager_answers; then systemctl --user daemon-reload; fi
    fi
    for b in $(bins); do rm -f "$bindir/$b"; done
    echo "vj-suite uninstalled (your config in $config_home/vj is kept)"
}

install_units() {
    mkdir -p "$unitdir"
    # The only places the sandboxed units may write (ReadWritePaths=).
    mkdir -p "$state_home/vj" "$cache_home/vj"
    chmod 0700 "$state_home/vj" "$cache_home/vj"
    for u in "$repo"/units/*.socket "$repo"/units/*.service "$repo"/units/*.target; do
        install_unit_file "$u" "$unitdir/$(basename "$u")"
    done
    # The drop-ins: vj-.service.d/ (shared by every vj-*.service) and each worker's own
    # vj-<name>.service.d/, whose same-named files replace the shared ones for that worker.
    for d in $(dropin_dirs); do
        mkdir -p "$unitdir/$d"
        for c in "$repo/units/$d"/*.conf; do install_unit_file "$c" "$unitdir/$d/$(basename "$c")"; done
    done
    # Restart back-off needs systemd >= 254; older managers would warn about unknown keys.
    if [ "$(systemd_version)" -ge 254 ] 2>/dev/null; then
        mkdir -p "$unitdir/vj-.service.d"
        install_unit_file "$repo/units/backoff/restart-backoff.conf" \
            "$unitdir/vj-.service.d/restart-backoff.conf"
    else
        rm -f "$unitdir/vj-.service.d/restart-backoff.conf"
    fi
    if manager_answers; then systemctl --user daemon-reload; fi
}

install_plists() {
    mkdir -p "$agents"
    busdir="${TMPDIR:-/tmp}"
    busdir="${busdir%/}/vj-bus"
    mkdir -p "$busdir" && chmod 0700 "$busdir"
    for p in "$repo"/launchd/*.plist; do
        label=$(basename "$p" .plist)
        sed -e "s|__BIN_DIR__|$bindir|g" -e "s|__BUS_DIR__|$busdir|g" -e "s|__HOME__|$HOME|g" \
            "$p" >"$agents/$label.plist"
        launchctl bootout "gui/$(id -u)/$label" 2>/dev/null || true
        launchctl bootstrap "gui/$(id -u)" "$agents/$label.plist"
    done
}

case "${1:-}" in
--uninstall)
    uninstall
    exit 0
    ;;
--units-only)
    if [ ! -e "$config_home/vj/vj.toml" ]; then
        mkdir -p "$config_home/vj"
        cp "$repo/etc/vj.toml" "$config_home/vj/vj.toml"
    fi
    if [ "$os" = Darwin ]; then install_plists; else install_units; fi
    echo "vj-suite service definitions installed for the binaries in $bindir"
    exit 0
    ;;
"" | -*)
    echo "usage: $0 BIN_SRC_DIR | --uninstall" >&2
    exit 2
    ;;
esac

src=$1
mkdir -p "$bindir"
for b in $(bins); do
    if [ ! -x "$src/$b" ]; then
        echo "install.sh: $src/$b is missing: build first (make build)" >&2
        exit 1
    fi
    # Replace, never overwrite in place: a running worker keeps its old binary.
    install -m 0755 "$src/$b" "$bindir/.$b.new"
    mv -f "$bindir/.$b.new" "$bindir/$b"
done

if [ ! -e "$config_home/vj/vj.toml" ]; then
    mkdir -p "$config_home/vj"
    cp "$repo/etc/vj.toml" "$config_home/vj/vj.toml"
fi

if [ "$os" = Darwin ]; then install_plists; else install_units; fi
echo "vj-suite installed: binaries in $bindir"
