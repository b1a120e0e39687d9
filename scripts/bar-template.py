#!/usr/bin/env python3
"""Fits the bar tracker's weights (W_HARMONY, W_BASS and TEMPLATE in src/audio/bar.rs) to
corpora with truth (`make eval-beats` writes them): what `vj-audio analyze --bar-evidence`
says of each beat, matched to the nearest true beat within 70 ms. Each run of four beats
whose places in the bar are all known is one choice among four: which of them is the "1", read
from its harmony change and the kick and snare at each quarter of the four beats from it. The
weights maximise the likelihood of the right choice (softmax over the four, L2 against
over-fitting), and are scaled so that the harmony above the bass weighs what it did (2.0), which
keeps START_PRIOR and the calibration's scale. Then, on every corpus given with --test (and
those fitted on), the share of beats whose "1" the running means (BAR_DECAY per bar, as the
tracker keeps them) would choose right, with the weights in use and with the new ones.
Fit on tuning corpora only.

  scripts/bar-template.py target/release/vj-audio --fit DIR... [--test DIR...]

Needs numpy (target/eval-venv, which scripts/eval-beats.sh makes)."""
import os
import re
import subprocess
import sys

import numpy as np

BEATS = 4
BAR_DECAY = 0.85
# A bar's features are its first beat's harmony and bass, then each beat's pattern: the kick
# and snare at each of SUBS places in it (SUBS in bar.rs), as many as the evidence holds.


def truth(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            t, place = line.split()[:2]
            out.append((float(t), int(place)))
    return np.array([t for t, _ in out]), np.array([p for _, p in out])


def clip_choices(binary, wav):
    """The clip's choices: for each run of four consecutive beats with known places, the
    features of each as the "1" (4 x features), the right one, and the first beat's number."""
    times, places = truth(wav[:-4] + ".beats")
    out = subprocess.run([binary, "analyze", wav, "--bar-evidence"], capture_output=True,
                         text=True, check=True).stdout
    beats = {}
    for line in out.splitlines():
        x = line.split()
        number, t = int(x[0]), float(x[1])
        k = int(np.argmin(abs(times - t)))
        place = places[k] if abs(times[k] - t) < 0.07 else 0
        beats[number] = (place, np.array([float(v) for v in x[2:]]))
    choices = []
    for b in sorted(beats):
        run = [beats.get(b + j) for j in range(2 * BEATS - 1)]
        if any(r is None or r[0] == 0 for r in run):
            continue
        right = [j for j in range(BEATS) if run[j][0] == 1]
        if len(right) != 1:
            continue
        X = np.stack([features(run[j:j + BEATS]) for j in range(BEATS)])
        choices.append((X, right[0], b))
    return choices


def features(bar):
    """A bar's features as its first beat's: harmony, bass, then each beat's pattern."""
    first = bar[0][1]
    return np.concatenate([first[:2]] + [b[1][2:] for b in bar])


def corpus(binary, d):
    return [(os.path.join(d, n), clip_choices(binary, os.path.join(d, n)))
            for n in sorted(os.listdir(d)) if n.endswith(".wav")]


def fit(clips, l2=0.01, steps=3000, rate=0.5):
    X = np.array([c[0] for _, cl in clips for c in cl])
    y = np.array([c[1] for _, cl in clips for c in cl])
    flat = X.reshape(-1, X.shape[-1])
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    Xn = (X - mu) / sd
    w = np.zeros(X.shape[-1])
    for _ in range(steps):
        s = Xn @ w
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        w -= rate * (np.einsum("gk,gkf->f", p, Xn) / len(y) + l2 * w)
    w = w / sd
    # A band as loud on every quarter of the bar tells no beat from another: each band's
    # weights sum to 0, so it adds nothing (the choice among a loop's rotations is the same).
    t = w[2:].reshape(BEATS, -1, 2)
    t -= t.mean(axis=(0, 1))
    return w * (2.0 / w[0]) if w[0] > 0 else w


def in_use(source, features):
    """W_HARMONY, W_BASS and TEMPLATE as src/audio/bar.rs has them (zeros if the table does
    not fit `features`: the places in a beat changed)."""
    text = open(source).read()
    wh = float(re.search(r"const W_HARMONY: f32 = ([-\d.]+);", text).group(1))
    wb = float(re.search(r"const W_BASS: f32 = ([-\d.]+);", text).group(1))
    block = text[text.index("const TEMPLATE"):]
    block = block[block.index(" = ") : block.index("];\n") + 2]
    table = [float(v) for v in re.findall(r"-?\d+\.\d+", block)]
    w = np.array([wh, wb] + table)
    return w if len(w) == features else np.zeros(features)


def running_right(clips, w):
    right = total = 0
    for _, cl in clips:
        means = np.zeros(BEATS)
        for X, r, b in cl:
            means[b % BEATS] = BAR_DECAY * means[b % BEATS] + (1 - BAR_DECAY) * (X[0] @ w)
            right += int(np.argmax([means[(b + j) % BEATS] for j in range(BEATS)]) == r)
            total += 1
    return right / max(total, 1), total


def main():
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != "--fit":
        sys.exit(__doc__)
    binary = args[0]
    rest = args[2:]
    fit_dirs = rest[:rest.index("--test")] if "--test" in rest else rest
    test_dirs = rest[rest.index("--test") + 1:] if "--test" in rest else []
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "audio", "bar.rs")
    data = {d: corpus(binary, d) for d in fit_dirs + test_dirs}
    w = fit([c for d in fit_dirs for c in data[d]])
    old = in_use(source, len(w))
    for d in fit_dirs + test_dirs:
        (a, n), (b, _) = running_right(data[d], old), running_right(data[d], w)
        kind = "fitted on" if d in fit_dirs else "test"
        print(f"{d} ({kind}, {n} choices): right {a:.3f} with the weights in use, {b:.3f} new")
    print(f"const W_HARMONY: f32 = {w[0]:.2f};\nconst W_BASS: f32 = {w[1]:.2f};")
    print("const TEMPLATE: [[[f32; 2]; SUBS]; 4] = [")
    t = w[2:].reshape(BEATS, -1, 2)
    for beat in t:
        print("    [" + ", ".join(f"[{k:.2f}, {s:.2f}]" for k, s in beat) + "],")
    print("];")


if __name__ == "__main__":
    main()
