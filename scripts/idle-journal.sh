#!/bin/sh
# How much each worker writes to the journal with nothing changing: the suite as installed
# (default config: audio.source = "auto", which on a machine without a sound card keeps
# re-scanning for one), under a private user manager in a network namespace of its own (only
# loopback, so its ports meet nobody's), started, left 60 s to settle, then its journal lines
# counted per worker before and after IDLE_SECONDS (default 3600). Needs root (ip netns).
#
#   idle-journal.sh [BIN_DIR]    binaries from BIN_DIR (default target/release)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$repo/target/release}
secs=${IDLE_SECONDS:-3600}
# Under /var/lib, not /tmp: the units' PrivateTmp= would hide a box in /tmp from them.
box=$(mktemp -d /var/lib/vj-idle.XXXXXX)
ns="vjidle$$"
export HOME="$box/home" XDG_RUNTIME_DIR="$box/run"
export XDG_CONFIG_HOME="$HOME/.config" XDG_CACHE_HOME="$HOME/.cache" XDG_STATE_HOME="$HOME/.local/state"
unset DBUS_SESSION_BUS_ADDRESS VJ_CONFIG VJ_BUS_DIR NOTIFY_SOCKET
mkdir -p "$HOME"
cleanup() {
    systemctl --user stop vj.target >/dev/null 2>&1 || true
    "$repo/scripts/user-manager.sh" stop >/dev/null 2>&1 || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$box"
}
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net="/run/netns/$ns" -- "$repo/scripts/user-manager.sh" start
"$repo/scripts/install.sh" "$bin" >/dev/null
systemctl --user start vj.target
sleep 60
workers=$(cd "$repo/src/bin" && ls | sed -n 's/^\(vj-.*\)\.rs$/\1/p' | grep -v -e vj-status -e vj-console)
count() {
    pid=$(cat "$XDG_RUNTIME_DIR/vj-user-manager/manager.pid")
    for w in $workers; do
        printf '%s %s\n' "$w" "$(nsenter -t "$pid" -m journalctl -q --no-pager -o cat -t "$w" | wc -l)"
    done
}
count >"$box/before"
sleep "$secs"
count >"$box/after"
echo "journal lines per worker: after 60 s of start-up, then over the next $secs s (per hour)"
join "$box/before" "$box/after" | while read -r w a b; do
    echo "$w: $a at start, +$((b - a)) idle ($(((b - a) * 3600 / secs)) per hour)"
done
echo "what the idle lines said:"
pid=$(cat "$XDG_RUNTIME_DIR/vj-user-manager/manager.pid")
nsenter -t "$pid" -m journalctl -q --no-pager -o short-monotonic --since "-$secs s" | grep ' vj-' | tail -n 20 || true
