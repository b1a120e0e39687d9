#!/usr/bin/env python3
"""madmom's beat trackers answering as `vj-audio analyze FILE --beats` does (one line per beat,
`time [position]`, then `tempo BPM`), so that `vj-audio eval DIR --analyzer` scores them beside
vj-audio on the same clips, by the same rules (scripts/eval-beats.sh with EVAL_MADMOM=1 makes
the venv and a wrapper that runs this with it).

  MADMOM_MODE=online   RNNBeatProcessor(online=True) and DBNBeatTrackingProcessor(online=True):
                       causal, as vj-audio is; beats only, no place in the bar.
  MADMOM_MODE=offline  RNNDownBeatProcessor and DBNDownBeatTrackingProcessor (3 or 4 beats a
                       bar): looks at the whole clip; beats and their places in the bar.

The tempo printed is 60 over the median interval between the beats found (madmom's trackers
give no single tempo)."""
import os
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "analyze":
        print("usage: madmom-analyze.py analyze FILE.wav [--beats]", file=sys.stderr)
        return 2
    wav = args[1]
    mode = os.environ.get("MADMOM_MODE", "online")
    if mode == "online":
        from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
        activations = RNNBeatProcessor(online=True)(wav)
        beats = DBNBeatTrackingProcessor(fps=100, online=True)(activations)
        rows = [(float(t), None) for t in beats]
    elif mode == "offline":
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
        activations = RNNDownBeatProcessor()(wav)
        found = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(activations)
        rows = [(float(t), int(p)) for t, p in found]
    else:
        print(f"MADMOM_MODE must be online or offline, not {mode!r}", file=sys.stderr)
        return 2
    for t, place in rows:
        print(f"{t:.6f}" if place is None else f"{t:.6f} {place}")
    times = np.array([t for t, _ in rows])
    tempo = 60.0 / float(np.median(np.diff(times))) if len(times) > 2 else 0.0
    print(f"tempo {tempo:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
