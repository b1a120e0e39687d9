#!/bin/sh
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) each. A crash is copied into
# fuzz/regressions/<target>/ so `cargo test --test fuzz_regressions` replays it from then on.
# cargo-fuzz wants nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -eu
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-60}
status=0
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target" "regressions/$target"
    # Seed the corpus with the regressions (known-interesting inputs).
    cp -n "regressions/$target"/* "corpus/$target"/ 2>/dev/null || true
    echo "== $target: ${seconds}s"
    if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048; then
        status=1
        for crash in artifacts/"$target"/crash-* artifacts/"$target"/oom-* artifacts/"$target"/timeout-*; do
            [ -e "$crash" ] && cp "$crash" "regressions/$target/" && echo "kept $crash as a regression"
        done
    fi
done
exit $status
