#!/usr/bin/env python3
"""modcorpus.py - a beat-tracking corpus of tracker modules, whose rows give the grid.

The modules are the game Pingus's music (package pingus-data: Impulse Tracker and Scream
Tracker songs by several composers, played by recorded samples). Each is rendered by libopenmpt
(the library behind `openmpt123`, package libopenmpt0) and the row being played is read back
every 16 frames (0.36 ms) while it renders, so every row's start is known to the sample block,
tempo and speed changes, pattern breaks and loops included. A beat is a row the composer's
highlight marks: Impulse Tracker files carry "rows per beat" and "rows per measure" in their
header (0x1E, 0x1F; 4 and 16 when unset, and for Scream Tracker files), counted from the top of
each pattern, as the tracker's own editor highlights them; where that level is over 180 BPM,
every second or third of them, as `meter` says. Excerpts of 30 s start at the top of
the song (for half the clips) or anywhere in it, and are then, by chance, given a room, lo-fi
filtering and noise (scripts/h2corpus.py's `degrade`). Instruments with random volume or pan
swing sound a little different in each rendering (libopenmpt seeds its own generator), the
grid never: compare trackers within one rendering.

Usage: modcorpus.py OUT_DIR [--seed N] [--clips K] [--set tune|held] [--seconds S]

Writes NAME.wav (44.1 kHz, 16-bit stereo) and NAME.beats (`# tracker tempo`, where tempo is
the median beat interval's over the excerpt, then `time position` per beat, 1 = downbeat) for
each clip: the format `vj-audio eval DIR` scores. Modules are split, every second one in name
order held out: `--set tune` renders the others (seeds 1-99 by convention), `--set held` the
held-out ones (seeds 101 and up). Tune only on the first; score the second, never look at it.
Needs numpy (scripts/eval-beats.sh makes a venv with it).
"""
import ctypes
import os
import random
import sys

import numpy as np

from h2corpus import RATE, arguments, degrade, write_wav

MODULES_DIR = "/usr/share/games/pingus/data/music"
BLOCK = 16  # frames rendered between two looks at the row being played
LONGEST = 6 * 60  # seconds of a song rendered at most
JINGLE = 20  # seconds: a song shorter than this played once is a jingle, not music to track

lib = ctypes.CDLL("libopenmpt.so.0")
lib.openmpt_module_create_from_memory2.restype = ctypes.c_void_p
lib.openmpt_module_create_from_memory2.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.c_void_p]
lib.openmpt_module_read_interleaved_float_stereo.restype = ctypes.c_size_t
lib.openmpt_module_read_interleaved_float_stereo.argtypes = [
    ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t, ctypes.c_void_p]
for f in ("order", "pattern", "row"):
    getattr(lib, f"openmpt_module_get_current_{f}").restype = ctypes.c_int32
    getattr(lib, f"openmpt_module_get_current_{f}").argtypes = [ctypes.c_void_p]
lib.openmpt_module_set_repeat_count.argtypes = [ctypes.c_void_p, ctypes.c_int32]
lib.openmpt_module_get_pattern_num_rows.restype = ctypes.c_int32
lib.openmpt_module_get_pattern_num_rows.argtypes = [ctypes.c_void_p, ctypes.c_int32]
lib.openmpt_module_get_duration_seconds.restype = ctypes.c_double
lib.openmpt_module_get_duration_seconds.argtypes = [ctypes.c_void_p]
lib.openmpt_module_destroy.argtypes = [ctypes.c_void_p]


def modules(which):
    """The modules of a set: every second one in name order is held out."""
    names = sorted(os.listdir(MODULES_DIR))
    return names[1::2] if which == "held" else names[0::2]


def highlight(data):
    """(rows per beat, rows per measure) from an Impulse Tracker header, else (4, 16)."""
    if data[:4] == b"IMPM" and data[0x1E] > 0 and data[0x1F] >= data[0x1E]:
        return data[0x1E], data[0x1F]
    return 4, 16


def meter(rows, lengths, per_beat, per_bar):
    """(rows a beat, rows a bar): the highlight's, unless its beat is over SPEC's 180 BPM (1 %
    allowed for the rows' timing). Then the beat is every 3rd highlight where the bar's count
    of them divides by 3 (6/8's beat is three eighths; a fast 3/4 is counted one to a bar),
    else every 2nd; and a bar left with fewer than 3 beats is paired with the next (where every
    pattern holds whole pairs), so that 258 BPM in 4/4 is read as 129 BPM in 4/4, not 2/4. (A
    level under 180 is kept even where a slower one could be the beat: that choice is the
    tracker's to make.)"""
    steps = np.diff([f for f, r in rows if r % per_beat == 0])
    bpm = 60.0 * RATE / float(np.median(steps))
    beats = per_bar // per_beat
    k = 1
    while bpm / k > 180 * 1.01:
        k *= 3 if beats % (3 * k) == 0 else 2
    per_beat *= k
    if per_bar // per_beat < 3 and all(n % (2 * per_bar) == 0 for n in lengths):
        per_bar *= 2
    return per_beat, per_bar


def render(module, data, seconds):
    """The song (the module file's bytes) as (frames, 2) float32, played again until it lasts
    twice `seconds` as a game loops its music; the frame each row started on, as [(frame, row
    in its pattern)]; and the lengths in rows of the patterns played. None for a jingle (under
    JINGLE seconds played once), which is not rendered."""
    err = ctypes.c_int(0)
    mod = lib.openmpt_module_create_from_memory2(data, len(data), None, None, None, None,
                                                 ctypes.byref(err), None, None)
    if not mod:
        raise SystemExit(f"libopenmpt cannot load {module} (error {err.value})")
    try:
        once = lib.openmpt_module_get_duration_seconds(mod)
        if once < JINGLE:
            print(f"{module}: {once:.1f} s, a jingle: skipped", file=sys.stderr)
            return None
        repeats = int(2 * seconds // once)
        lib.openmpt_module_set_repeat_count(mod, repeats)
        # Room for what plays (a second over libopenmpt's estimate), LONGEST at most.
        plays = min(LONGEST, once * (repeats + 1) + 1)
        out = np.zeros((int(plays * RATE), 2), dtype=np.float32)
        rows, lengths, done = rows_while_rendering(mod, out)
        return out[:done], rows, lengths
    finally:
        lib.openmpt_module_destroy(mod)


def rows_while_rendering(mod, out):
    """Renders `mod` into `out`, looking at the row being played every BLOCK frames: the rows
    as `render` gives them, the patterns' lengths, and the frames rendered."""
    rows = []
    lengths = set()
    last = None
    done = 0
    while done + BLOCK <= len(out):
        got = lib.openmpt_module_read_interleaved_float_stereo(
            mod, RATE, BLOCK, out[done:].ctypes.data)
        if got == 0:
            break
        at = (lib.openmpt_module_get_current_order(mod), lib.openmpt_module_get_current_row(mod))
        if at != last:
            # The row began inside this block: its middle is at most 8 frames off.
            rows.append((done + BLOCK // 2, at[1]))
            pattern = lib.openmpt_module_get_current_pattern(mod)
            lengths.add(lib.openmpt_module_get_pattern_num_rows(mod, pattern))
            last = at
        done += got
    return rows, lengths, done


def make_clips(out_dir, module, seeds, seconds):
    with open(os.path.join(MODULES_DIR, module), "rb") as f:
        data = f.read()
    rendered = render(module, data, seconds)
    made = []
    if rendered is None:
        return made
    song, rows, lengths = rendered
    n = int(seconds * RATE)
    stem = os.path.splitext(module)[0].replace("_", "-")
    per_beat, per_bar = meter(rows, lengths, *highlight(data))
    beats = [(f, r % per_bar // per_beat + 1) for f, r in rows if r % per_beat == 0]
    for seed in seeds:
        rng = random.Random(f"{module}-{seed}")
        start = 0 if rng.random() < 0.5 else rng.randrange(0, len(song) - n + 1)
        x = song[start:start + n].astype(np.float64)
        x = x / (np.abs(x).max() + 1e-9)
        x, desc = degrade(rng, x, [])
        name = f"mod-{stem}-{seed:03d}"
        inside = [((f - start) / RATE, p) for f, p in beats if start <= f < start + n]
        if len(inside) < 8:
            print(f"{name}: {len(inside)} beats, too few to score: skipped", file=sys.stderr)
            continue
        bpm = 60.0 / float(np.median(np.diff([t for t, _ in inside])))
        write_wav(os.path.join(out_dir, f"{name}.wav"), x)
        lines = [f"# tracker {bpm:.1f}",
                 f"# module {module}; {per_beat} rows a beat, {per_bar} a bar; "
                 f"from {start / RATE:.1f} s; {' '.join(desc) or 'clean'}"]
        lines += [f"{t:.6f} {p}" for t, p in inside]
        with open(os.path.join(out_dir, f"{name}.beats"), "w") as f:
            f.write("\n".join(lines) + "\n")
        made.append(name)
        print(f"{name}: from {start / RATE:.1f} s, {' '.join(desc) or 'clean'}", file=sys.stderr)
    return made


def main():
    args = arguments(__doc__, "excerpts of each module")
    seeds = range(args.seed, args.seed + args.clips)
    made = sum(len(make_clips(args.out_dir, m, seeds, args.seconds)) for m in modules(args.set))
    if made == 0:
        raise SystemExit(f"no clip made from {MODULES_DIR}")


if __name__ == "__main__":
    main()
