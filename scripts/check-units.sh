#!/bin/sh
# Lints the service definitions: `systemd-analyze --user verify` on every unit as `make install`
# writes it (into a throw-away HOME), and every launchd plist parses and declares the same
# named sockets as the systemd units of its worker.
#   check-units.sh BIN_SRC_DIR     (a cargo target dir holding the binaries)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${1:?usage: check-units.sh BIN_SRC_DIR}" && pwd)
box=$(mktemp -d)
trap 'rm -rf "$box"' EXIT
mkdir -p "$box/home" "$box/run" && chmod 0700 "$box/run"
(
    export HOME="$box/home" XDG_RUNTIME_DIR="$box/run" XDG_CONFIG_HOME="$box/home/.config"
    unset XDG_STATE_HOME XDG_CACHE_HOME
    "$repo/scripts/install.sh" "$src" >/dev/null
    cd "$XDG_CONFIG_HOME/systemd/user"
    systemd-analyze --user verify ./*.socket ./*.service ./*.target
)
echo "units: systemd-analyze verify clean"
python3 "$repo/scripts/check-plists.py" "$repo"
