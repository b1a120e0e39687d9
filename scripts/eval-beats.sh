#!/bin/sh
# `make eval-beats`: generate the synthetic corpus (once) and score vj-audio's beat tracker
# (beat F, downbeat F, tempo) against the naive one. EVAL_DIR / EVAL_SEED / EVAL_CLIPS choose
# the corpus, EVAL_CORPUS=hard (the default: swing, ghost notes, timbres, noise, lo-fi, clips
# that start inside a bar) or classic (the corpus tuned on until 2026-11-30). Seeds 1-4 are
# the tuning set; 101-104 and 201-204 are held out. EVAL_ANALYZER scores another vj-audio
# binary (an older build) on the same clips.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
seed=${EVAL_SEED:-1}
clips=${EVAL_CLIPS:-4}
corpus=${EVAL_CORPUS:-hard}
dir=${EVAL_DIR:-$repo/target/eval-$corpus-$seed-$clips}
cd "$repo"
cargo build --release --bin vj-audio
bin=${CARGO_TARGET_DIR:-$repo/target}/release/vj-audio
if [ ! -f "$dir/house-$(printf %02d "$seed").beats" ]; then
    if [ "$corpus" = classic ]; then
        "$bin" gen-corpus "$dir" --seed "$seed" --clips "$clips" --classic
    else
        "$bin" gen-corpus "$dir" --seed "$seed" --clips "$clips"
    fi
fi
if [ -n "${EVAL_ANALYZER:-}" ]; then
    "$bin" eval "$dir" --analyzer "$EVAL_ANALYZER"
else
    "$bin" eval "$dir"
fi
