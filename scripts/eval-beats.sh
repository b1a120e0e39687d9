#!/bin/sh
# `make eval-beats`: generate the synthetic corpus (once) and score vj-audio's beat tracker
# (beat F, downbeat F, tempo) against the naive one. EVAL_DIR / EVAL_SEED / EVAL_CLIPS choose
# the corpus, EVAL_CORPUS=hard (the default: swing, ghost notes, timbres, noise, lo-fi, clips
# that start inside a bar) or classic (the corpus tuned on until 2026-11-30). Seeds 1-4 are
# the tuning set; 101-104 and 201-204 are held out. EVAL_ANALYZER scores another vj-audio
# binary (an older build) on the same clips; madmom's online and offline trackers are scored
# after vj-audio on the same clips (EVAL_MADMOM=0 skips them).
# EVAL_CORPUS=h2 scores recorded drums instead: Hydrogen's kits playing patterns written in
# scripts/h2corpus.py under synthesized beds (tuning kits for seeds < 100, held-out kits from
# seed 101; needs `apt-get install hydrogen hydrogen-data hydrogen-drumkits` and makes a
# Python venv with numpy in target/eval-venv). EVAL_CORPUS=mod scores tracker modules (the game
# Pingus's songs, rendered by libopenmpt with the rows as the grid: scripts/modcorpus.py; every
# second module held out, for seeds from 101; needs pingus-data and libopenmpt0).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
seed=${EVAL_SEED:-1}
clips=${EVAL_CLIPS:-4}
corpus=${EVAL_CORPUS:-hard}
dir=${EVAL_DIR:-$repo/target/eval-$corpus-$seed-$clips}
cd "$repo"
cargo build --release --bin vj-audio
bin=${CARGO_TARGET_DIR:-$repo/target}/release/vj-audio
# Installs Debian packages WHAT ($1) needs, as root; anyone else is told the command.
need() {
    what=$1
    shift
    if [ "$(id -u)" -ne 0 ]; then
        echo "$what needs: sudo apt-get install $*" >&2
        exit 1
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null
}
# The Python venv with numpy the recorded corpora's scripts run in (made once); prints its path.
eval_venv() {
    venv=${CARGO_TARGET_DIR:-$repo/target}/eval-venv
    [ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q numpy; } >&2
    echo "$venv"
}
if ! ls "$dir"/*.beats >/dev/null 2>&1; then
    # Made beside it and moved in whole: a generator that stops half-way leaves no corpus to
    # be scored as if it were complete.
    final=$dir
    dir=$dir.partial
    rm -rf "$dir"
    # The recorded corpora's seeds from 101 render their held-out kits or modules.
    set_name=tune; [ "$seed" -ge 100 ] && set_name=held
    if [ "$corpus" = h2 ]; then
        command -v h2cli >/dev/null || need "the recorded-drums corpus" hydrogen hydrogen-data hydrogen-drumkits
        "$(eval_venv)/bin/python" "$repo/scripts/h2corpus.py" "$dir" --seed "$seed" --clips "$clips" --set "$set_name"
    elif [ "$corpus" = mod ]; then
        { [ -d /usr/share/games/pingus/data/music ] && ldconfig -p | grep -q libopenmpt.so.0; } ||
            need "the tracker-module corpus" pingus-data libopenmpt0
        "$(eval_venv)/bin/python" "$repo/scripts/modcorpus.py" "$dir" --seed "$seed" --clips "$clips" --set "$set_name"
    elif [ "$corpus" = classic ]; then
        "$bin" gen-corpus "$dir" --seed "$seed" --clips "$clips" --classic
    else
        "$bin" gen-corpus "$dir" --seed "$seed" --clips "$clips"
    fi
    rm -rf "$final"
    mv "$dir" "$final"
    dir=$final
fi
if [ -n "${EVAL_ANALYZER:-}" ]; then
    "$bin" eval "$dir" --analyzer "$EVAL_ANALYZER"
else
    "$bin" eval "$dir"
fi
# madmom's online (causal) and offline trackers on the same clips, scored by the same rules
# (scripts/madmom-analyze.py answers as `vj-audio analyze --beats` does). EVAL_MADMOM=0 skips.
# madmom 0.16.1 is the last release: its sdist carries C made by an old Cython that today's
# Python cannot compile, and one import moved in Python 3.10; the venv builds it from its .pyx
# with Cython 0.29 and that import mended, in target/madmom-venv (once).
if [ "${EVAL_MADMOM:-1}" != 0 ]; then
    mvenv=${CARGO_TARGET_DIR:-$repo/target}/madmom-venv
    if ! "$mvenv/bin/python" -c "import madmom" 2>/dev/null; then
        rm -rf "$mvenv"
        python3 -m venv "$mvenv"
        "$mvenv/bin/pip" install -q "numpy<1.24" "cython<3" scipy mido setuptools wheel
        src=$(mktemp -d)
        "$mvenv/bin/pip" download -q --no-deps --no-build-isolation madmom==0.16.1 -d "$src"
        tar xzf "$src"/madmom-0.16.1.tar.gz -C "$src"
        find "$src/madmom-0.16.1/madmom" -name "*.c" -delete
        sed -i 's/^from collections import MutableSequence/from collections.abc import MutableSequence/' \
            "$src/madmom-0.16.1/madmom/processors.py"
        "$mvenv/bin/pip" install -q --no-build-isolation "$src/madmom-0.16.1"
        rm -rf "$src"
    fi
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$mvenv/bin/python" "$repo/scripts/madmom-analyze.py" \
        > "$mvenv/bin/madmom-analyze"
    chmod +x "$mvenv/bin/madmom-analyze"
    for mode in online offline; do
        echo "madmom $mode on the same clips (F(vj) and tempo(vj) are madmom's):"
        MADMOM_MODE=$mode "$bin" eval "$dir" --analyzer "$mvenv/bin/madmom-analyze"
    done
fi
