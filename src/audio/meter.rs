//! Musical time as it goes out: which hop carries a beat (on the grid the beat tracker fits, or
//! on a Link session's timeline), each beat's place in its bar and phrase, and the beat, bar
//! and phrase phase of every hop. Everything in seconds of stream time; `latency` sends beats
//! and phases that much early (predicted from the grid), a nudge moves the grid.

use super::beat::Grid;

/// A Link session's timeline, as seen from the stream: at stream time `at` the session's beat
/// is `beat`, and it runs at `bpm`; beat 0 of each `quantum` is a downbeat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub at: f64,
    pub beat: f64,
    pub bpm: f64,
    pub quantum: f64,
}

impl Timeline {
    fn period(&self) -> f64 {
        60.0 / self.bpm
    }

    /// The session's beat at stream time `t`.
    pub fn beat_at(&self, t: f64) -> f64 {
        self.beat + (t - self.at) / self.period()
    }

    fn grid(&self) -> Grid {
        Grid {
            anchor: self.at - self.beat.rem_euclid(1.0) * self.period(),
            period: self.period(),
        }
    }
}

/// What the meter sends for one hop.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tick {
    /// The beat this hop carries: its time in seconds of stream time (where it sounds; it is
    /// sent `latency` earlier).
    pub beat: Option<f64>,
    /// beat in bar 1..N, bar in phrase 1..P, phrases since lock (on beats).
    pub count: [i32; 3],
    /// beat, bar and phrase phase (0..1), downbeat confidence.
    pub phase: [f32; 4],
}

pub struct Meter {
    beats_per_bar: u32,
    phrase_bars: u32,
    /// Seconds beats and phases go out early (negative: late).
    latency: f64,
    /// Seconds the output grid is moved from the tracked one (positive: later).
    nudge: f64,
    /// The last beat sent, on the grid (without the nudge), and its number.
    last: Option<f64>,
    number: i64,
    period: f64,
    /// Its place: beat in bar (1..N), bars since lock, the bar that began the current phrase.
    in_bar: u32,
    bars: i64,
    phrase_start: i64,
    phrases: i32,
    /// A phrase should start at the next downbeat (a drop).
    phrase_due: bool,
    /// The last beat's count, as sent.
    count: [i32; 3],
}

impl Meter {
    pub fn new(beats_per_bar: u32, phrase_bars: u32, latency: f64) -> Self {
        Meter {
            beats_per_bar: beats_per_bar.max(1),
            phrase_bars: phrase_bars.max(1),
            latency,
            nudge: 0.0,
            last: None,
            number: -1,
            period: 0.5,
            in_bar: 0,
            // The first downbeat begins bar 0, the first phrase.
            bars: -1,
            phrase_start: 0,
            phrases: 0,
            phrase_due: false,
            count: [0; 3],
        }
    }

    pub fn set_shape(&mut self, beats_per_bar: u32, phrase_bars: u32, latency: f64) {
        self.beats_per_bar = beats_per_bar.max(1);
        self.phrase_bars = phrase_bars.max(1);
        self.latency = latency;
    }

    pub fn nudge(&mut self, secs: f64) {
        self.nudge += secs;
    }

    pub fn nudged(&self) -> f64 {
        self.nudge
    }

    /// The number of the last beat sent, and its time (on the grid, nudged), if any.
    pub fn last_beat(&self) -> Option<(i64, f64)> {
        self.last.map(|t| (self.number, t + self.nudge))
    }

    /// The next beat the meter will send, as (number, time): the bar tracker gathers its
    /// evidence before it is placed.
    pub fn next_beat(&self) -> Option<(i64, f64)> {
        self.last
            .map(|t| (self.number + 1, t + self.period + self.nudge))
    }

    /// A drop after a build-up or a breakdown: the phrase starts again at the downbeat nearest
    /// `at` (seconds): the current bar if it began at most half a bar before, else the next.
    pub fn drop_at(&mut self, at: f64) {
        let Some(last) = self.last else {
            return;
        };
        let bar_start = last - (self.in_bar.max(1) - 1) as f64 * self.period;
        if at - bar_start <= 0.5 * self.beats_per_bar as f64 * self.period {
            if self.bars != self.phrase_start {
                self.phrase_start = self.bars;
                self.phrases += 1;
            }
        } else {
            self.phrase_due = true;
        }
    }

    /// The current beat (the one sent last, or the next when it is nearer `at`) is a
    /// downbeat and starts a phrase. Returns the beat number that is now a "1".
    pub fn resync(&mut self, at: f64) -> Option<i64> {
        let last = self.last? + self.nudge;
        let next_nearer = at - last > 0.5 * self.period;
        if next_nearer {
            // The next beat is the "1": the bar ends with this one.
            self.in_bar = self.beats_per_bar;
            self.phrase_due = true;
            Some(self.number + 1)
        } else {
            if self.in_bar != 1 {
                self.bars += 1;
            }
            self.in_bar = 1;
            if self.bars != self.phrase_start {
                self.phrase_start = self.bars;
                self.phrases += 1;
            }
            self.count = self.counts();
            Some(self.number)
        }
    }

    fn counts(&self) -> [i32; 3] {
        let in_phrase = (self.bars - self.phrase_start).rem_euclid(self.phrase_bars as i64) + 1;
        [self.in_bar as i32, in_phrase as i32, self.phrases]
    }

    /// One hop ending at `now` (seconds), `hop` seconds long, on `grid`; `downbeat` is the
    /// beat number (mod beats_per_bar) the bar tracker calls "1", with its confidence; or the
    /// session's `timeline`, which then decides beats and bars.
    pub fn tick(
        &mut self,
        now: f64,
        hop: f64,
        grid: Option<Grid>,
        downbeat: (usize, f32),
        timeline: Option<&Timeline>,
    ) -> Tick {
        let grid = timeline.map(|t| t.grid()).or(grid);
        let mut beat = None;
        if let Some(g) = grid {
            self.period = g.period;
            // Beats due before the next hop, in grid time: sent `latency` early, moved by
            // the nudge.
            let horizon = now + hop + self.latency - self.nudge;
            let next = match self.last {
                Some(last) => g.next_after(last + 0.5 * g.period),
                // The first beat: the next grid point from this hop on.
                None => g.next_after(horizon - hop),
            };
            if next < horizon {
                // The grid moved past a beat never sent: skip it rather than send it late.
                let stale = next < horizon - hop - 0.2 * g.period;
                self.last = Some(next);
                if !stale {
                    beat = Some(next + self.nudge);
                    self.place(next, downbeat.0, timeline);
                }
            }
        }
        let confidence = if timeline.is_some() { 1.0 } else { downbeat.1 };
        let phase = match (self.last, beat) {
            (Some(_), Some(_)) => 0.0,
            (Some(last), None) => {
                let at = now + self.latency - self.nudge;
                ((at - last) / self.period).clamp(0.0, 0.999) as f32
            }
            (None, _) => 0.0,
        };
        let n = self.beats_per_bar as f32;
        let in_bar = self.in_bar.max(1) as f32;
        let bar = ((in_bar - 1.0 + phase) / n).clamp(0.0, 0.999);
        let in_phrase = self.count[1].max(1) as f32;
        let phrase = ((in_phrase - 1.0 + bar) / self.phrase_bars as f32).clamp(0.0, 0.999);
        Tick {
            beat,
            count: self.count,
            phase: [phase, bar, phrase, confidence],
        }
    }

    /// Gives the beat at grid time `at` its number and its place in bar and phrase.
    fn place(&mut self, at: f64, downbeat: usize, timeline: Option<&Timeline>) {
        self.number += 1;
        let n = self.beats_per_bar;
        let in_bar = match timeline {
            Some(t) => {
                let b = t.beat_at(at).round();
                self.number = b as i64;
                (b.rem_euclid(t.quantum.max(1.0)) as u32 % n) + 1
            }
            None => ((self.number - downbeat as i64).rem_euclid(n as i64) as u32) + 1,
        };
        if in_bar == 1 || in_bar <= self.in_bar && self.in_bar != 0 {
            // A new bar (also when the bar's phase moved and its "1" was skipped).
            self.bars += 1;
            if self.phrase_due || (self.bars - self.phrase_start) % self.phrase_bars as i64 == 0 {
                if self.phrase_due || self.bars != self.phrase_start {
                    self.phrases += 1;
                }
                self.phrase_start = self.bars;
                self.phrase_due = false;
            }
        }
        self.in_bar = in_bar;
        self.count = self.counts();
    }
}

/// Tap tempo: three or more taps, each within 2 s of the one before, give a tempo and a phase
/// (a line fitted through them, so one early or late tap moves neither much).
#[derive(Debug, Default)]
pub struct Taps {
    times: Vec<f64>,
}

impl Taps {
    /// A tap at `t` seconds; returns (beat period s, the time of the last tap on the fitted
    /// line) once there are three.
    pub fn tap(&mut self, t: f64) -> Option<(f64, f64)> {
        if self.times.last().is_some_and(|&l| t - l > 2.0 || t <= l) {
            self.times.clear();
        }
        self.times.push(t);
        if self.times.len() > 16 {
            self.times.remove(0);
        }
        let n = self.times.len();
        if n < 3 {
            return None;
        }
        // Least squares of time against tap index.
        let mean_i = (n - 1) as f64 / 2.0;
        let mean_t = self.times.iter().sum::<f64>() / n as f64;
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &x) in self.times.iter().enumerate() {
            let di = i as f64 - mean_i;
            num += di * (x - mean_t);
            den += di * di;
        }
        let period = num / den;
        let last = mean_t + period * ((n - 1) as f64 - mean_i);
        (period > 0.2 && period < 2.0).then_some((period, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: f64 = 512.0 / 44_100.0;

    /// Runs a meter on a fixed grid for `secs`, with bar phase `downbeat`; the beats it sent
    /// and their counts.
    fn run(m: &mut Meter, grid: Grid, downbeat: usize, secs: f64) -> Vec<(f64, [i32; 3])> {
        let mut out = Vec::new();
        let mut now = HOP;
        while now < secs {
            let t = m.tick(now, HOP, Some(grid), (downbeat, 1.0), None);
            if let Some(b) = t.beat {
                out.push((b, t.count));
            }
            now += HOP;
        }
        out
    }

    #[test]
    fn beats_come_early_by_the_latency_and_count_through_bars_and_phrases() {
        let grid = Grid {
            anchor: 0.25,
            period: 0.5,
        };
        let mut m = Meter::new(4, 2, 0.05);
        let mut sent = Vec::new();
        let mut now = HOP;
        while now < 10.0 {
            if let Some(b) = m.tick(now, HOP, Some(grid), (0, 1.0), None).beat {
                // Sent on the hop that ends before its send time (b - latency) is past.
                assert!(
                    b - 0.05 >= now - 1e-9 && b - 0.05 < now + HOP,
                    "{b} at {now}"
                );
                sent.push(b);
            }
            now += HOP;
        }
        assert!((sent[0] - 0.25).abs() < 1e-9, "{sent:?}");
        assert!(sent.windows(2).all(|w| (w[1] - w[0] - 0.5).abs() < 1e-9));
        let mut m = Meter::new(4, 2, 0.0);
        let beats = run(&mut m, grid, 1, 10.0);
        // Beat numbers 0, 1, 2…; number 1 is the downbeat.
        assert_eq!(beats[0].1[0], 4);
        assert_eq!(beats[1].1, [1, 1, 0]);
        assert_eq!(beats[5].1, [1, 2, 0]);
        assert_eq!(beats[9].1, [1, 1, 1]);
    }

    #[test]
    fn a_nudge_moves_the_beats_and_resync_makes_a_downbeat() {
        let grid = Grid {
            anchor: 0.0,
            period: 0.5,
        };
        let mut m = Meter::new(4, 8, 0.0);
        let before = run(&mut m, grid, 0, 3.0);
        m.nudge(0.03);
        let after = run(&mut m, grid, 0, 6.0);
        let later = after
            .iter()
            .filter(|(t, _)| *t > 3.5)
            .map(|(t, _)| t.rem_euclid(0.5));
        for x in later {
            assert!((x - 0.03).abs() < 1e-9, "{x}");
        }
        assert!(before.len() >= 5);
        // resync on a beat that was a 3: it is now a 1.
        let (n, _) = m.last_beat().unwrap();
        let at = m.last_beat().unwrap().1 + 0.01;
        assert_eq!(m.resync(at), Some(n));
        let next = run(&mut m, grid, (n as usize) % 4, 8.0);
        assert_eq!(next[0].1[0], 2);
        assert_eq!(next[3].1[0], 1);
    }

    #[test]
    fn a_timeline_decides_beats_and_bars() {
        // 128 BPM, beat 6.5 of the session at 1.0 s: beats at 1.0 + (k - 6.5) × 0.46875.
        let tl = Timeline {
            at: 1.0,
            beat: 6.5,
            bpm: 128.0,
            quantum: 4.0,
        };
        let mut m = Meter::new(4, 8, 0.0);
        let mut now = HOP;
        let mut beats = Vec::new();
        while now < 5.0 {
            let t = m.tick(now, HOP, None, (0, 0.0), Some(&tl));
            if let Some(b) = t.beat {
                beats.push((b, t.count[0]));
            }
            now += HOP;
        }
        for &(b, pos) in &beats {
            let beat = tl.beat_at(b);
            assert!((beat - beat.round()).abs() < 1e-9, "{b}: beat {beat}");
            assert_eq!(pos, (beat.round() as i64).rem_euclid(4) as i32 + 1);
        }
    }

    #[test]
    fn taps_fit_a_tempo_and_a_phase() {
        let mut t = Taps::default();
        assert_eq!(t.tap(10.0), None);
        assert_eq!(t.tap(10.51), None);
        let (p, last) = t.tap(10.99).unwrap();
        assert!((p - 0.495).abs() < 0.01, "{p}");
        assert!((last - 10.995).abs() < 0.01, "{last}");
        // A pause of more than 2 s starts again.
        assert_eq!(t.tap(14.0), None);
    }
}
