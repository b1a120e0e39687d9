#!/usr/bin/env python3
"""h2corpus.py - a beat-tracking corpus of recorded drums with exact truth.

Drum patterns written here (swung hip-hop with ghost notes, breakbeats with the kick on the
"and", rock with fills, funk, house, drum & bass, 3+3+2 accents, hand percussion, triplet
shuffles) are played by Hydrogen's recorded, multi-layered kits (`h2cli`, packages hydrogen,
hydrogen-data, hydrogen-drumkits), then mixed under synthesized music beds with noise, a room
and lo-fi filtering. The grid is the song's, so the truth is exact: beat k sits at k * 60 / bpm
seconds after the song's first tick (checked against the render, see `first_onset`).

Usage: h2corpus.py OUT_DIR [--seed N] [--clips K] [--set tune|held] [--seconds S]

Writes NAME.wav (44.1 kHz, 16-bit stereo) and NAME.beats (`# genre tempo`, then `time position`
per beat, 1 = downbeat) for each clip: the format `vj-audio eval DIR` scores. Kits and seeds
are split: `--set tune` uses the tuning kits (seeds 1-99 by convention), `--set held` the
held-out kits (seeds 101 and up). Tune only on the first; score the second, never look at it.
Needs numpy (scripts/eval-beats.sh makes a venv with it).
"""
import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import wave
import xml.etree.ElementTree as ET

import numpy as np

RATE = 44100
TICKS_PER_BEAT = 48  # Hydrogen's resolution: a 4/4 bar is a 192-tick pattern
BAR = 4 * TICKS_PER_BEAT
STEP = TICKS_PER_BEAT // 4  # a 16th
KITS_DIR = "/usr/share/hydrogen/data/drumkits"

# Held-out kits are never rendered into a tuning clip.
HELD_KITS = ["The Black Pearl 1.0", "VariBreaks", "HardElectro1", "circAfrique v4"]
TUNE_KITS = [
    "GMRockKit", "Audiophob", "BJA_Pacific", "ColomboAcousticDrumkit", "ElectricEmpireKit",
    "ForzeeStereo", "Millo-Drums_v.1", "Millo_MultiLayered2", "Millo_MultiLayered3",
    "TR808EmulationKit", "rumpf_kit_z01_h2", "Gimme A Hand 1.0",
]
# Kits of hand percussion: their roles by name, since nothing in them is called kick or snare.
PERCUSSION_ROLES = {
    "Gimme A Hand 1.0": {"kick": "Cajon Thump", "snare": "Cajon Slap", "chh": "Maraca",
                         "ohh": "Tambourine", "perc": "Bongo Hi", "perc2": "Clave",
                         "tom": "Bongo Lo"},
    "circAfrique v4": {"kick": "Djembe1 Bass", "snare": "Djembe1 Slap", "chh": "Djembe2 Tone",
                       "ohh": "Djembe3 Slap", "perc": "Djembe4 Tone", "perc2": "Djembe5 Slap",
                       "tom": "Djembe2 Bass"},
}

# Roles found by instrument name in ordinary kits: the first name matching wins.
ROLE_WORDS = [
    ("kick", ["kick", "bassdrum", "bass drum"], []),
    ("snare", ["snare rock", "snare 1", "snare"], ["rim", "roll", "jazz"]),
    ("chh", ["closed", "hat cl", "hh cl", "hat 1 cl", "chh"], ["open", "pedal"]),
    ("ohh", ["open hh", "hat open", "hat op", "open hat", "hi hat opened", "hh 1 op", "open"], []),
    ("ride", ["ride"], ["bell", "crash"]),
    ("crash", ["crash", "cymbal"], []),
    ("clap", ["clap"], []),
    ("tom", ["tom"], []),
    ("stick", ["stick", "rim"], []),
    ("perc", ["cowbell", "shaker", "conga", "clave", "tambourine"], []),
]


def kit_instruments(kit):
    """The kit's instrument elements (namespace stripped) and their names."""
    root = ET.parse(os.path.join(KITS_DIR, kit, "drumkit.xml")).getroot()
    for el in root.iter():
        el.tag = el.tag.split("}", 1)[-1]
    instruments = root.find("instrumentList").findall("instrument")
    return root.findtext("name"), instruments


def kit_roles(kit, instruments):
    """role -> instrument id."""
    by_name = {i.findtext("name"): int(i.findtext("id")) for i in instruments}
    if kit in PERCUSSION_ROLES:
        roles = {role: by_name[name] for role, name in PERCUSSION_ROLES[kit].items()}
        words_list = []
    else:
        roles = {}
        words_list = ROLE_WORDS
    for role, words, nots in words_list:
        for name, ident in by_name.items():
            low = (name or "").lower()
            if any(w in low for w in words) and not any(n in low for n in nots):
                if role in ("chh", "ohh") and not any(h in low for h in ("hat", "hh")):
                    continue
                roles[role] = ident
                break
    for need in ("kick", "snare", "chh"):
        if need not in roles:
            raise SystemExit(f"kit {kit!r} has no {need} (names: {sorted(by_name)})")
    roles.setdefault("ohh", roles["chh"])
    roles.setdefault("ride", roles.get("crash", roles["chh"]))
    roles.setdefault("crash", roles["ride"])
    roles.setdefault("clap", roles["snare"])
    roles.setdefault("tom", roles["snare"])
    roles.setdefault("stick", roles["snare"])
    roles.setdefault("perc", roles["chh"])
    roles.setdefault("perc2", roles["perc"])
    return roles


# --- patterns: (tick in bar, role, velocity) per bar ---------------------------------------

def swing_tick(step, ratio):
    """The tick of 16th `step` (0-15) with the second 16th of each pair at `ratio` of the pair."""
    pair, odd = divmod(step, 2)
    return pair * 2 * STEP + (round(2 * STEP * ratio) if odd else 0)


def hits(steps, role, vel, ratio=0.5):
    return [(swing_tick(s, ratio), role, vel) for s in steps]


def hiphop(rng):
    ratio = rng.choice([0.58, 0.62, 0.66])
    kick = rng.choice([[0, 10], [0, 7, 10], [0, 3, 10], [0, 10, 11], [0, 8, 10, 15]])
    sixteenth_hats = rng.random() < 0.4
    def bar(i, last):
        notes = hits(kick, "kick", 0.9, ratio) + hits([4, 12], "snare", 0.95, ratio)
        hat = range(16) if sixteenth_hats else range(0, 16, 2)
        notes += [(swing_tick(s, ratio), "chh", 0.55 if s % 4 == 0 else 0.35) for s in hat]
        ghosts = rng.sample([3, 6, 7, 9, 11, 14, 15], rng.randint(1, 3))
        notes += hits(ghosts, "snare", rng.uniform(0.12, 0.28), ratio)
        if last:
            notes += hits([13, 14, 15], "snare", 0.6, ratio)
        return notes
    return bar, (80, 100), ratio


AMEN = [
    ([0, 2, 10, 11], [4, 7, 9, 12, 15]),
    ([0, 2, 10, 11], [4, 7, 9, 12, 15]),
    ([0, 2, 10], [4, 7, 9, 14]),
    ([2, 3, 10], [1, 4, 7, 9, 14]),
]
FUNKY = [([0, 3, 6, 10, 13], [4, 12]), ([0, 3, 6, 10], [4, 12, 15])]


def breakbeat(rng):
    amen = rng.random() < 0.6
    cycle = AMEN if amen else FUNKY
    def bar(i, last):
        kick, snare = cycle[i % len(cycle)]
        notes = hits(kick, "kick", 0.9) + hits(snare, "snare", 0.85)
        notes += [(s * STEP, "ride" if amen else "chh", 0.5 if s % 4 == 0 else 0.4)
                  for s in range(0, 16, 2)]
        if not amen:
            notes += hits([7, 9], "snare", 0.2)
        if i % 8 == 0 and amen:
            notes.append((0, "crash", 0.7))
        return notes
    return bar, ((130, 175) if amen else (95, 115)), 0.5


def rock(rng):
    kick = rng.choice([[0, 8], [0, 8, 10], [0, 6, 8], [0, 3, 8]])
    ride = rng.random() < 0.3
    def bar(i, last):
        notes = hits(kick, "kick", 0.9) + hits([4, 12], "snare", 0.95)
        notes += [(s * STEP, "ride" if ride else "chh", 0.5) for s in range(0, 16, 2)]
        if i % 4 == 0:
            notes.append((0, "crash", 0.8))
        if last:
            notes = [n for n in notes if n[0] < 12 * STEP]
            notes += hits([12, 13, 14, 15], "tom", 0.8) + hits([12, 14], "snare", 0.7)
        return notes
    return bar, (90, 150), 0.5


def funk(rng):
    ratio = rng.choice([0.5, 0.54, 0.56])
    kick = rng.choice([[0, 3, 10], [0, 6, 10, 13], [0, 3, 6, 11]])
    def bar(i, last):
        notes = hits(kick, "kick", 0.9, ratio) + hits([4, 12], "snare", 0.95, ratio)
        notes += [(swing_tick(s, ratio), "chh", 0.6 if s % 2 == 0 else 0.3)
                  for s in range(16) if s != 14]
        notes += hits([14], "ohh", 0.6, ratio) + hits([7, 9, 15], "snare", 0.18, ratio)
        return notes
    return bar, (92, 115), ratio


def house(rng):
    intro = rng.choice([0, 0, 2, 4])  # bars of hats and claps before the kick comes in
    def bar(i, last):
        notes = hits([4, 12], "clap", 0.85) + hits([2, 6, 10, 14], "ohh", 0.5)
        notes += [(s * STEP, "chh", 0.25) for s in range(16) if s % 4 != 2]
        if i >= intro:
            notes += hits([0, 4, 8, 12], "kick", 0.95)
        return notes
    return bar, (118, 130), 0.5


def dnb(rng):
    kick = rng.choice([[0, 10], [0, 10, 11], [0, 6, 10]])
    def bar(i, last):
        notes = hits(kick, "kick", 0.95) + hits([4, 12], "snare", 0.95)
        notes += [(s * STEP, "chh", 0.45) for s in range(0, 16, 2)]
        notes += hits(rng.sample([3, 7, 9, 14, 15], 2), "snare", 0.2)
        return notes
    return bar, (160, 178), 0.5


def odd(rng):
    # 3+3+2: the accents that make a tracker hear a dotted level (a 3:4 tempo error).
    def bar(i, last):
        notes = hits([0, 6, 8, 14], "kick", 0.9) + hits([3, 11], "snare", 0.8)
        notes += hits([4, 12], "clap", 0.6)
        notes += [(s * STEP, "chh", 0.5 if s in (0, 3, 6, 8, 11, 14) else 0.25) for s in range(16)]
        return notes
    return bar, (88, 110), 0.5


def percussion(rng):
    def bar(i, last):
        notes = hits([0, 3, 8, 11], "kick", 0.9) + hits([4, 12], "snare", 0.85)
        notes += hits([6, 14], "snare", 0.45) + hits([2, 10], "tom", 0.6)
        notes += [(s * STEP, "chh", 0.45 if s % 4 == 0 else 0.25) for s in range(16)]
        notes += hits([0, 3, 6, 10, 12], "perc2", 0.5)
        return notes
    return bar, (85, 110), 0.5


def shuffle(rng):
    # Triplet feel: three 8ths per beat (16 ticks each); the beat is still the quarter.
    trip = TICKS_PER_BEAT // 3
    def bar(i, last):
        notes = [(b * TICKS_PER_BEAT, "kick", 0.9) for b in (0, 2)]
        notes += [(2 * TICKS_PER_BEAT + 2 * trip, "kick", 0.7)]
        notes += [(b * TICKS_PER_BEAT, "snare", 0.9) for b in (1, 3)]
        notes += [(b * TICKS_PER_BEAT + t * trip, "ride" if i % 8 < 4 else "chh",
                   0.5 if t == 0 else 0.3) for b in range(4) for t in (0, 2)]
        return notes
    return bar, (80, 120), 0.5


GENRES = {"hiphop": hiphop, "breakbeat": breakbeat, "rock": rock, "funk": funk,
          "house": house, "dnb": dnb, "odd": odd, "percussion": percussion, "shuffle": shuffle}
PERCUSSION_KIT_GENRES = ("percussion", "odd", "hiphop")


# --- the song -----------------------------------------------------------------------------

def song_xml(kit, instruments, bpm, bars, notes_per_bar):
    """A Hydrogen song: one pattern per bar, played in order once, no humanizing or swing."""
    song = ET.Element("song")
    for tag, text in [("version", "1.2.0"), ("bpm", f"{bpm:.3f}"), ("volume", "0.7"),
                      ("metronomeVolume", "0"), ("name", "corpus"), ("author", "h2corpus"),
                      ("notes", ""), ("license", "GPL"), ("loopEnabled", "false"),
                      ("patternModeMode", "true"), ("mode", "song"),
                      ("humanize_time", "0"), ("humanize_velocity", "0"),
                      ("swing_factor", "0")]:
        ET.SubElement(song, tag).text = text
    comps = ET.SubElement(song, "componentList")
    comp = ET.SubElement(comps, "drumkitComponent")
    for tag, text in [("id", "0"), ("name", "Main"), ("volume", "1")]:
        ET.SubElement(comp, tag).text = text
    ilist = ET.SubElement(song, "instrumentList")
    for inst in instruments:
        copy = ET.fromstring(ET.tostring(inst))
        # Older kits (drumkit.xml before 0.9.7) hold their layers directly; a song wants them
        # in a component.
        layers = copy.findall("layer")
        if layers:
            comp = ET.SubElement(copy, "instrumentComponent")
            ET.SubElement(comp, "component_id").text = "0"
            ET.SubElement(comp, "gain").text = "1"
            for layer in layers:
                copy.remove(layer)
                comp.append(layer)
        ET.SubElement(copy, "drumkit").text = kit
        ET.SubElement(copy, "drumkitLookup").text = "2"
        ilist.append(copy)
    plist = ET.SubElement(song, "patternList")
    seq = ET.SubElement(song, "patternSequence")
    for b in range(bars):
        pat = ET.SubElement(plist, "pattern")
        for tag, text in [("name", f"bar{b}"), ("category", ""), ("size", str(BAR)),
                          ("denominator", "4"), ("info", "")]:
            ET.SubElement(pat, tag).text = text
        nl = ET.SubElement(pat, "noteList")
        for tick, inst, vel in notes_per_bar[b]:
            n = ET.SubElement(nl, "note")
            for tag, text in [("position", str(tick)), ("leadlag", "0"),
                              ("velocity", f"{vel:.3f}"), ("pan", "0"), ("pitch", "0"),
                              ("probability", "1"), ("key", "C0"), ("length", "-1"),
                              ("instrument", str(inst)), ("note_off", "false")]:
                ET.SubElement(n, tag).text = text
        g = ET.SubElement(seq, "group")
        ET.SubElement(g, "patternID").text = f"bar{b}"
    ET.SubElement(song, "virtualPatternList")
    ET.SubElement(song, "BPMTimeLine")
    ET.SubElement(song, "timeLineTag")
    return ET.tostring(song, encoding="unicode")


ATTEMPTS = 8


def render(song_text, workdir):
    path = os.path.join(workdir, "song.h2song")
    out = os.path.join(workdir, "drums.wav")
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n' + song_text)
    # h2cli now and then dies of a segfault on a song it renders fine the next time (22 times
    # in 108 clips on a fresh machine, so three tries in a row failed about once in 180 clips):
    # tried eight times before the corpus gives up.
    for attempt in range(ATTEMPTS):
        done = subprocess.run(["h2cli", "-s", path, "-o", out, "-r", str(RATE), "-b", "16",
                               "-d", "alsa"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=dict(os.environ, HOME=workdir))
        if done.returncode == 0:
            return read_wav(out)
        print(f"h2cli failed ({done.returncode}), attempt {attempt + 1} of {ATTEMPTS}",
              file=sys.stderr)
    done.check_returncode()


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == RATE, f"{path}: rate {w.getframerate()}"
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        return data.reshape(-1, w.getnchannels()) / 32768.0


def first_onset(x):
    """The first sample above -40 dBFS of the peak (where the song's tick 0 sounds)."""
    env = np.abs(x).max(axis=1)
    return int(np.argmax(env > env.max() * 0.01))


# --- the bed and the room -------------------------------------------------------------------

PROGRESSIONS = [[0, 5, 3, 4], [0, 3, 4, 4], [0, 8, 3, 10], [0, 0, 5, 7], [9, 5, 0, 7]]


def bed(rng, n, bpm, t0, bars):
    """A bass and a pad under the drums: a chord per bar (some pushed an 8th early)."""
    t = np.arange(n) / RATE + t0
    beat = 60.0 / bpm
    out = np.zeros(n)
    prog = rng.choice(PROGRESSIONS)
    key = rng.randint(0, 11)
    push = rng.random() < 0.3
    for b in range(bars):
        start = b * 4 * beat - (beat / 2 if push and b > 0 else 0)
        end = (b + 1) * 4 * beat - (beat / 2 if push else 0)
        sel = (t >= start) & (t < end)
        if not sel.any():
            continue
        root = 36 + key + prog[b % len(prog)]
        tt = t[sel] - start
        env = np.minimum(1, tt / 0.05) * np.exp(-tt / (4 * beat))
        f_bass = 440 * 2 ** ((root - 69) / 12)
        out[sel] += 0.5 * env * np.sin(2 * math.pi * f_bass * tt)
        pad_env = np.minimum(1, tt / 0.3)
        for interval in (12, 16 if prog[b % len(prog)] in (0, 5, 7) else 15, 19):
            f = 440 * 2 ** ((root + interval - 69) / 12)
            out[sel] += 0.12 * pad_env * (np.sin(2 * math.pi * f * tt)
                                          + 0.3 * np.sin(4 * math.pi * f * tt))
    return out


def lowpass(x, cutoff, taps=101):
    """A windowed-sinc FIR low-pass (the dull top of a cheap sampler or a worn tape)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff / RATE * n) * np.hamming(taps)
    h /= h.sum()
    return np.stack([np.convolve(x[:, c], h, mode="same") for c in range(x.shape[1])], axis=1)


def room(rng, x):
    length = int(rng.uniform(0.2, 0.8) * RATE)
    ir = np.random.default_rng(rng.randint(0, 2**31)).standard_normal((length, 2))
    ir *= np.exp(-np.arange(length) / (length / 5))[:, None] * 0.02
    size = 1 << (len(x) + length).bit_length()
    wet = np.fft.irfft(np.fft.rfft(x, size, axis=0) * np.fft.rfft(ir, size, axis=0), size,
                       axis=0)[:len(x)]
    return x + rng.uniform(0.1, 0.35) * wet / (np.abs(wet).max() + 1e-9) * np.abs(x).max()


def mix(rng, drums, bpm, t0, bars, seconds):
    n = int(seconds * RATE)
    x = drums[:n]
    if len(x) < n:
        x = np.vstack([x, np.zeros((n - len(x), 2))])
    x = x / (np.abs(x).max() + 1e-9)
    desc = []
    if rng.random() < 0.6:
        level = 10 ** (-rng.uniform(4, 12) / 20)
        b = bed(rng, n, bpm, t0, bars)
        x = x + level * b[:, None] / (np.abs(b).max() + 1e-9)
        desc.append("bed")
    return degrade(rng, x, desc)


def degrade(rng, x, desc):
    """A room, lo-fi filtering and noise, each by chance, then a soft clip; `desc` gets their
    names. (The tracker-module corpus, scripts/modcorpus.py, uses it too.)"""
    if rng.random() < 0.5:
        x = room(rng, x)
        desc.append("room")
    if rng.random() < 0.35:
        x = lowpass(x, rng.uniform(2500, 6000))
        bits = rng.choice([8, 10, 12])
        x = np.round(x / np.abs(x).max() * 2 ** (bits - 1)) / 2 ** (bits - 1)
        desc.append("lofi")
    if rng.random() < 0.7:
        snr = rng.uniform(18, 40)
        rms = math.sqrt(float(np.mean(x ** 2)))
        x = x + np.random.default_rng(rng.randint(0, 2**31)).standard_normal(x.shape) \
            * rms * 10 ** (-snr / 20)
        desc.append(f"noise{snr:.0f}")
    x = np.tanh(1.5 * x / (np.abs(x).max() + 1e-9)) / math.tanh(1.5) * 0.9
    return x, desc


def write_wav(path, x):
    data = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())


_LEADS = {}


def kick_lead(kit, instruments, roles, workdir):
    """Seconds from a kick's note to its attack in this kit's render (cached per kit)."""
    if kit not in _LEADS:
        x = render(song_xml(kit, instruments, 120, 1, [[(0, roles["kick"], 0.9)]]), workdir)
        _LEADS[kit] = first_onset(x) / RATE
    return _LEADS[kit]


# --- one clip -------------------------------------------------------------------------------

def make_clip(out_dir, name, genre, kit, seed, seconds, workdir):
    rng = random.Random(f"{name}-{seed}")
    _, instruments = kit_instruments(kit)
    roles = kit_roles(kit, instruments)
    bar_fn, (lo, hi), _ratio = GENRES[genre](rng)
    bpm = round(rng.uniform(lo, hi), 1)
    beat = 60.0 / bpm
    bar_s = 4 * beat
    # Half the clips are loops cut exactly to the bar; the others start anywhere inside one.
    t0 = 0.0 if rng.random() < 0.5 else rng.uniform(0.1, 0.95) * bar_s
    bars = int(math.ceil((seconds + t0) / bar_s)) + 1
    per_bar = []
    for b in range(bars):
        last = b % 4 == 3
        per_bar.append([(max(0, min(BAR - 1, t)), roles[r], v) for t, r, v in bar_fn(b, last)])
    drums = render(song_xml(kit, instruments, bpm, bars, per_bar), workdir)
    # What a listener hears as the beat is the kick's attack: the grid plus the leading silence
    # of the kit's kick sample (0.2-17 ms; measured by rendering one kick alone).
    lead = kick_lead(kit, instruments, roles, workdir)
    drums = drums[int(round(t0 * RATE)):]
    x, desc = mix(rng, drums, bpm, t0, bars, seconds)
    write_wav(os.path.join(out_dir, f"{name}.wav"), x)
    k0 = math.ceil(t0 / beat - 1e-9)
    lines = [f"# {genre} {bpm}",
             f"# kit {kit}; {' '.join(desc) or 'dry'}; starts {t0:.3f} s into a bar; "
             f"kick onset {1000 * lead:.1f} ms after its note"]
    k = k0
    while k * beat - t0 + lead < seconds:
        lines.append(f"{k * beat - t0 + lead:.6f} {k % 4 + 1}")
        k += 1
    with open(os.path.join(out_dir, f"{name}.beats"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return bpm, desc


def arguments(doc, clips):
    """The command line both corpus scripts take (scripts/modcorpus.py too); makes OUT_DIR."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clips", type=int, default=1, help=clips)
    ap.add_argument("--set", choices=["tune", "held"], default="tune")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    return args


def main():
    args = arguments(__doc__, "clips of each genre")
    kits = HELD_KITS if args.set == "held" else TUNE_KITS
    perc_kits = [k for k in kits if k in PERCUSSION_ROLES]
    drum_kits = [k for k in kits if k not in PERCUSSION_ROLES]
    with tempfile.TemporaryDirectory() as workdir:
        for g in GENRES:
            for c in range(args.clips):
                seed = args.seed + c
                rng = random.Random(f"kit-{g}-{seed}")
                pool = perc_kits if g == "percussion" else drum_kits
                if g in PERCUSSION_KIT_GENRES and g != "percussion" and rng.random() < 0.3:
                    pool = perc_kits or pool
                kit = rng.choice(pool)
                name = f"h2-{g}-{seed:03d}"
                bpm, desc = make_clip(args.out_dir, name, g, kit, seed, args.seconds, workdir)
                print(f"{name}: {bpm} BPM, {kit}, {' '.join(desc) or 'dry'}", file=sys.stderr)


if __name__ == "__main__":
    main()
