#!/bin/sh
# Runs every cargo-fuzz target to FUZZ_RUNS executions (default 10 million), or for
# FUZZ_SECONDS each when that is set, from a kept corpus (fuzz/corpus/<target>, seeded with the
# regressions and minimised after each run). A crash is copied into fuzz/regressions/<target>/
# so `cargo test --test fuzz_regressions` replays it from then on. Prints, per target, the
# executions and libFuzzer's coverage (cov: edges, ft: features) and the corpus size.
# cargo-fuzz wants nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -eu
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
runs=${FUZZ_RUNS:-10000000}
if [ -n "${FUZZ_SECONDS:-}" ]; then limit="-max_total_time=$FUZZ_SECONDS"; else limit="-runs=$runs"; fi
status=0
summary=""
for target in ${FUZZ_TARGETS:-$(cargo fuzz list)}; do
    mkdir -p "corpus/$target" "regressions/$target"
    # Seed the corpus with the regressions (known-interesting inputs).
    cp -n "regressions/$target"/* "corpus/$target"/ 2>/dev/null || true
    echo "== $target: $limit"
    log="artifacts/$target.log"
    mkdir -p artifacts
    if ! cargo fuzz run "$target" "corpus/$target" -- "$limit" -rss_limit_mb=2048 \
        -print_final_stats=1 2>"$log"; then
        status=1
        tail -n 30 "$log"
        for crash in artifacts/"$target"/crash-* artifacts/"$target"/oom-* artifacts/"$target"/timeout-*; do
            [ -e "$crash" ] && cp "$crash" "regressions/$target/" && echo "kept $crash as a regression"
        done
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1 || true
    kept=$(find "corpus/$target" -type f | wc -l)
    summary="$summary$target: ${execs:-?} executions, ${done_line#*DONE}, corpus $kept files
"
done
printf '\n%s' "$summary"
exit $status
