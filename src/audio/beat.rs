//! Beats on the tracked grid: every hop the phase of the tempo grid is fitted to the last few
//! beats of onset strength (with inertia toward the grid already running), and a beat is emitted
//! when the grid's next point arrives, so fills and breakdowns do not move or stop the pulse.

/// Beats of history the phase fit looks at, and how much each older beat counts.
const FIT_BEATS: usize = 8;
const FIT_DECAY: f32 = 0.85;
/// Seconds of onset history kept (≥ FIT_BEATS beats at the slowest tempo).
const HISTORY_SECS: f32 = 8.5;
/// Beats without drums, after they have played, that make a gap (a breakdown).
const GAP_BEATS: f64 = 2.0;
/// A fit finds drums only where its phase stands out at least this share as clearly as it
/// has while they played (a mean over this many seconds).
const RELATIVE_PEAKINESS: f32 = 0.55;
const PEAK_REF_SECS: f32 = 5.0;
/// A phase up to an eighth of a beat before the best one that fits at least this share as well
/// is where the beat starts.
const EARLIER_TIE: f32 = 0.9;
/// How much a phase's syncopation counts against its fit (`least_syncopated`): an 8th between
/// two beats louder than the beat after it counts whole, a 16th louder than the 8th or beat
/// after it half. Tuned on the tuning seeds only (recorded drums 1, 5, 9, 13, tracker songs 1,
/// synthetic 1, 5, 9): weights of 0.5-1.0 for either score alike (docs/BENCHMARKS.md,
/// "Syncopation chooses between the beat and the off-beat").
const SYNCOPATION: f32 = 1.0;
const SIXTEENTH_SYNCOPATION: f32 = 0.5;
/// The running grid's place wins unless another is better by this share of the best comb
/// score (the head start fades as the inertia does, away from the running grid).
const SYNCOPATION_MARGIN: f32 = 0.1;
/// How much a phase's backbeat (`backbeat`, -1..1) counts, as a share of the best fit. Tuned
/// on the tuning seeds only (as SYNCOPATION): 0.2-0.8 alike on recorded drums and no change on
/// the synthetic sets, read in the snare band; 0.5 (docs/BENCHMARKS.md, "The backbeat").
const BACKBEAT: f32 = 0.5;
/// Beats of history the choice among metrical positions weighs, all alike
/// (`least_syncopated`): a whole four-bar cycle, whose bars may each favour another position.
/// The amen's third and fourth bars fit the off-beat best; a choice over the last two bars
/// (the fit's eight beats, the newest counting most) sat half a beat off for every other
/// two bars of it. As many as HISTORY_SECS holds: all sixteen from 113 BPM up.
const CHOICE_BEATS: usize = 16;
/// How much a phase off the running grid keeps of its score: in the fit (which places the
/// beat, on the last two bars), and in the choice among metrical positions (on the whole
/// cycle, which holds the grid on its own). Tuned on the tuning seeds only: with the fit's
/// 0.7 in the choice too, a synthetic breakdown and two tracker songs lost their beat; with
/// none (1.0), three synthetic breakdowns and a break moved off it (docs/BENCHMARKS.md, "A
/// whole cycle chooses the beat").
const FIT_INERTIA: f32 = 0.7;
const CHOICE_INERTIA: f32 = 0.85;
/// The most phases a fit tries: one per frame of the slowest beat (30 BPM at 88 kHz / 512).
const MAX_STEPS: usize = 360;

/// The beat grid as the tracker sees it now: a beat at `anchor` (seconds of stream time, where
/// the sound is, not where the envelope peaks) and one every `period` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub anchor: f64,
    pub period: f64,
}

impl Grid {
    /// The first grid point at or after `t`.
    pub fn next_after(&self, t: f64) -> f64 {
        self.anchor + ((t - self.anchor) / self.period).ceil() * self.period
    }
}

pub struct BeatTracker {
    /// The onset strength of the last HISTORY_SECS.
    onsets: History,
    /// The snare band's flux (1-4 kHz: snares and claps, above the bass and the keys) beside
    /// it, for the backbeat.
    snares: History,
    /// Frames processed so far; the current frame is `frame - 1`.
    frame: u64,
    /// Frames between a sound and the peak of its onset strength (the flux window's delay):
    /// beats are emitted that much ahead of the envelope so they land on the sound.
    latency: f32,
    /// The frame of the last emitted beat (may be fractional on the grid), or None.
    last_beat: Option<f64>,
    /// Recent (1 s) onset level and its slowly falling peak: in a breakdown the grid runs on.
    level: f32,
    long_level: f32,
    /// The frame of the last fit that found the drums, and whether they have been gone since
    /// for GAP_BEATS or more.
    music_at: Option<f64>,
    gap: bool,
    /// How clearly the fit's phase has stood out while there were drums (a running mean).
    peak_ref: f32,
    fps: f32,
    beat: bool,
    /// The grid fitted this hop (in seconds), and whether drums were found for it.
    grid: Option<Grid>,
    music: bool,
}

impl BeatTracker {
    /// `latency_secs`: how long after a sound its onset strength peaks (the flux window's
    /// delay, [`super::onset::OnsetStrength::delay_secs`]), kept in seconds at any rate.
    pub fn new(frames_per_sec: f32, latency_secs: f32) -> Self {
        let latency_frames = latency_secs * frames_per_sec;
        let len = (HISTORY_SECS * frames_per_sec) as usize;
        BeatTracker {
            onsets: History::new(len),
            snares: History::new(len),
            frame: 0,
            latency: latency_frames,
            last_beat: None,
            level: 0.0,
            long_level: 0.0,
            music_at: None,
            gap: false,
            peak_ref: 0.0,
            fps: frames_per_sec,
            beat: false,
            grid: None,
            music: false,
        }
    }

    /// Frame `f` (fractional, as the fit counts them) in seconds of stream time: frame k ends
    /// at (k + 1) hops.
    fn secs(&self, f: f64) -> f64 {
        (f + 1.0) / self.fps as f64
    }

    /// The grid fitted at the last hop: where beats fall, in seconds. None until a first fit.
    pub fn grid(&self) -> Option<Grid> {
        self.grid
    }

    /// Whether the last fit found drums (not only the grid running on through a gap).
    pub fn hears_drums(&self) -> bool {
        self.music
    }

    /// Puts the running grid on a beat at `at` seconds (a tap, a locked tempo's phase): the
    /// fit's inertia then holds it there unless the drums clearly say otherwise.
    pub fn set_phase(&mut self, at: f64, period_frames: f32) {
        let f = at * self.fps as f64 - 1.0;
        let now = (self.frame as f64 - 1.0).max(0.0);
        let tau = period_frames as f64;
        // The last grid point at or before now.
        let back = ((now - f) / tau).floor();
        self.last_beat = Some(f + back * tau);
        self.grid = Some(Grid {
            anchor: at,
            period: tau / self.fps as f64,
        });
    }

    /// One hop: its onset strength, its snare band's flux ([`super::drums::DrumHits::flux`])
    /// and the current beat period in frames (0 = unknown). Returns whether this hop carries a
    /// beat.
    pub fn process(&mut self, onset: f32, snare: f32, period: f32) -> bool {
        self.onsets.push(onset);
        self.snares.push(snare);
        self.frame += 1;
        self.level += (onset - self.level) * (1.0 / (1.0 * self.fps));
        // The reference is the recent peak of that level, falling over ~20 s: a fresh track
        // has it at once, and a long breakdown only slowly lowers it (so a riser late in the
        // breakdown does not count as the drums being back).
        self.long_level = self
            .level
            .max(self.long_level * (1.0 - 1.0 / (20.0 * self.fps)));
        let now = (self.frame - 1) as f64;
        self.beat = false;
        if period < 2.0 {
            return false;
        }
        let tau = period;
        // Fit: where in the last period does the grid sit best?
        let steps = tau.ceil() as usize;
        let mut best = (0.0f32, f32::MIN);
        let mut total = 0.0f32;
        let mut top = 0.0f32;
        let beats = FIT_BEATS.min(self.beats_held(tau));
        // Each phase's score, for the sub-frame refinement of the best one.
        let mut scores = [0.0f32; MAX_STEPS];
        // And before the inertia.
        let mut raw = [0.0f32; MAX_STEPS];
        let steps = steps.min(MAX_STEPS);
        for phi in 0..steps {
            let phi = phi as f32;
            let mut s = 0.0;
            let mut w = 1.0;
            for k in 0..beats {
                let ago = phi + k as f32 * tau;
                s += w * self.onsets.at(ago);
                w *= FIT_DECAY;
            }
            // Whether there are drums at all is read before the inertia: it alone lifts the
            // running grid's phase above 1.3 × the mean, and would call a breakdown drums.
            total += s;
            top = top.max(s);
            raw[phi as usize] = s;
            // Inertia: favour the grid that is already running (it rides fills, and carries
            // the phase through a breakdown to the drop).
            s *= inertia(FIT_INERTIA, self.on_running_grid(phi, tau));
            scores[phi as usize] = s;
            if s > best.1 {
                best = (phi, s);
            }
        }
        let mean = total / steps as f32;
        let loud = self.level > 0.35 * self.long_level;
        // How clearly one phase stands out, against how clearly it did while the drums
        // played: a riser or a pad in a breakdown stands out a little, never like drums.
        let peakiness = top / mean.max(1e-9);
        let music =
            peakiness > 1.3 && top > 1e-6 && loud && peakiness > RELATIVE_PEAKINESS * self.peak_ref;
        if music {
            // A mean from zero, not from the first fit: on a beat or two of history a fit
            // stands out far more than it ever will again.
            self.peak_ref += (peakiness - self.peak_ref) / (PEAK_REF_SECS * self.fps);
            self.music_at = Some(now);
        }
        self.gap = self
            .music_at
            .is_some_and(|at| now - at > GAP_BEATS * tau as f64);
        self.music = music;
        // The last grid point in true time (the envelope lags the sound by `latency`).
        let anchor = if music {
            let phi = self.place(best, &scores[..steps], &raw[..steps], tau);
            now - phi as f64 - self.latency as f64
        } else if let Some(last) = self.last_beat {
            // Nothing to fit (a breakdown): keep running on the grid we had.
            last
        } else {
            return false;
        };
        let tau = tau as f64;
        self.grid = Some(Grid {
            anchor: self.secs(anchor),
            period: tau / self.fps as f64,
        });
        let after = self.last_beat.map_or(f64::MIN, |l| l + 0.5 * tau);
        let m = ((after - anchor) / tau).ceil().max(0.0);
        let mut next = anchor + m * tau;
        if self.last_beat.is_none() {
            // First beat: the next grid point from now on.
            while next < now - 0.5 {
                next += tau;
            }
        }
        if next <= now + 0.5 {
            if next >= now - 0.2 * tau {
                self.beat = true;
                self.last_beat = Some(next);
            } else {
                // The grid moved past a beat we never sent: skip it rather than send it late.
                self.last_beat = Some(next);
            }
        }
        self.beat
    }

    /// Where the beat is, in frames ago (fractional), from the fit's `best` phase and every
    /// phase's score with the inertia (`scores`) and without (`raw`): which metrical position
    /// it is, where its hits start, then between frames. Only when the fit found drums.
    fn place(&self, best: (f32, f32), scores: &[f32], raw: &[f32], tau: f32) -> f32 {
        let steps = scores.len();
        let best = self.least_syncopated(best, scores, tau);
        let best = earliest_of_a_cluster(best, scores, raw, tau);
        // A parabola through the best phase and its neighbours places the beat between
        // frames (a frame is 10-12 ms; the truth is not on it).
        let b = best.0 as usize;
        let (l, r) = (scores[(b + steps - 1) % steps], scores[(b + 1) % steps]);
        let d = l - 2.0 * best.1 + r;
        let refine = if d < 0.0 {
            (0.5 * (l - r) / d).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        best.0 + refine
    }

    /// Whole beats of `tau` frames the history holds (less two frames for interpolation).
    fn beats_held(&self, tau: f32) -> usize {
        ((self.onsets.len() as f32 - 2.0) / tau) as usize
    }

    /// How close a beat `phi` frames ago lies to the running grid (the last beat sent): 1 on
    /// it, falling off within a tenth of a beat either way; 0 with no grid yet (alike for every
    /// phase).
    fn on_running_grid(&self, phi: f32, tau: f32) -> f32 {
        let Some(last) = self.last_beat else {
            return 0.0;
        };
        let now = (self.frame - 1) as f64;
        let anchor = now - phi as f64 - self.latency as f64;
        let d = ((anchor - last) / tau as f64).rem_euclid(1.0);
        let d = d.min(1.0 - d) as f32;
        (-0.5 * (d / 0.08).powi(2)).exp()
    }

    /// The comb over the last `beats` beats, all alike, with a beat `phi` frames ago.
    fn comb(&self, phi: f32, tau: f32, beats: usize) -> f32 {
        (0..beats)
            .map(|k| self.onsets.at(phi + k as f32 * tau))
            .sum()
    }

    /// How syncopated the last `beats` beats are with a beat `phi` frames ago: each 8th
    /// between two beats that is louder than the beat after it, and at SIXTEENTH_SYNCOPATION
    /// each 16th louder than the 8th or beat after it.
    fn syncopation(&self, phi: f32, tau: f32, beats: usize) -> f32 {
        let mut sync = 0.0;
        // `ago` runs back in time: the 16th, 8th and 16th that lead up to a beat lie τ/4,
        // τ/2 and 3τ/4 further back than it. Each read once.
        for k in 0..beats {
            let beat = phi + k as f32 * tau;
            let at = |q: f32| self.onsets.at(beat + q * tau);
            let (on, late16, eighth, early16) = (at(0.0), at(0.25), at(0.5), at(0.75));
            let sixteenths = (early16 - eighth).max(0.0) + (late16 - on).max(0.0);
            sync += (eighth - on).max(0.0) + SIXTEENTH_SYNCOPATION * sixteenths;
        }
        sync
    }

    /// How much more the snares alternate from beat to beat than from 8th to 8th, with a beat
    /// `phi` frames ago, against all the snares play there: -1..1. Snares and claps on 2 and 4
    /// make the beats alternate (kick, snare); the hats and the off-beat hats of the 8ths
    /// between them do not. Half a beat off, it is the other way round: a break whose kicks
    /// fall on the "and"s fits the comb there, but its snares are then on the 8ths.
    fn backbeat(&self, phi: f32, tau: f32, beats: usize) -> f32 {
        let at = |ago: f32| self.snares.at(ago);
        let (mut on_beats, mut on_eighths, mut all) = (0.0f32, 0.0f32, 0.0f32);
        // Two beats at a time: their difference, and the 8ths'.
        for pair in 0..beats / 2 {
            let first = phi + (2 * pair) as f32 * tau;
            let [b0, e0, b1, e1] = [0.0, 0.5, 1.0, 1.5].map(|q| at(first + q * tau));
            on_beats += b0 - b1;
            on_eighths += e0 - e1;
            all += b0 + e0 + b1 + e1;
        }
        if all <= 1e-12 {
            0.0
        } else {
            (on_beats.abs() - on_eighths.abs()) / all
        }
    }

    /// Of the best phase and the comb's peaks within a 32nd of a quarter, a half and three
    /// quarters of a beat from it, the one whose comb over a whole cycle (CHOICE_BEATS) less
    /// its syncopation, with its backbeat and the running grid's head start, is the highest.
    /// The fit places the beat; this says which of the metrical positions it is. A break whose
    /// kicks fall on the "and"s fits the comb half a beat off, but there every snare on 2 and 4
    /// is an 8th louder than the beat after it, and the snares alternate on the 8ths, not on
    /// the beats. Only peaks near those places compete: the flank of the best one is no
    /// metrical position (read within an 8th, a breakdown's pads moved the grid an 8th late).
    fn least_syncopated(&self, best: (f32, f32), scores: &[f32], tau: f32) -> (f32, f32) {
        let steps = scores.len();
        // The syncopation reads up to three quarters of a beat before the oldest beat.
        let beats = CHOICE_BEATS.min(self.beats_held(tau).saturating_sub(1));
        let best_comb = self.comb(best.0, tau, beats);
        let reach = (tau / 16.0) as usize;
        let mut pick = (best, f32::MIN);
        for q in 0..4 {
            let centre = (best.0 + q as f32 * tau / 4.0).round() as usize;
            let Some(c) = (0..=2 * reach)
                .map(|d| (centre + 2 * steps + d - reach) % steps)
                .filter(|&i| is_peak(scores, i))
                .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            else {
                continue;
            };
            // The running grid keeps a head start: another place must be clearly less
            // syncopated, not by a hair that the next hop takes back.
            let phi = c as f32;
            let running = self.on_running_grid(phi, tau);
            let value = self.comb(phi, tau, beats) * inertia(CHOICE_INERTIA, running)
                - SYNCOPATION * self.syncopation(phi, tau, beats)
                + BACKBEAT * best_comb * self.backbeat(phi, tau, beats)
                + SYNCOPATION_MARGIN * best_comb * running;
            if value > pick.1 {
                pick = ((c as f32, scores[c]), value);
            }
        }
        pick.0
    }

    /// Whether the drums have gone after having played: a breakdown. The tempo holds
    /// through one, since what plays there (pads, a riser) is no evidence of it.
    pub fn in_gap(&self) -> bool {
        self.gap
    }

    pub fn is_beat(&self) -> bool {
        self.beat
    }
}

/// The last values of a signal, newest first, each the best of itself and 0.7 × its
/// neighbours (±1 frame of jitter tolerated), kept twice over so that the fit reads any of
/// them straight from one slice: each hop writes two values, where rebuilding the history
/// newest-first cost a copy of every beat the choice weighs.
struct History {
    /// `len` values, then the same again.
    values: Vec<f32>,
    /// Where the newest value is, in the first copy.
    newest: usize,
    /// The newest two values as they came, newest first: the newest one's smoothing changes
    /// when the next arrives.
    raw: [f32; 2],
}

impl History {
    fn new(len: usize) -> Self {
        History {
            values: vec![0.0; 2 * len],
            newest: 0,
            raw: [0.0; 2],
        }
    }

    fn len(&self) -> usize {
        self.values.len() / 2
    }

    fn push(&mut self, value: f32) {
        // The value before this one, and the one before that.
        let [last, before] = self.raw;
        self.newest = (self.newest + 1) % self.len();
        self.set(0, with_jitter(value, 0.0, last));
        self.set(1, with_jitter(last, value, before));
        self.raw = [value, last];
    }

    fn set(&mut self, ago: usize, value: f32) {
        let len = self.len();
        let i = (self.newest + len - ago) % len;
        self.values[i] = value;
        self.values[i + len] = value;
    }

    /// The value `ago` frames before the newest (fractional: interpolated); 0 beyond.
    fn at(&self, ago: f32) -> f32 {
        let i = ago as usize;
        if ago < 0.0 || i + 1 >= self.len() {
            return 0.0;
        }
        let top = self.newest + self.len();
        let f = ago - i as f32;
        self.values[top - i] * (1.0 - f) + self.values[top - i - 1] * f
    }
}

/// The share of its score a phase keeps: all on the running grid (`running`, from
/// `BeatTracker::on_running_grid`, 1), `floor` half a beat off it (0).
fn inertia(floor: f32, running: f32) -> f32 {
    floor + (1.0 - floor) * running
}

/// A frame's value with ±1 frame of jitter tolerated: the best of it and 0.7 × its neighbours.
fn with_jitter(value: f32, newer: f32, older: f32) -> f32 {
    value.max(0.7 * newer).max(0.7 * older)
}

/// The beat is where its hits start: when a phase up to an eighth of a beat earlier (older)
/// fits the drums nearly as well as `best` before the inertia (`raw`) — a kick with a clap or
/// a flam just after it — the earliest such phase, as (phase, its score with the inertia).
/// Which of two such phases won was left to a hundredth of a frame in the period (a house clip
/// locked 75 ms late once its tempo was read exactly).
fn earliest_of_a_cluster(best: (f32, f32), scores: &[f32], raw: &[f32], tau: f32) -> (f32, f32) {
    let steps = scores.len();
    let b = best.0 as usize;
    (1..=(tau / 8.0) as usize)
        .rev()
        .map(|j| (b + j) % steps)
        .find(|&e| raw[e] >= EARLIER_TIE * raw[b] && is_peak(raw, e))
        .map_or(best, |e| (e as f32, scores[e]))
}

/// Whether phase `i` scores at least as well as both its neighbours (the phases wrap around).
fn is_peak(scores: &[f32], i: usize) -> bool {
    let n = scores.len();
    scores[i] >= scores[(i + n - 1) % n] && scores[i] >= scores[(i + 1) % n]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f32 = 86.13;
    /// 129 BPM.
    const TAU: usize = 40;
    const KICKS_END: usize = (10.0 * FPS) as usize;

    /// Ten seconds of kicks on the grid (phase 0), then ten of `texture`: a breakdown.
    /// Returns the frames of the beats given in the breakdown, and of the first frame the
    /// tracker called a gap.
    fn breakdown(mut texture: impl FnMut(usize) -> f32) -> (Vec<usize>, Option<usize>) {
        let mut t = BeatTracker::new(FPS, 0.0);
        let (mut beats, mut gap) = (Vec::new(), None);
        for i in 0..2 * KICKS_END {
            let onset = match i {
                i if i >= KICKS_END => texture(i),
                i if i % TAU == 0 => 1.0,
                _ => 0.05,
            };
            let beat = t.process(onset, 0.0, TAU as f32);
            if i < KICKS_END {
                assert!(!t.in_gap(), "a gap while the kicks play, at frame {i}");
            } else {
                if beat {
                    beats.push(i);
                }
                if t.in_gap() && gap.is_none() {
                    gap = Some(i);
                }
            }
        }
        (beats, gap)
    }

    /// Loud noise without a beat, as a pad or a riser makes.
    fn noise() -> impl FnMut(usize) -> f32 {
        let mut x = 0x2545_f491_u32;
        move |_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            0.1 + 0.02 * (x % 100) as f32 / 100.0
        }
    }

    #[test]
    fn a_breakdown_is_a_gap_while_the_grid_runs_on() {
        let (beats, gap) = breakdown(noise());
        let gap = gap.expect("the drums never counted as gone");
        // The fit sees the last kicks for FIT_BEATS beats; the gap comes soon after.
        let late = (gap - KICKS_END) as f64 / TAU as f64;
        assert!(
            late < FIT_BEATS as f64 + GAP_BEATS + 1.0,
            "the gap was seen {late} beats late"
        );
        // 10 s at 129 BPM is 21 beats: the grid ran on through the gap, on its phase.
        assert!(beats.len() >= 20, "{} beats in the breakdown", beats.len());
        assert!(
            beats.iter().all(|b| b % TAU <= 1 || b % TAU >= TAU - 1),
            "{beats:?}"
        );
    }

    #[test]
    fn a_pulse_off_the_grid_in_a_breakdown_does_not_move_it() {
        // A riser or a pad that swells a quarter beat off the grid: it stands out of the
        // noise, but nothing like the drums did, and the grid must not follow it.
        let mut texture = noise();
        let (beats, _) = breakdown(|i| texture(i) + if i % TAU == 10 { 0.1 } else { 0.0 });
        assert!(beats.len() >= 20, "{} beats in the breakdown", beats.len());
        let off: Vec<usize> = beats
            .iter()
            .copied()
            .filter(|b| b % TAU > 1 && b % TAU < TAU - 1)
            .collect();
        assert!(off.is_empty(), "beats off the grid at {off:?}");
    }
}
