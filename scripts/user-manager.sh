#!/bin/sh
# A systemd user manager to run vj-suite under, for machines whose PID 1 is not systemd
# (containers, CI). The recipe of docs/TESTING (shared/TESTING.md): a private mount namespace
# with /run/systemd/system as the "booted with systemd" marker and a journald of its own.
#
#   user-manager.sh ensure   use the session's manager if one answers, else start a private one
#   user-manager.sh start    start a private manager for $HOME / $XDG_RUNTIME_DIR (idempotent)
#   user-manager.sh stop     stop the private manager and its journald
#   user-manager.sh pid      print the private manager's PID (for nsenter -t PID -m)
#   user-manager.sh runtime-dir   the XDG_RUNTIME_DIR it serves
#
# The manager serves $XDG_RUNTIME_DIR (created 0700 if missing) and inherits HOME and XDG_*;
# `systemctl --user` reaches it from outside the namespace with the same environment.
set -eu

# The runtime dir when none is set: the session's, or for a private manager one outside /run
# (its sandboxed units lose sight of /run/user/UID when the manager runs in a mount namespace).
default_runtime_dir() {
    if [ -d /run/systemd/system ] && [ -d "/run/user/$(id -u)" ]; then
        echo "/run/user/$(id -u)"
    elif [ "$(id -u)" -eq 0 ]; then
        echo "/var/lib/vj-user-manager/run"
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/vj-user-manager/run"
    fi
}
: "${XDG_RUNTIME_DIR:=$(default_runtime_dir)}"
export XDG_RUNTIME_DIR
state="$XDG_RUNTIME_DIR/vj-user-manager"

answers() {
    systemctl --user show-environment >/dev/null 2>&1
}

start() {
    if answers; then
        return 0
    fi
    mkdir -p "$XDG_RUNTIME_DIR" "$state"
    chmod 0700 "$XDG_RUNTIME_DIR" "$state"
    rm -f "$state/manager.pid" "$state/journald.pid" "$state/cgroups"
    # Volatile journal storage: several private managers may run at once (tests).
    printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$state/journald.conf"
    setsid unshare -m sh -c '
        state=$1
        mount --make-rprivate / 2>/dev/null || true
        mount -t tmpfs tmpfs /run/systemd
        mkdir -p /run/systemd/system /run/systemd/journal /run/log
        mount -t tmpfs tmpfs /run/log
        mount --bind "$state/journald.conf" /etc/systemd/journald.conf
        /lib/systemd/systemd-journald >/dev/null 2>&1 &
        echo $! >"$state/journald.pid"
        i=0
        while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        # A cgroup of its own: a manager whose cgroup is /init.scope takes the root as its own,
        # and managers side by side (tests) would then share, and kill, the same units.
        for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
            if [ -f "$h/cgroup.procs" ] && [ -w "$h" ]; then
                mkdir -p "$h/vjt-$$" && echo $$ >"$h/vjt-$$/cgroup.procs" && echo "$h/vjt-$$" >>"$state/cgroups" || true
            fi
        done
        echo $$ >"$state/manager.pid"
        exec /lib/systemd/systemd --user
    ' vj-user-manager "$state" >"$state/manager.log" 2>&1 </dev/null &
    i=0
    while ! { [ -S "$XDG_RUNTIME_DIR/systemd/private" ] && answers; }; do
        i=$((i + 1))
        if [ $i -gt 200 ]; then
            echo "user-manager.sh: the private systemd user manager did not come up; its log:" >&2
            cat "$state/manager.log" >&2
            exit 1
        fi
        sleep 0.05
    done
}

stop() {
    if [ -f "$state/manager.pid" ]; then
        systemctl --user exit >/dev/null 2>&1 || kill "$(cat "$state/manager.pid")" 2>/dev/null || true
        i=0
        while kill -0 "$(cat "$state/manager.pid")" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.05
            i=$((i + 1))
        done
        kill -9 "$(cat "$state/manager.pid")" 2>/dev/null || true
    fi
    if [ -f "$state/journald.pid" ]; then
        kill "$(cat "$state/journald.pid")" 2>/dev/null || true
    fi
    if [ -f "$state/cgroups" ]; then
        while read -r cg; do
            find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done <"$state/cgroups"
    fi
    rm -f "$state/manager.pid" "$state/journald.pid" "$state/cgroups"
}

case "${1:-}" in
runtime-dir) echo "$XDG_RUNTIME_DIR" ;;
ensure)
    if answers; then exit 0; fi
    start
    ;;
start) start ;;
stop) stop ;;
pid) cat "$state/manager.pid" ;;
*)
    echo "usage: $0 ensure|start|stop|pid" >&2
    exit 2
    ;;
esac
