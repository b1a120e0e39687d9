#!/bin/sh
# Installs the Debian packages vj-suite needs, if any is missing:
#   build:  pkg-config, libasound2-dev (cpal's ALSA backend); cmake, g++, libclang-dev
#           (rusty_link builds Ableton's Link library, C++, and its bindings with bindgen);
#           libpulse-dev (libpulse-binding: audio.device = "system", the monitor of the
#           default output through PulseAudio or pipewire-pulse, and its sources listed)
#   tests:  liblo-tools (oscdump/oscsend, an OSC peer we did not write), alsa-utils (arecord),
#           dbus, mpv, mpv-mpris (a real MPRIS player on a private session bus),
#           pulseaudio, libasound2-plugins (a real sound server, captured through ALSA),
#           pulseaudio-utils (paplay plays a click track into it, pactl switches its output),
#           python3-requests, python3-websockets, python3-zeroconf (an OSCQuery client and an
#           mDNS browser nobody here wrote, run with /usr/bin/python3),
#           tmux (vj-console driven as a person would: send-keys, capture-pane),
#           dbus-user-session (the user manager on a session bus, where vj-status and vj-console
#           ask it over D-Bus; without one they fall back to systemctl),
#           zstd (the CLI: a show recording opened by a tool that is not ours),
#           pipewire, pipewire-pulse, wireplumber (the system capture on PipeWire, the sound
#           server of current desktops, as well as on PulseAudio)
set -eu
want="pkg-config libasound2-dev cmake g++ libclang-dev libpulse-dev"
if [ "${1:-}" = --test ]; then want="$want liblo-tools alsa-utils dbus mpv mpv-mpris pulseaudio libasound2-plugins pulseaudio-utils python3-requests python3-websockets python3-zeroconf tmux dbus-user-session zstd pipewire pipewire-pulse wireplumber"; fi
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "vj-suite needs these Debian packages:$missing" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
