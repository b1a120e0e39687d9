#!/usr/bin/env python3
"""How honest `downbeat_confidence` is on a corpus with truth (make eval-beats writes them):
each beat `vj-audio analyze --json` sends, matched to the nearest true beat within 70 ms, is
right when its place in the bar (count[0]) is the true one. Prints, per tenth of confidence
(phase[3]), how many beats and how many right; and the share right at >= 0.8.

  scripts/downbeat-calibration.py target/release/vj-audio DIR"""
import bisect
import collections
import json
import os
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
