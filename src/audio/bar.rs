//! Downbeats: which beat of the bar is the "1", estimated from the audio (not counted from the
//! first beat). Each beat gets a downbeat score as the first of a bar: the change of harmony
//! (the chroma of the bar from it against the bar before, in the bass and above it), and the
//! drums of the bar from it read against a bar's pattern (the kick and snare at each sixth of
//! each of its beats, weighed by `TEMPLATE`, fitted to the tuning corpora). Each of the bar's
//! `beats_per_bar` phases keeps a running mean of the scores of the beats it would call "1".
//! The best phase is the bar's, with a confidence, and a little hysteresis.

use super::spectrum::Spectrum;

/// Bars of memory of the running means (their weight halves in about 4 bars).
const BAR_DECAY: f32 = 0.85;
/// Weights of the evidence: the change of harmony above the bass and in it, and the drums of
/// the bar: the kick and the snare (against their running means) at each sixth of each of its
/// four beats (sixths hold the 16ths and the triplets alike), the first row the "1"'s. Each
/// drum's rows sum to 0: a drum as loud on every place tells nothing. Fitted by
/// `scripts/bar-template.py BIN --fit DIR...` (softmax over the four beats of a bar, on
/// recorded drums h2 seeds 1, 5, 13, 17, tracker songs seed 1 and synthetic seed 1; tested on
/// h2 seed 9 and synthetic seed 5), scaled to keep W_HARMONY at the 2.0 it was tuned to. A beat
/// at a time (a kick on it +0.3, a snare -0.3), recorded hand percussion with a kick on 1 and 3
/// was counted from the "3" (h2 tuning seeds 1 and 13: 4 of 8 clips); downbeat F on the tuning
/// sets (recorded 1 / 5 / 13 / 17, tracker 1, synthetic 1) went from 0.836 / 0.757 / 0.692 /
/// 0.699 / 0.697 / 0.895 to 0.899 / 0.798 / 0.820 / 0.766 / 0.837 / 0.916. Quarters of a beat
/// (16ths only), at the hysteresis of then (0.1), did less than sixths: 0.888 / 0.757 /
/// 0.798 / 0.739 / 0.811 / 0.920 against 0.908 / 0.795 / 0.800 / 0.753 / 0.844 / 0.897, and
/// shuffles fell.
const W_HARMONY: f32 = 2.00;
const W_BASS: f32 = 1.31;
const TEMPLATE: [[[f32; 2]; SUBS]; 4] = [
    [
        [0.34, -0.04],
        [0.33, -0.39],
        [0.04, -0.04],
        [-0.07, -0.12],
        [-0.21, 0.25],
        [0.17, 0.02],
    ],
    [
        [-0.27, 0.06],
        [-0.06, -0.21],
        [0.07, -0.27],
        [0.00, 0.12],
        [0.05, 0.40],
        [-0.06, 0.03],
    ],
    [
        [-0.04, -0.16],
        [-0.06, -0.03],
        [-0.32, 0.23],
        [0.07, 0.08],
        [0.28, -0.32],
        [-0.00, -0.03],
    ],
    [
        [-0.13, 0.22],
        [-0.26, 0.39],
        [0.08, 0.27],
        [-0.05, -0.01],
        [0.06, -0.34],
        [0.02, -0.12],
    ],
];
/// A new phase takes over when it scores this share of the score spread above the current.
/// Tuning sets, downbeat F (recorded 1 / 5 / 13 / 17, tracker 1, synthetic 1) at 0.1: 0.908 /
/// 0.795 / 0.800 / 0.753 / 0.844 / 0.897; at 0.02: 0.909 / 0.800 / 0.830 / 0.772 / 0.841 /
/// 0.907; at 0 about the same, at 0.2 lower (0.861 on recorded 1).
const HYSTERESIS: f32 = 0.02;
/// Music that begins from silence on a beat begins on a "1" (a loop cut to the bar, a song's
/// first bar): that phase starts this far ahead, in units of a beat's score, and keeps it
/// until the next silence, so only the bar's own evidence moves the "1" off it. Tuning sets,
/// downbeat F at 0 / 0.1 / 0.2: recorded drums seed 13 0.668 / 0.715 / 0.759, seed 5 0.636 /
/// 0.710 / 0.711; synthetic seed 1 (cut anywhere in a bar, a few clips just on a beat that is
/// not the "1") 0.895 / 0.893 / 0.870.
const START_PRIOR: f32 = 0.1;
/// How near a beat the first sound must be to count as starting on it (seconds): the beat may
/// come this long after it began (a kick sample's silent lead, the beat's own error) and a
/// little before (the sound is heard from the start of the hop it began in). A clip cut a few
/// hundredths of a second after a beat did not start on it. And how many beats back from the
/// first scored one the start is looked for.
const START_TOLERANCE: f64 = 0.04;
const START_EARLY: f64 = 0.015;
const START_BEATS: f64 = 16.0;
/// A beat's span opens this long before it (seconds): the sound on the beat is heard from
/// there.
const SPAN_LEAD: f64 = 0.04;
/// The places in a beat at which its kick and snare are read (sixths of a beat: the 16ths
/// and the triplets fall near one), and the hops of evidence kept to read them from (about
/// 6 s).
pub const SUBS: usize = 6;
const RECENT_HOPS: usize = 512;
/// A beat's drums as a bar's beat: the kick and snare flux at each sixth of it (the largest
/// in a twelfth of a beat either side), each against its running mean, at most 3.
pub type Pattern = [[f32; 2]; SUBS];

/// Chroma: energy per pitch class, in the bass (55-250 Hz) and above it (250-2000 Hz).
pub struct Chroma {
    /// (bin, pitch class, bass?) for every bin that counts.
    bins: Vec<(u16, u8, bool)>,
    pub bass: [f32; 12],
    pub mid: [f32; 12],
}

impl Chroma {
    pub fn new(spectrum: &Spectrum) -> Self {
        let lo = spectrum.hz_bin(55.0).max(1);
        let hi = spectrum.hz_bin(2000.0);
        let bins = (lo..hi)
            .map(|k| {
                let hz = spectrum.bin_hz(k);
                let pc = (12.0 * (hz / 440.0).log2() + 69.0).round() as i32;
                (k as u16, pc.rem_euclid(12) as u8, hz < 250.0)
            })
            .collect();
        Chroma {
            bins,
            bass: [0.0; 12],
            mid: [0.0; 12],
        }
    }

    pub fn process(&mut self, spectrum: &Spectrum) {
        let mags = spectrum.magnitudes();
        self.bass = [0.0; 12];
        self.mid = [0.0; 12];
        for &(k, pc, bass) in &self.bins {
            let m = mags[k as usize];
            if bass {
                self.bass[pc as usize] += m * m;
            } else {
                self.mid[pc as usize] += m * m;
            }
        }
    }
}

/// 1 − cosine similarity of two chroma vectors: 0 = the same harmony, 1 = nothing in common.
fn change(a: &[f32; 12], b: &[f32; 12]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 1e-12 || bb <= 1e-12 {
        return 0.0;
    }
    (1.0 - ab / (aa * bb).sqrt()).clamp(0.0, 1.0)
}

/// One beat's evidence, gathered while its audio is analysed.
#[derive(Debug, Clone, Copy)]
struct BeatSpan {
    number: i64,
    start: f64,
    bass: [f32; 12],
    mid: [f32; 12],
    pattern: Pattern,
}

impl BeatSpan {
    fn new(number: i64, start: f64) -> Self {
        BeatSpan {
            number,
            start,
            bass: [0.0; 12],
            mid: [0.0; 12],
            pattern: [[0.0; 2]; SUBS],
        }
    }
}

/// What a beat's score as a "1" is made of: the change of harmony above the bass and in it
/// from the bar before it to the bar from it on, and its drums' pattern.
#[derive(Debug, Clone, Copy)]
pub struct BeatEvidence {
    pub number: i64,
    pub time: f64,
    pub harmony: f32,
    pub bass: f32,
    pub pattern: Pattern,
}

pub struct BarTracker {
    beats_per_bar: usize,
    /// Running mean downbeat score of each phase (beat number mod beats_per_bar).
    scores: Vec<f32>,
    phase: usize,
    confidence: f32,
    /// Beats announced (number, time) whose audio has not all been seen yet, and the last
    /// number announced.
    pending: std::collections::VecDeque<(i64, f64)>,
    announced: Option<i64>,
    /// The beat whose span the analysis is in, and the last two bars of closed ones.
    open: Option<BeatSpan>,
    spans: std::collections::VecDeque<BeatSpan>,
    /// The kick and snare flux of the last hops, where their sound is (seconds), to read
    /// each beat's pattern from once its span is closed.
    recent: std::collections::VecDeque<(f64, [f32; 2])>,
    /// Running means of the kick and snare flux on the beat, to weigh the pattern as shares.
    drum_means: [f32; 2],
    /// The last beat scored: its evidence (for fitting the weights: `analyze --bar-evidence`).
    last_scored: Option<BeatEvidence>,
    /// Beats scored since the start (the confidence grows with them).
    scored: u32,
    /// A phase the user set (`resync`): kept until released.
    forced: Option<usize>,
    /// When the music began after silence, while the grid is carried back to it (the first
    /// `START_BEATS` beats).
    sound_from: Option<f64>,
    /// The phase the music began on by the grids seen so far, and the sum and count of the
    /// times of its beat after the first sound (none: no grid yet).
    start_offsets: (usize, f64, u32),
}

/// The share of beats on the right place in the bar, against the tracker's own margin ×
/// evidence: (raw, share) knots, linear between. Fitted by pool-adjacent-violators on two
/// tuning corpora of recordings (`make eval-beats`: recorded drums, h2 seed 1, and tracker
/// modules, seed 1; 2 885 beats with a bar): `scripts/downbeat-calibration.py BIN --fit DIR...`
/// prints it. Raw 0 — no bar heard yet — stays 0, and nothing reaches 1. The synthetic corpus
/// is better than this (99 % right at 0.8 and over): the map follows the recordings. The first
/// fit, on recorded drums alone, said 0.96 from raw 0.52; the tracker corpus's songs were right
/// 84 % of the time there. Kept when the bar's drums joined the score (session 30): a refit on
/// those two corpora, or on five, gave more beats 0.8 and over but only 89.2 % or 88.0 % of
/// them right on recorded seed 17, where this table gives 92.5 % (and 90.6-97.2 % on the
/// other tuning sets).
const CALIBRATION: [(f32, f32); 12] = [
    (0.0, 0.0),
    (0.07, 0.46),
    (0.17, 0.56),
    (0.22, 0.56),
    (0.26, 0.59),
    (0.30, 0.67),
    (0.33, 0.70),
    (0.36, 0.79),
    (0.42, 0.83),
    (0.53, 0.84),
    (0.68, 0.84),
    (0.75, 0.99),
];

/// `raw` (margin × evidence) as the share of beats on the right place in the bar.
fn calibrated(raw: f32) -> f32 {
    let raw = raw.clamp(0.0, 1.0);
    let (mut lo, mut out) = (CALIBRATION[0], CALIBRATION[CALIBRATION.len() - 1].1);
    for &hi in &CALIBRATION[1..] {
        if raw <= hi.0 {
            out = lo.1 + (hi.1 - lo.1) * (raw - lo.0) / (hi.0 - lo.0);
            break;
        }
        lo = hi;
    }
    out
}

impl BarTracker {
    pub fn new(beats_per_bar: u32) -> Self {
        let n = beats_per_bar.max(1) as usize;
        BarTracker {
            beats_per_bar: n,
            scores: vec![0.0; n],
            phase: 0,
            confidence: 0.0,
            pending: std::collections::VecDeque::new(),
            announced: None,
            open: None,
            spans: std::collections::VecDeque::new(),
            recent: std::collections::VecDeque::with_capacity(RECENT_HOPS),
            drum_means: [0.0; 2],
            last_scored: None,
            scored: 0,
            forced: None,
            sound_from: None,
            start_offsets: (0, 0.0, 0),
        }
    }

    /// The music began at `time` (seconds of stream time) after silence or at the stream's
    /// start: a new song, whose "1" is looked for where it began.
    pub fn sound_starts(&mut self, time: f64) {
        self.sound_from = Some(time);
        self.start_offsets = (0, 0.0, 0);
    }

    /// The phase of the beat the music began on: the grid of the last two bars, when its
    /// beats are evenly spaced, carried back to the first sound. Looked at again with each
    /// beat for the first `START_BEATS` (a tracker may settle on another level of the tempo
    /// first), then kept.
    fn place_start(&mut self) {
        let Some(from) = self.sound_from else {
            return;
        };
        let (Some(first), Some(last)) = (self.spans.front(), self.spans.back()) else {
            return;
        };
        let period = (last.start - first.start) / (last.number - first.number).max(1) as f64;
        let back = (first.start - from) / period;
        if !(period > 0.0 && (0.0..=START_BEATS).contains(&back)) {
            self.sound_from = None;
            return;
        }
        let even = self
            .spans
            .iter()
            .zip(self.spans.iter().skip(1))
            .all(|(a, b)| (b.start - a.start - period).abs() <= START_TOLERANCE);
        if !even {
            return;
        }
        // The beat's sound against the first sound, averaged over the windows that agree on
        // which beat it is (one window's period is a few milliseconds off over 16 beats).
        let k = back.round();
        let n = self.beats_per_bar as i64;
        let phase = (first.number - k as i64).rem_euclid(n) as usize;
        let offset = (back - k) * period;
        let (sum, count) = match self.start_offsets {
            (p, sum, count) if p == phase => (sum + offset, count + 1),
            _ => (offset, 1),
        };
        self.start_offsets = (phase, sum, count);
    }

    /// The phase the music began on, if its beat sounded from `START_EARLY` before to
    /// `START_TOLERANCE` after the first sound.
    fn start_phase(&self) -> Option<usize> {
        let (phase, sum, count) = self.start_offsets;
        (count > 0 && (-START_EARLY..=START_TOLERANCE).contains(&(sum / count as f64)))
            .then_some(phase)
    }

    /// A phase's running score with the head start of the phase the music began on.
    fn score(&self, r: usize) -> f32 {
        self.scores[r]
            + if self.start_phase() == Some(r) {
                START_PRIOR
            } else {
                0.0
            }
    }

    /// A beat was (or will be) placed at `time` seconds, as beat `number` of the stream.
    pub fn announce(&mut self, number: i64, time: f64) {
        if self.announced.is_some_and(|n| n >= number) {
            return;
        }
        self.announced = Some(number);
        self.pending.push_back((number, time));
        if self.pending.len() > 8 {
            self.pending.pop_front();
        }
    }

    /// One hop's evidence: its chroma centred at `chroma_at`, and its kick and snare flux at
    /// `onset_at` (both seconds of stream time, where the sound is).
    pub fn observe(
        &mut self,
        chroma: &Chroma,
        chroma_at: f64,
        kick: f32,
        snare: f32,
        onset_at: f64,
    ) {
        if self.recent.len() == RECENT_HOPS {
            self.recent.pop_front();
        }
        self.recent.push_back((onset_at, [kick, snare]));
        // A beat's span opens when the analysis reaches it.
        while let Some(&(number, start)) = self.pending.front() {
            if chroma_at + SPAN_LEAD < start {
                break;
            }
            self.pending.pop_front();
            if let Some(done) = self.open.take() {
                self.close(done, start);
            }
            self.open = Some(BeatSpan::new(number, start));
        }
        let Some(span) = self.open.as_mut() else {
            return;
        };
        if chroma_at >= span.start {
            for (a, b) in span.bass.iter_mut().zip(&chroma.bass) {
                *a += b;
            }
            for (a, b) in span.mid.iter_mut().zip(&chroma.mid) {
                *a += b;
            }
        }
    }

    /// The kick and snare of the beat from `start` to `next`, at each of its SUBS places,
    /// against their running means on the beat.
    fn pattern(&mut self, start: f64, next: f64) -> Pattern {
        let place = (next - start) / SUBS as f64;
        let mut pattern = [[0.0f32; 2]; SUBS];
        // The ring is in time order: read back to half a place before the beat, no further.
        let from = start - 0.5 * place;
        let beat = self.recent.iter().rev().take_while(|(at, _)| *at >= from);
        for &(at, flux) in beat {
            let q = ((at - start) / place + 0.5).floor();
            if (0.0..SUBS as f64).contains(&q) {
                let p = &mut pattern[q as usize];
                for (x, f) in p.iter_mut().zip(flux) {
                    *x = x.max(f);
                }
            }
        }
        for (band, mean) in self.drum_means.iter_mut().enumerate() {
            // The first beat sets the mean: from 0, the first beats would all read loud.
            if *mean <= 1e-12 {
                *mean = pattern[0][band];
            }
            *mean += (pattern[0][band] - *mean) * 0.1;
            let mean = *mean;
            for p in &mut pattern {
                p[band] = if mean <= 1e-12 {
                    0.0
                } else {
                    (p[band] / mean).min(3.0)
                };
            }
        }
        pattern
    }

    /// A beat's span is complete (the next begins at `next`). Once a bar of beats after beat
    /// `n` is in too, `n` is scored: its harmony is the change from the bar before it to the
    /// bar from it on (largest where both windows are whole bars, i.e. when `n` is a "1"), and
    /// the drums of the bar from it on are read against a bar's pattern (`TEMPLATE`).
    fn close(&mut self, mut span: BeatSpan, next: f64) {
        span.pattern = self.pattern(span.start, next);
        if self
            .spans
            .back()
            .is_some_and(|b: &BeatSpan| span.number != b.number + 1)
        {
            self.spans.clear();
        }
        self.spans.push_back(span);
        let n = self.beats_per_bar;
        if self.spans.len() > 2 * n {
            self.spans.pop_front();
        }
        if self.spans.len() < 2 * n {
            return;
        }
        self.place_start();
        let sum = |spans: &mut dyn Iterator<Item = &BeatSpan>| {
            let (mut bass, mut mid) = ([0.0f32; 12], [0.0f32; 12]);
            for s in spans {
                for (a, b) in bass.iter_mut().zip(&s.bass) {
                    *a += b;
                }
                for (a, b) in mid.iter_mut().zip(&s.mid) {
                    *a += b;
                }
            }
            (bass, mid)
        };
        let (bass0, mid0) = sum(&mut self.spans.iter().take(n));
        let (bass1, mid1) = sum(&mut self.spans.iter().skip(n));
        let beat = self.spans[n];
        let evidence = BeatEvidence {
            number: beat.number,
            time: beat.start,
            harmony: change(&mid1, &mid0),
            bass: change(&bass1, &bass0),
            pattern: beat.pattern,
        };
        // Each drum against its level over the bar: a drum as loud on every place of it tells
        // no beat from another (each drum's weights in the template sum to about 0 for the
        // same reason).
        let bar = || {
            TEMPLATE
                .iter()
                .zip(self.spans.iter().skip(n))
                .flat_map(|(t, s)| t.iter().zip(&s.pattern))
        };
        let (mut level, mut count) = ([0.0f32; 2], 0.0f32);
        for (_, x) in bar() {
            level.iter_mut().zip(x).for_each(|(l, x)| *l += x);
            count += 1.0;
        }
        let drums: f32 = bar()
            .flat_map(|(w, x)| w.iter().zip(x).zip(level))
            .map(|((w, x), l)| w * (x - l / count))
            .sum();
        let score = W_HARMONY * evidence.harmony + W_BASS * evidence.bass + drums;
        self.last_scored = Some(evidence);
        let r = beat.number.rem_euclid(n as i64) as usize;
        self.scores[r] = BAR_DECAY * self.scores[r] + (1.0 - BAR_DECAY) * score;
        self.scored = self.scored.saturating_add(1);
        self.decide();
    }

    /// The evidence of the last beat scored as a possible "1" (its number tells a new one).
    pub fn last_scored(&self) -> Option<BeatEvidence> {
        self.last_scored
    }

    fn decide(&mut self) {
        let n = self.beats_per_bar;
        if n == 1 {
            self.phase = 0;
            self.confidence = 1.0;
            return;
        }
        let best = (0..n)
            .max_by(|&a, &b| self.score(a).total_cmp(&self.score(b)))
            .unwrap_or(0);
        let max = self.score(best);
        let min = (0..n).map(|r| self.score(r)).fold(f32::MAX, f32::min);
        // Scores a hair apart (the same evidence summed in another order) are no spread.
        let spread = (max - min).max(1e-3);
        if best != self.phase && max > self.score(self.phase) + HYSTERESIS * spread {
            self.phase = best;
        }
        let second = (0..n)
            .filter(|&r| r != self.phase)
            .map(|r| self.score(r))
            .fold(f32::MIN, f32::max);
        // How far the chosen phase stands above the next, against the spread; and how much
        // evidence there is (a bar and a half is little, four bars is enough).
        let margin = ((self.score(self.phase) - second) / spread).clamp(0.0, 1.0);
        let evidence = (self.scored as f32 / (4.0 * n as f32)).min(1.0);
        self.confidence = margin * evidence;
    }

    /// The beat number (mod beats_per_bar) that is a downbeat.
    pub fn phase(&self) -> usize {
        self.forced.unwrap_or(self.phase)
    }

    /// 0..1: how likely the bar's phase is right (1 when the user set it), calibrated: of the
    /// beats sent with 0.8, about four in five are on the right place in the bar.
    pub fn confidence(&self) -> f32 {
        if self.forced.is_some() || self.beats_per_bar == 1 {
            1.0
        } else {
            calibrated(self.confidence)
        }
    }

    /// The user says beat `number` is a downbeat (`resync`), or (None) lets the audio decide.
    pub fn force(&mut self, number: Option<i64>) {
        self.forced = number.map(|n| n.rem_euclid(self.beats_per_bar as i64) as usize);
    }

    pub fn beats_per_bar(&self) -> u32 {
        self.beats_per_bar as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "1" a bar tracker settles on when beats come every half second from 2.3 s (numbered
    /// from there; the grid, at 0.3 + k / 2, goes back further) and nothing in the audio
    /// marks any of them, the music having begun at `sound` seconds.
    fn settled_on(sound: f64) -> usize {
        let spectrum = Spectrum::new(44_100);
        let chroma = Chroma::new(&spectrum);
        let mut bar = BarTracker::new(4);
        bar.sound_starts(sound);
        let beat = |n: i64| 2.3 + 0.5 * n as f64;
        let (mut next, hop) = (0, 512.0 / 44_100.0);
        let mut t = sound;
        while t < 20.0 {
            while beat(next) <= t + 0.5 {
                bar.announce(next, beat(next));
                next += 1;
            }
            bar.observe(&chroma, t, 1.0, 1.0, t);
            t += hop;
        }
        bar.phase()
    }

    #[test]
    fn music_that_begins_on_a_beat_is_counted_from_it_and_only_then() {
        // Beat 0 is at 2.3 s, so the grid's beat at 0.8 s is beat -3, in phase 1 of the bar.
        assert_eq!(settled_on(0.8), 1, "begun on the beat");
        assert_eq!(
            settled_on(0.77),
            1,
            "begun 30 ms before the beat (a kick's lead)"
        );
        // Begun after the beat (a clip cut just after it) or between beats: no head start, and
        // with nothing else to go by the tracker keeps its first phase, 0.
        assert_eq!(settled_on(0.83), 0, "begun 30 ms after the beat");
        assert_eq!(settled_on(1.05), 0, "begun between beats");
    }
}
