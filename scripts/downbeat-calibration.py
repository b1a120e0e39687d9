#!/usr/bin/env python3
"""How honest `downbeat_confidence` is on a corpus with truth (make eval-beats writes them):
each beat `vj-audio analyze --json` sends, matched to the nearest true beat within 70 ms, is
right when its place in the bar (count[0]) is the true one. Prints, per tenth of confidence
(phase[3]), how many beats and how many right; and the share right at >= 0.8.

  scripts/downbeat-calibration.py target/release/vj-audio DIR
  scripts/downbeat-calibration.py target/release/vj-audio --fit DIR...

With --fit (tuning corpora only), the confidences are read back through the table in use
(`CALIBRATION` in src/audio/bar.rs, increasing, so it can be undone: a beat at the table's top
counts at its top knot) to the tracker's raw margin x evidence, and a new table is fitted to
whether each beat was right: pool-adjacent-violators, blocks of at least 100 beats, a knot at
each block's mean raw figure and share right (0.99 at most), after (0, 0) (raw 0, no bar heard
yet, stays 0). Printed as Rust to paste."""
import bisect
import collections
import json
import os
import re
import subprocess
import sys


def rows(binary, corpus):
    for name in sorted(os.listdir(corpus)):
        if not name.endswith(".wav"):
            continue
        truth = []
        with open(os.path.join(corpus, name[:-4] + ".beats")) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                t, place = line.split()[:2]
                truth.append((float(t), int(place)))
        times = [t for t, _ in truth]
        out = subprocess.run([binary, "analyze", os.path.join(corpus, name), "--json"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            frame = json.loads(line)
            if not frame["beat"]:
                continue
            t = frame["beat_time"]
            i = bisect.bisect_left(times, t)
            near = [j for j in (i - 1, i) if 0 <= j < len(times)]
            if not near:
                continue
            j = min(near, key=lambda j: abs(times[j] - t))
            if abs(times[j] - t) <= 0.07:
                yield frame["phase"][3], frame["count"][0] == truth[j][1]


def main(binary, corpus):
    bins = collections.defaultdict(lambda: [0, 0])
    sure = [0, 0]
    for confidence, right in rows(binary, corpus):
        b = bins[min(int(confidence * 10), 9)]
        b[0] += 1
        b[1] += right
        if confidence >= 0.8:
            sure[0] += 1
            sure[1] += right
    for b in sorted(bins):
        n, right = bins[b]
        print(f"confidence {b / 10:.1f}-{(b + 1) / 10:.1f}: {n:5d} beats, {100 * right / n:5.1f} % right")
    print(f">= 0.8: {sure[0]} beats, {100 * sure[1] / max(1, sure[0]):.1f} % right")


def table():
    """The knots of `CALIBRATION` in src/audio/bar.rs."""
    src = open(os.path.join(os.path.dirname(__file__), "..", "src", "audio", "bar.rs")).read()
    body = src[src.index("const CALIBRATION"):]
    body = body[:body.index("];")]
    return [(float(a), float(b)) for a, b in re.findall(r"\(([0-9.]+), ([0-9.]+)\)", body)]


def raw(confidence, knots):
    """The raw figure `audio::bar::calibrated` maps to `confidence`."""
    for (r0, c0), (r1, c1) in zip(knots, knots[1:]):
        if confidence <= c1:
            return r0 + (r1 - r0) * (confidence - c0) / (c1 - c0)
    return knots[-1][0]


def fit(binary, corpora, least=100):
    knots = table()
    # Raw 0 (no bar heard yet) stays 0: those beats are left out of the fit.
    beats = sorted((r, right) for d in corpora for c, right in rows(binary, d)
                   if (r := raw(c, knots)) > 0)
    blocks = []  # [beats, right, sum of raw]
    for r, right in beats:
        blocks.append([1, int(right), r])
        # Pool while a block is smaller than `least` or not above the one before it.
        while len(blocks) > 1 and (blocks[-2][0] < least
                                   or blocks[-2][1] / blocks[-2][0] >= blocks[-1][1] / blocks[-1][0]):
            n, k, s = blocks.pop()
            blocks[-1] = [blocks[-1][0] + n, blocks[-1][1] + k, blocks[-1][2] + s]
    print(f"// {len(beats)} beats; blocks of at least {least}")
    print(f"const CALIBRATION: [(f32, f32); {len(blocks) + 1}] = [")
    print("    (0.0, 0.0),")
    for n, k, s in blocks:
        print(f"    ({s / n:.2f}, {min(k / n, 0.99):.2f}), // {n} beats")
    print("];")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--fit":
        fit(sys.argv[1], sys.argv[3:])
    else:
        main(*sys.argv[1:3])
