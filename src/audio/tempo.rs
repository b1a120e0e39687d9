//! Tempo: autocorrelation of the last seconds of onset strength, read through a comb of the
//! first four multiples of each candidate beat period, weighted by a tempo prior, smoothed in
//! time. The comb and the prior settle half/double-tempo choices the way dance music needs,
//! and two readings of the rhythm settle the ones they cannot: a beat is subdivided (something
//! plays halfway between beats, unless it is the 8th of a swung beat), and the snares mark
//! every other beat.
//! Through a breakdown (a gap in the drums, as the beat tracker sees it) the tempo holds.

use super::acf::Autocorrelation;

/// Seconds of onset history the autocorrelation looks at.
const HISTORY_SECS: f32 = 8.0;
/// Candidate periods are searched at this fraction of a frame.
const STEP: f32 = 0.25;
/// Comb weights of the 1st..4th multiple of the period.
const COMB: [f32; 4] = [1.0, 0.5, 0.33, 0.25];
/// A reading an octave or a related level (RELATED_LEVELS) from the running tempo (within this
/// fraction) replaces it only when the running tempo's neighbourhood scores below this share
/// of it.
const LEVEL_TOLERANCE: f32 = 0.04;
const LEVEL_HYSTERESIS: f32 = 0.9;
/// A candidate at 3/2 the best one's tempo that scores within this share of it is a tie.
const TRIPLE_TIE: f32 = 0.95;
/// A candidate whose half period correlates below this plays nothing between its beats.
const EMPTY_HALF: f32 = 0.1;
/// How much more clearly the snares mark every other beat at double the tempo than at the
/// tempo for double to win.
const BACKBEAT_MARGIN: f32 = 0.05;
/// How much more clearly the snares repeat every four beats than every two, at a tempo above
/// the prior's centre, than every two beats than every one, for half the tempo to win: there
/// they mark every other beat of the slower level (2 and 4), the groove read at double tempo.
/// Tuned on the recorded-drums tuning seeds (0.05-0.15 alike there; at 0.1 a tracker song at
/// 180 BPM wavered): 0.15.
const HALF_TIME_MARGIN: f32 = 0.15;
/// A beat whose half period correlates at least this much is evenly subdivided (8th notes
/// play between its beats).
const REGULAR_HALF: f32 = 0.3;
/// A slower level (3/4 or 2/3 of the tempo) that is evenly subdivided, where the chosen one is
/// not, wins when its comb score (without the prior) is at least this share of the chosen one's.
const SUBDIVIDED_TIE: f32 = 0.95;
/// Two metrical levels compete when the rival's comb score (without the prior) is above this
/// share of the chosen one's; at an equal score the confidence is halved.
const RIVAL_FROM: f32 = 0.7;
/// The levels a triplet feel or a dotted pattern puts beside the beat: 4:3, 3:4, 3:2 and 2:3
/// of it (the set is its own inverse, so periods and tempos alike). They compete with the beat
/// (`rivalry`), and `vj-audio eval` counts a reading at one of them as a ratio error.
pub const RELATED_LEVELS: [f32; 4] = [4.0 / 3.0, 0.75, 1.5, 2.0 / 3.0];

/// A level related to the chosen one by 4:3, 5:4 or 3:2 (either way) takes over when it
/// scores at least this share of the chosen one's (with the prior) and its bar correlates this
/// much more (the autocorrelation at four of its beats, of the zero lag). Tuned on the
/// recorded-drums seeds 1 and 2 (tie 0.5-0.7, margin 0.1-0.3).
const BAR_TIE: f32 = 0.7;
const BAR_MARGIN: f32 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempoSettings {
    pub bpm_min: f32,
    pub bpm_max: f32,
    /// Centre of the log-normal tempo prior.
    pub prior_bpm: f32,
    /// Its width in octaves.
    pub prior_octaves: f32,
}

impl Default for TempoSettings {
    fn default() -> Self {
        TempoSettings {
            bpm_min: 60.0,
            bpm_max: 180.0,
            // Tuned on the corpus' seeds 1-4: drum & bass must read ~170 and half-time its real
            // tempo, while swung hip-hop's weak off-beats keep it at 85-100.
            prior_bpm: 150.0,
            prior_octaves: 0.8,
        }
    }
}

/// What the user said about the tempo (`tap`, `tempo_double`, `set_tempo`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TempoHold {
    /// The tracker decides.
    Free,
    /// Near this period (frames): the tracker refines within a few percent of it, and keeps
    /// the octave the user chose.
    Near(f32),
    /// Exactly this period.
    Locked(f32),
}

/// How far (in octaves, one standard deviation) a `Near` hold lets the tracker refine.
const NEAR_OCTAVES: f32 = 0.03;

pub struct TempoTracker {
    hold: TempoHold,
    fps: f32,
    settings: TempoSettings,
    /// Onset strength ring, `len` frames, and the mids' flux and the snare band's beside it.
    ring: Vec<f32>,
    mids: Vec<f32>,
    snares: Vec<f32>,
    pos: usize,
    filled: usize,
    /// Hops since the start or the last gap in the drums.
    since_gap: usize,
    frame: u64,
    /// Scratch: the history in order, and detrended.
    linear: Vec<f32>,
    detrended: Vec<f32>,
    /// Scratch: the mids and the snares in order, less their means.
    mids_linear: Vec<f32>,
    snares_linear: Vec<f32>,
    autocorrelation: Autocorrelation,
    acf: Vec<f32>,
    /// Candidate periods (frames), their prior, and the time-smoothed comb score.
    periods: Vec<f32>,
    prior: Vec<f32>,
    smoothed: Vec<f32>,
    /// The comb score smoothed the same way, without the prior: how well each period fits the
    /// rhythm alone, for choosing between metrical levels the prior would otherwise settle.
    fit: Vec<f32>,
    period: f32,
    confidence: f32,
    /// How strongly another metrical level (3:4, 2:3 and their inverses) competes, 0..1.
    rivalry: f32,
    /// Recent (2 s) level of the envelope and its slowly falling (20 s) peak: a breakdown's
    /// quiet is no reason to move the tempo.
    level: f32,
    long_level: f32,
}

impl TempoTracker {
    pub fn new(frames_per_sec: f32, settings: TempoSettings) -> Self {
        let len = (HISTORY_SECS * frames_per_sec) as usize;
        let (lo, hi) = Self::period_range(frames_per_sec, &settings);
        let mut periods = Vec::new();
        let mut p = lo;
        while p <= hi {
            periods.push(p);
            p += STEP;
        }
        let prior = periods
            .iter()
            .map(|&p| {
                let bpm = 60.0 * frames_per_sec / p;
                let oct = (bpm / settings.prior_bpm).log2() / settings.prior_octaves;
                (-0.5 * oct * oct).exp()
            })
            .collect();
        let max_lag = ((hi * COMB.len() as f32).ceil() as usize + 2).min(len - 1);
        TempoTracker {
            hold: TempoHold::Free,
            fps: frames_per_sec,
            settings,
            ring: vec![0.0; len],
            mids: vec![0.0; len],
            snares: vec![0.0; len],
            pos: 0,
            filled: 0,
            since_gap: 0,
            frame: 0,
            linear: vec![0.0; len],
            detrended: vec![0.0; len],
            mids_linear: vec![0.0; len],
            snares_linear: vec![0.0; len],
            autocorrelation: Autocorrelation::new(len, max_lag + 1),
            acf: vec![0.0; max_lag + 1],
            smoothed: vec![0.0; periods.len()],
            fit: vec![0.0; periods.len()],
            periods,
            prior,
            period: 0.0,
            confidence: 0.0,
            rivalry: 0.0,
            level: 0.0,
            long_level: 0.0,
        }
    }

    fn period_range(fps: f32, s: &TempoSettings) -> (f32, f32) {
        let lo = 60.0 * fps / s.bpm_max.max(s.bpm_min + 1.0);
        let hi = 60.0 * fps / s.bpm_min;
        (lo, hi)
    }

    pub fn settings(&self) -> TempoSettings {
        self.settings
    }

    /// Adds one hop's onset strength (all of it, the mids' and the snare band's,
    /// [`super::drums::DrumHits::flux`]); re-estimates every few hops.
    /// In a `gap` in the drums (a breakdown, as the beat tracker sees it) the tempo holds: the
    /// hop counts as silence, and estimates resume once the drums have been back long enough
    /// to measure.
    pub fn process(&mut self, onset: f32, mid: f32, snare: f32, gap: bool) {
        let len = self.ring.len();
        self.ring[self.pos] = if gap { 0.0 } else { onset };
        self.mids[self.pos] = if gap { 0.0 } else { mid };
        self.snares[self.pos] = if gap { 0.0 } else { snare };
        self.pos = (self.pos + 1) % len;
        self.filled = (self.filled + 1).min(len);
        self.since_gap = if gap { 0 } else { self.since_gap + 1 };
        self.frame += 1;
        self.level += (onset - self.level) * (1.0 / (2.0 * self.fps));
        self.long_level = self
            .level
            .max(self.long_level * (1.0 - 1.0 / (20.0 * self.fps)));
        // Every 4 hops (46 ms): often enough to lock fast, cheap enough to ignore.
        if self.frame % 4 == 0 && self.since_gap as f32 > 1.5 * self.fps {
            self.estimate();
        } else if gap && self.frame % 4 == 0 {
            self.confidence *= 0.9;
        }
    }

    /// Holds the tempo near or at a period (frames), or lets it go. A period the candidates do
    /// not reach (outside bpm_min..bpm_max) can only be locked.
    pub fn set_hold(&mut self, hold: TempoHold) {
        let (lo, hi) = (self.periods[0], self.periods[self.periods.len() - 1]);
        self.hold = match hold {
            TempoHold::Near(p) if !(lo..=hi).contains(&p) => TempoHold::Locked(p),
            h => h,
        };
        if let TempoHold::Near(p) | TempoHold::Locked(p) = self.hold {
            self.period = p;
            self.confidence = self.confidence.max(0.5);
        }
    }

    pub fn hold(&self) -> TempoHold {
        self.hold
    }

    fn estimate(&mut self) {
        if let TempoHold::Locked(p) = self.hold {
            self.period = p;
            self.confidence = 1.0;
            return;
        }
        let len = self.ring.len();
        let n = self.filled;
        // Oldest first; only the filled part.
        let start = (self.pos + len - n) % len;
        let first = (len - start).min(n);
        self.linear[..first].copy_from_slice(&self.ring[start..start + first]);
        self.linear[first..n].copy_from_slice(&self.ring[..n - first]);
        for (ring, linear) in [
            (&self.mids, &mut self.mids_linear),
            (&self.snares, &mut self.snares_linear),
        ] {
            linear[..first].copy_from_slice(&ring[start..start + first]);
            linear[first..n].copy_from_slice(&ring[..n - first]);
            let linear = &mut linear[..n];
            let mean = linear.iter().sum::<f32>() / n as f32;
            linear.iter_mut().for_each(|v| *v -= mean);
        }
        let history = &self.linear[..n];
        let x = &mut self.detrended[..n];
        // Keep what rises above the local mean (a centred 0.2 s window), then remove the mean.
        let half = (0.1 * self.fps) as usize;
        let mut prefix = 0.0f32;
        let mut acc = 0.0f32;
        let mut lo = 0usize;
        let mut hi = 0usize;
        for i in 0..n {
            let want_hi = (i + half + 1).min(n);
            while hi < want_hi {
                acc += history[hi];
                hi += 1;
            }
            let want_lo = i.saturating_sub(half);
            while lo < want_lo {
                acc -= history[lo];
                lo += 1;
            }
            let mean = acc / (hi - lo) as f32;
            let v = (history[i] - mean).max(0.0);
            x[i] = v;
            prefix += v;
        }
        let mean = prefix / n as f32;
        let mut energy = 0.0f32;
        for v in x.iter_mut() {
            *v -= mean;
            energy += *v * *v;
        }
        if energy <= 1e-12 || self.level <= 1e-6 || self.level < 0.4 * self.long_level {
            self.confidence *= 0.9;
            return;
        }
        let max_lag = (self.acf.len() - 1).min(n / 2);
        self.autocorrelation.compute(x, &mut self.acf[..=max_lag]);
        for (lag, a) in self.acf[..=max_lag].iter_mut().enumerate() {
            *a /= (n - lag) as f32;
        }
        for a in self.acf[max_lag + 1..].iter_mut() {
            *a = 0.0;
        }
        let zero = self.acf[0].max(1e-12);
        let acf = &self.acf;
        let at = |p: f32| -> f32 {
            let i = p as usize;
            if i + 1 > max_lag {
                return 0.0;
            }
            let f = p - i as f32;
            (acf[i] * (1.0 - f) + acf[i + 1] * f) / zero
        };
        // Comb score of every candidate period, then its share of the best.
        let mut best = 0.0f32;
        let mut sum = 0.0f32;
        for (j, &p) in self.periods.iter().enumerate() {
            let mut s = 0.0;
            let mut w = 0.0;
            for (k, &c) in COMB.iter().enumerate() {
                let lag = p * (k + 1) as f32;
                if (lag as usize) < max_lag {
                    s += c * at(lag);
                    w += c;
                }
            }
            let s = if w > 0.0 { (s / w).max(0.0) } else { 0.0 };
            // Blended over time: fast enough to follow a ramp, slow enough to ride a fill.
            self.fit[j] += (s - self.fit[j]) * 0.25;
            let s = s * self.prior[j];
            self.smoothed[j] += (s - self.smoothed[j]) * 0.25;
            best = best.max(self.smoothed[j]);
            sum += self.smoothed[j];
        }
        let mean_score = sum / self.periods.len() as f32;
        let bj = match self.hold {
            // The user chose the octave: the best candidate within a few percent of it.
            TempoHold::Near(h) => {
                let weight = |p: f32| {
                    let o = (p / h).log2() / NEAR_OCTAVES;
                    (-0.5 * o * o).exp()
                };
                let mut bj = 0;
                for (j, &p) in self.periods.iter().enumerate() {
                    if self.smoothed[j] * weight(p) > self.smoothed[bj] * weight(self.periods[bj]) {
                        bj = j;
                    }
                }
                bj
            }
            // The comb's best, then each rule in turn may move it to a related level.
            _ => {
                let bj = self.prefer_regular_half(argmax(&self.smoothed), at);
                let bj = self.hold_level(bj, best);
                let bj = self.prefer_rhythm(bj, at);
                let bj = self.prefer_subdivided(bj, at);
                self.prefer_bar(bj, at)
            }
        };
        self.rivalry = self.rivalry(bj);
        // Parabolic refinement between neighbouring candidates.
        let mut p = self.periods[bj];
        if bj > 0 && bj + 1 < self.periods.len() {
            let (a, b, c) = (
                self.smoothed[bj - 1],
                self.smoothed[bj],
                self.smoothed[bj + 1],
            );
            let d = a - 2.0 * b + c;
            if d < 0.0 {
                p += STEP * (0.5 * (a - c) / d).clamp(-0.5, 0.5);
            }
        }
        let p = on_peaks(&self.acf[..=max_lag], p);
        self.confidence = if best > 0.0 {
            ((best - mean_score) / best).clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Hold the tempo through a breakdown: a weak, flat score is no reason to move.
        if self.period == 0.0 || self.confidence > 0.25 {
            self.period = p;
        }
        if let TempoHold::Near(h) = self.hold {
            // Refining, not wandering: never more than 8 % from what the user said.
            self.period = self.period.clamp(h / 1.08, h * 1.08);
        }
    }

    /// The candidate to take instead of `bj` when the one at 3/2 its tempo scores almost as
    /// well (within TRIPLE_TIE): the one whose half period is the more regular, i.e. whose
    /// eighth notes play. Drum & bass' kick on the "and" of 3 makes 2/3 of its tempo score
    /// like the tempo itself, and its half period falls between the hats.
    fn prefer_regular_half(&self, bj: usize, acf_at: impl Fn(f32) -> f32) -> usize {
        let Some(aj) = self.nearest(self.periods[bj] * 2.0 / 3.0) else {
            return bj;
        };
        let (p, q) = (self.periods[bj], self.periods[aj]);
        if self.smoothed[aj] >= TRIPLE_TIE * self.smoothed[bj] && acf_at(0.5 * q) > acf_at(0.5 * p)
        {
            aj
        } else {
            bj
        }
    }

    /// The candidate an octave from `bj` when the rhythm says so (after the octave hold: these
    /// readings of the last 8 s are steadier than the comb's scores):
    /// - above the prior's centre, nothing plays halfway between its beats: they are the 8th
    ///   notes of a swung beat at half the tempo (swung hip-hop read at double tempo), since a
    ///   real beat that fast is subdivided by hats, ghost notes or bass, and a swung 8th falls
    ///   late, not halfway (below it, a kick drum alone is a beat, as in a techno intro);
    /// - the snares, which mark beats 2 and 4, repeat every beat and not every other one, and
    ///   the beat at double the tempo is subdivided too: the tempo is double (drum & bass read
    ///   at half its tempo);
    /// - above the prior's centre, the snare band repeats every four beats and not every two:
    ///   the snares are on 2 and 4 of half the tempo (a groove at 90 with 16th hats read at
    ///   180).
    fn prefer_rhythm(&self, bj: usize, acf_at: impl Fn(f32) -> f32) -> usize {
        if self.filled < self.ring.len() / 2 {
            return bj;
        }
        let p = self.periods[bj];
        if acf_at(0.25 * p) >= EMPTY_HALF {
            // The snares repeat every beat more than every half beat, and not every two beats
            // more than every beat.
            let (to_beat, to_two) = gains(&self.mids_linear[..self.filled], p);
            if to_beat > to_two + BACKBEAT_MARGIN {
                if let Some(aj) = self.nearest(0.5 * p) {
                    return aj;
                }
            }
        }
        let fast = 60.0 * self.fps / p > self.settings.prior_bpm;
        if fast {
            // The snare band repeats every four beats more than every two, and every two not
            // more than every one: half the tempo's backbeat.
            let (to_two, to_four) = gains(&self.snares_linear[..self.filled], 2.0 * p);
            if to_four > to_two + HALF_TIME_MARGIN {
                if let Some(aj) = self.nearest(2.0 * p) {
                    return aj;
                }
            }
        }
        if fast && acf_at(0.5 * p) < EMPTY_HALF {
            if let Some(aj) = self.nearest(2.0 * p) {
                return aj;
            }
        }
        bj
    }

    /// The candidate at 3/4 or 2/3 of `bj`'s tempo when `bj` plays nothing halfway between its
    /// beats and that slower level does, and fits the rhythm about as well without the prior.
    /// Accents every three 16ths (3+3+2, a tresillo, a dotted figure) make 4/3 of the tempo
    /// score like the tempo, and the prior, centred high for drum & bass, tips it the wrong
    /// way; the dotted level's half period falls between the 16ths, the beat's on the 8th.
    fn prefer_subdivided(&self, bj: usize, acf_at: impl Fn(f32) -> f32) -> usize {
        let p = self.periods[bj];
        if acf_at(0.5 * p) >= EMPTY_HALF {
            return bj;
        }
        let mut pick = bj;
        let mut to_beat = SUBDIVIDED_TIE * self.fit[bj];
        for ratio in [4.0 / 3.0, 1.5] {
            if let Some(aj) = self.nearest(p * ratio) {
                if acf_at(0.5 * self.periods[aj]) >= REGULAR_HALF && self.fit[aj] >= to_beat {
                    pick = aj;
                    to_beat = self.fit[aj];
                }
            }
        }
        pick
    }

    /// The level at 4:3, 3:4, 5:4, 4:5, 3:2 or 2:3 of `bj`'s tempo whose bar — four of its
    /// beats — is where the rhythm repeats, when `bj`'s bar is clearly not (BAR_MARGIN) and that
    /// level scores nearly as well with the prior (BAR_TIE). A syncopated break's kicks and
    /// snares five or three 16ths apart make 4/5 or 4/3 of its tempo fit the comb like the beat,
    /// but only the true bar lines the loop up with itself. Read once 8 s of drums are in the
    /// history (after a breakdown too): on less, four beats' lag is measured on too little.
    fn prefer_bar(&self, bj: usize, acf_at: impl Fn(f32) -> f32) -> usize {
        if self.since_gap < self.ring.len() {
            return bj;
        }
        let bar = |j: usize| acf_at(4.0 * self.periods[j]);
        let p = self.periods[bj];
        let (mut pick, mut to_beat) = (bj, bar(bj) + BAR_MARGIN);
        for ratio in [4.0 / 3.0, 0.75, 1.25, 0.8, 1.5, 2.0 / 3.0] {
            let Some(aj) = self.nearest(p * ratio) else {
                continue;
            };
            let b = bar(aj);
            if self.smoothed[aj] >= BAR_TIE * self.smoothed[bj] && b > to_beat {
                pick = aj;
                to_beat = b;
            }
        }
        pick
    }

    /// How strongly the best of the levels at 3:4, 2:3, 4:3 and 3:2 of `bj`'s tempo competes
    /// with it: 0 below RIVAL_FROM of its fit, 1 at an equal fit or above.
    fn rivalry(&self, bj: usize) -> f32 {
        let fit = self.fit[bj];
        if fit <= 0.0 {
            return 0.0;
        }
        let rival = RELATED_LEVELS
            .into_iter()
            .filter_map(|r| self.nearest(self.periods[bj] * r))
            .map(|j| self.fit[j])
            .fold(0.0f32, f32::max);
        ((rival / fit - RIVAL_FROM) / (1.0 - RIVAL_FROM)).clamp(0.0, 1.0)
    }

    /// The candidate nearest `period`, if one is within 3 % of it.
    fn nearest(&self, period: f32) -> Option<usize> {
        self.candidates_near(period, 0.03).min_by(|&a, &b| {
            (self.periods[a] - period)
                .abs()
                .total_cmp(&(self.periods[b] - period).abs())
        })
    }

    /// The candidates within `tolerance` (a fraction) of `period`: read off the fixed step, not
    /// searched for (one index either side, then the exact test).
    fn candidates_near(&self, period: f32, tolerance: f32) -> impl Iterator<Item = usize> + '_ {
        let index = |p: f32| ((p - self.periods[0]) / STEP).max(0.0);
        let lo = (index(period * (1.0 - tolerance)) as usize).saturating_sub(1);
        let hi = (index(period * (1.0 + tolerance)) as usize + 2).min(self.periods.len());
        (lo..hi.max(lo)).filter(move |&j| (self.periods[j] / period - 1.0).abs() < tolerance)
    }

    /// The candidate to take instead of `bj`: a jump to another level (×2, ×½, or one of
    /// RELATED_LEVELS) from the running tempo only when it clearly beats the best candidate
    /// near that tempo. Two octaves of drum & bass score alike and would flip-flop; so do
    /// funk's beat and three of its 16ths (its kicks on the "a" of 1 and the "and" of 2):
    /// holding only octaves, a recorded funk groove read 104 and 139 BPM by turns, the beats
    /// lost at each turn.
    fn hold_level(&self, bj: usize, best: f32) -> usize {
        if self.period <= 0.0 {
            return bj;
        }
        let ratio = self.periods[bj] / self.period;
        let close = |r: f32| (r - 1.0).abs() < LEVEL_TOLERANCE;
        let related = [2.0, 0.5]
            .iter()
            .chain(&RELATED_LEVELS)
            .any(|&level| close(ratio / level));
        if !related {
            return bj;
        }
        let near = self
            .candidates_near(self.period, LEVEL_TOLERANCE)
            .max_by(|&a, &b| self.smoothed[a].total_cmp(&self.smoothed[b]));
        match near {
            Some(cj) if self.smoothed[cj] >= LEVEL_HYSTERESIS * best => cj,
            _ => bj,
        }
    }

    /// Beat period in frames (0 until known).
    pub fn period(&self) -> f32 {
        self.period
    }

    /// Frames per second this tracker counts in.
    pub fn frames_per_sec(&self) -> f32 {
        self.fps
    }

    /// Tempo in BPM (0 until known).
    pub fn bpm(&self) -> f32 {
        if self.period > 0.0 {
            60.0 * self.fps / self.period
        } else {
            0.0
        }
    }

    /// How sure the tempo is: the best score's lead over the rest, halved at most when another
    /// metrical level (3:4, 2:3) fits the rhythm as well.
    pub fn confidence(&self) -> f32 {
        self.confidence * (1.0 - 0.5 * self.rivalry)
    }
}

/// The period whose multiples best match where the autocorrelation peaks near the multiples
/// of `p` (each peak placed between lags from it and its neighbours). The comb
/// reads the correlation between lags linearly, which makes a whole number of frames win: a
/// click track at 120 BPM and 44.1 kHz (43.07 frames) read 120.16 BPM, and every beat the fit
/// placed on that grid came 2-7 ms early. Moves `p` by at most half a frame.
fn on_peaks(acf: &[f32], p: f32) -> f32 {
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (k, &weight) in COMB.iter().enumerate() {
        let m = (k + 1) as f32;
        let near = (p * m).round() as usize;
        if near < 2 || near + 2 >= acf.len() {
            break;
        }
        let top = (near - 1..=near + 1)
            .max_by(|&a, &b| acf[a].total_cmp(&acf[b]))
            .unwrap_or(near);
        let (a, b, c) = (acf[top - 1], acf[top], acf[top + 1]);
        let fall = b - a.min(c);
        if b <= 0.0 || fall <= 0.0 {
            continue;
        }
        // A peak of onsets a frame or two wide correlates to a triangle, not a parabola: the
        // straight sides through the samples place it (a parabola halves the offset).
        let at = top as f32 + ((c - a) / (2.0 * fall)).clamp(-0.5, 0.5);
        // Least squares through the origin: at ≈ m·period, each multiple by its comb weight.
        num += weight * m * at;
        den += weight * m * m;
    }
    if den <= 0.0 {
        return p;
    }
    (num / den).clamp(p - 0.5, p + 0.5)
}

/// How much more the zero-mean series `x` correlates at `lag` than at half of it, and at twice
/// `lag` than at `lag`: where a drum repeats, read one level either side.
fn gains(x: &[f32], lag: f32) -> (f32, f32) {
    let energy: f32 = x.iter().map(|v| v * v).sum();
    let [half, one, two] = [0.5 * lag, lag, 2.0 * lag].map(|l| normalized_acf(x, energy, l));
    (one - half, two - one)
}

/// Autocorrelation of a zero-mean series at a fractional lag, against its `energy` (the sum
/// of its squares).
fn normalized_acf(x: &[f32], energy: f32, lag: f32) -> f32 {
    let i = lag as usize;
    if i + 1 >= x.len() || energy <= 1e-12 {
        return 0.0;
    }
    let at = |l: usize| -> f32 { x[l..].iter().zip(x).map(|(a, b)| a * b).sum() };
    let f = lag - i as f32;
    ((1.0 - f) * at(i) + f * at(i + 1)) / energy
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::MIN), |a, (j, &s)| if s > a.1 { (j, s) } else { a })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f32 = 86.13;

    /// A kick every `period` frames (an onset envelope): frame `i`'s onset.
    fn kick(i: usize, period: f32) -> f32 {
        let k = i as f32 / period;
        if k - k.floor() < 0.5 / period {
            1.0
        } else {
            0.05
        }
    }

    #[test]
    fn a_tempo_between_whole_frames_is_read_exactly() {
        // 120 BPM at 44.1 kHz is 43.07 frames a beat: a sharp sound on every beat, its
        // onset shared between the two frames around it. Read as 43 frames it is 120.16 BPM,
        // and a beat grid that gains 0.8 ms a beat.
        let period = 60.0 * FPS / 120.0;
        let mut t = TempoTracker::new(FPS, TempoSettings::default());
        for i in 0..(12.0 * FPS) as usize {
            let into = (i as f32 / period).fract() * period;
            let onset = 0.05 + (1.0 - into).max(0.0) + (into - (period - 1.0)).max(0.0);
            t.process(onset, 0.0, 0.0, false);
        }
        assert!((t.bpm() - 120.0).abs() < 0.08, "read {} BPM", t.bpm());
    }

    #[test]
    fn an_amen_break_is_read_at_its_tempo_not_at_four_fifths_of_it() {
        // The amen break's cycle of four bars at 140 BPM, as an onset envelope on a 16th grid:
        // kicks (1 and the "and" of 1, the "and" of 3), snares on 2 and 4 and between them,
        // the ride on the 8ths. Its kicks and snares five 16ths apart made 4/5 of the tempo
        // (112 BPM, a beat of five 16ths) fit as well as the beat, and the reading went there
        // now and then (36 of 860 readings in the last 10 s); only the bar of the true beat
        // is where the break repeats.
        const CYCLE: [(&[usize], &[usize]); 4] = [
            (&[0, 2, 10, 11], &[4, 7, 9, 12, 15]),
            (&[0, 2, 10, 11], &[4, 7, 9, 12, 15]),
            (&[0, 2, 10], &[4, 7, 9, 14]),
            (&[2, 3, 10], &[1, 4, 7, 9, 14]),
        ];
        let bpm = 140.7;
        let step = 60.0 * FPS / bpm / 4.0;
        let mut t = TempoTracker::new(FPS, TempoSettings::default());
        let mut readings = Vec::new();
        for i in 0..(30.0 * FPS) as usize {
            let s = (i as f32 / step) as usize;
            let on = (i as f32 - s as f32 * step) < 1.0;
            let (kicks, snares) = CYCLE[(s / 16) % 4];
            let (kick, snare) = (kicks.contains(&(s % 16)), snares.contains(&(s % 16)));
            let ride = s % 2 == 0;
            let onset = if on {
                0.05 + f32::from(kick) + 0.8 * f32::from(snare) + 0.3 * f32::from(ride)
            } else {
                0.05
            };
            let snare = if on && snare { 0.8 } else { 0.0 };
            t.process(onset, snare, snare, false);
            if i as f32 > 20.0 * FPS {
                readings.push(t.bpm());
            }
        }
        let wrong: Vec<f32> = readings
            .iter()
            .copied()
            .filter(|b| (b / bpm - 1.0).abs() > 0.02)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} readings in the last 10 s off {bpm} BPM: {:?}…",
            wrong.len(),
            readings.len(),
            &wrong[..wrong.len().min(4)]
        );
    }

    #[test]
    fn the_tempo_holds_through_a_gap_in_the_drums() {
        // 129 BPM for 10 s, then a breakdown whose pad or riser pulses at another rate, then
        // the drums again: while the gap lasts the reading must not follow the pulse.
        let (drums, pulse) = (40.0, 29.0);
        let mut t = TempoTracker::new(FPS, TempoSettings::default());
        let secs = |s: f32| (s * FPS) as usize;
        let mut readings = Vec::new();
        for i in 0..secs(35.0) {
            let gap = (secs(10.0)..secs(25.0)).contains(&i);
            let onset = if gap {
                0.6 * kick(i, pulse)
            } else {
                kick(i, drums)
            };
            t.process(onset, 0.0, 0.0, gap);
            if i > secs(5.0) {
                readings.push((i as f32 / FPS, t.bpm()));
            }
        }
        let right = 60.0 * FPS / drums;
        let wrong: Vec<_> = readings
            .iter()
            .filter(|(_, bpm)| (bpm / right - 1.0).abs() > 0.02)
            .collect();
        assert!(
            wrong.is_empty(),
            "{right:.1} BPM read as {:?}",
            &wrong[..wrong.len().min(5)]
        );
    }
}
