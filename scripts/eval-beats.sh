#!/bin/sh
# `make eval-beats`: generate the synthetic corpus (once) and score vj-audio's beat tracker
# against the naive one. EVAL_DIR / EVAL_SEED / EVAL_CLIPS choose the corpus (seeds 1-4 are
# the tuning set; use e.g. EVAL_SEED=101 for a held-out one).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
seed=${EVAL_SEED:-1}
clips=${EVAL_CLIPS:-4}
dir=${EVAL_DIR:-$repo/target/eval-corpus-$seed-$clips}
cd "$repo"
cargo build --release --bin vj-audio
bin=${CARGO_TARGET_DIR:-$repo/target}/release/vj-audio
if [ ! -f "$dir/house-$(printf %02d "$seed").beats" ]; then
    "$bin" gen-corpus "$dir" --seed "$seed" --clips "$clips"
fi
"$bin" eval "$dir"
