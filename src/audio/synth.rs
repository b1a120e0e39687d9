//! Synthesized dance music with exact beat times: the evaluation corpus (`vj-audio gen-corpus`)
//! and the demo loop the worker plays when there is no capture device. Deterministic per seed.

use std::f32::consts::TAU;

/// The styles of the corpus: each stresses the tracker differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Genre {
    House,
    Techno,
    DrumAndBass,
    HipHop,
    Breakbeat,
    HalfTime,
    TempoRamp,
    Breakdown,
}

impl Genre {
    pub const ALL: [Genre; 8] = [
        Genre::House,
        Genre::Techno,
        Genre::DrumAndBass,
        Genre::HipHop,
        Genre::Breakbeat,
        Genre::HalfTime,
        Genre::TempoRamp,
        Genre::Breakdown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Genre::House => "house",
            Genre::Techno => "techno",
            Genre::DrumAndBass => "dnb",
            Genre::HipHop => "hiphop",
            Genre::Breakbeat => "breakbeat",
            Genre::HalfTime => "halftime",
            Genre::TempoRamp => "ramp",
            Genre::Breakdown => "breakdown",
        }
    }

    pub fn from_name(name: &str) -> Option<Genre> {
        Genre::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Kick on every beat.
    pub fn four_on_the_floor(self) -> bool {
        matches!(self, Genre::House | Genre::Techno | Genre::TempoRamp)
    }

    fn tempo_range(self) -> (f64, f64) {
        match self {
            Genre::House => (118.0, 128.0),
            Genre::Techno | Genre::Breakdown => (124.0, 135.0),
            Genre::DrumAndBass => (160.0, 176.0),
            Genre::HipHop => (85.0, 100.0),
            Genre::Breakbeat => (125.0, 140.0),
            Genre::HalfTime => (136.0, 150.0),
            Genre::TempoRamp => (118.0, 124.0),
        }
    }
}

/// A generated clip and its ground truth.
pub struct Clip {
    pub name: String,
    pub genre: Genre,
    pub rate: u32,
    pub samples: Vec<f32>,
    /// Every beat, in seconds.
    pub beats: Vec<f64>,
    /// The tempo at the end of the clip.
    pub tempo: f64,
}

/// xorshift: small, deterministic, good enough for noise and choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform noise sample in [-1, 1).
    pub fn noise(&mut self) -> f32 {
        (self.unit() * 2.0 - 1.0) as f32
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Simple state-variable filter (Chamberlin) for shaping noise and synths.
#[derive(Clone, Copy)]
struct Svf {
    low: f32,
    band: f32,
}

impl Svf {
    fn new() -> Self {
        Svf {
            low: 0.0,
            band: 0.0,
        }
    }
    /// Returns (low, band, high) for cutoff `f` (as 2 sin(pi fc/fs)) and damping `q`.
    fn tick(&mut self, x: f32, f: f32, q: f32) -> (f32, f32, f32) {
        self.low += f * self.band;
        let high = x - self.low - q * self.band;
        self.band += f * high;
        (self.low, self.band, high)
    }
}

fn coef(hz: f32, rate: f32) -> f32 {
    (2.0 * (std::f32::consts::PI * hz / rate).sin()).min(1.2)
}

/// Where the instruments are mixed: separate buses so the master can pump and compress.
struct Mix {
    rate: f32,
    drums: Vec<f32>,
    music: Vec<f32>,
    /// Kick envelope for side-chain pumping.
    side: Vec<f32>,
}

impl Mix {
    fn new(rate: u32, secs: f64) -> Self {
        let n = (secs * rate as f64) as usize;
        Mix {
            rate: rate as f32,
            drums: vec![0.0; n],
            music: vec![0.0; n],
            side: vec![0.0; n],
        }
    }

    fn at(&self, t: f64) -> usize {
        (t * self.rate as f64) as usize
    }

    fn kick(&mut self, t: f64, amp: f32, tone: f32, rng: &mut Rng) {
        let start = self.at(t);
        let len = (0.45 * self.rate) as usize;
        let mut phase = 0.0f32;
        let click = 0.3 + 0.3 * rng.unit() as f32;
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let f = tone + 110.0 * (-s / 0.03).exp();
            phase += TAU * f / self.rate;
            let env = (-s / 0.28).exp();
            let transient = if i < 200 {
                click * (1.0 - i as f32 / 200.0)
            } else {
                0.0
            };
            *d += amp * ((phase.sin() * 1.5).tanh() * env + transient * rng.noise());
            if let Some(sc) = self.side.get_mut(start + i) {
                *sc = sc.max((-s / 0.15).exp());
            }
        }
    }

    fn snare(&mut self, t: f64, amp: f32, rng: &mut Rng, decay: f32) {
        let start = self.at(t);
        let len = (decay * 4.0 * self.rate) as usize;
        let mut svf = Svf::new();
        let fc = coef(3000.0, self.rate);
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let (_, band, high) = svf.tick(rng.noise(), fc, 0.7);
            let body = (TAU * 185.0 * s).sin() * (-s / 0.05).exp();
            *d += amp * ((0.6 * band + 0.4 * high) * (-s / decay).exp() + 0.5 * body);
        }
    }

    fn clap(&mut self, t: f64, amp: f32, rng: &mut Rng) {
        let start = self.at(t);
        let len = (0.3 * self.rate) as usize;
        let mut svf = Svf::new();
        let fc = coef(1400.0, self.rate);
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            // Three quick bursts then a tail, like hands.
            let burst = if s < 0.03 {
                (-(s % 0.01) / 0.003).exp()
            } else {
                (-(s - 0.03) / 0.08).exp()
            };
            let (_, band, _) = svf.tick(rng.noise(), fc, 0.5);
            *d += amp * 1.5 * band * burst;
        }
    }

    fn hat(&mut self, t: f64, amp: f32, open: bool, rng: &mut Rng) {
        let start = self.at(t);
        let decay = if open { 0.18 } else { 0.035 };
        let len = (decay * 5.0 * self.rate) as usize;
        let mut svf = Svf::new();
        let fc = coef(7500.0, self.rate);
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let (_, _, high) = svf.tick(rng.noise(), fc, 0.4);
            *d += amp * high * (-s / decay).exp();
        }
    }

    /// A bass note: saw through a low-pass with a little envelope.
    fn bass(&mut self, t: f64, dur: f64, hz: f32, amp: f32, sub: bool) {
        let start = self.at(t);
        let len = (dur * self.rate as f64) as usize;
        let mut svf = Svf::new();
        let mut phase = 0.0f32;
        for i in 0..len {
            let Some(d) = self.music.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            phase = (phase + hz / self.rate) % 1.0;
            let x = if sub {
                (TAU * phase).sin()
            } else {
                2.0 * phase - 1.0
            };
            let fc = coef(200.0 + 900.0 * (-s / 0.08).exp(), self.rate);
            let (low, _, _) = svf.tick(x, fc, 0.6);
            let env = (s / 0.005).min(1.0) * (1.0 - (i as f32 / len as f32).powi(4));
            *d += amp * low * env;
        }
    }

    /// A chord of detuned saws; `attack` long for pads, short for stabs.
    fn chord(&mut self, t: f64, dur: f64, notes: &[f32], amp: f32, attack: f32, cutoff: f32) {
        let start = self.at(t);
        let len = (dur * self.rate as f64) as usize;
        let mut phases = [0.0f32; 12];
        let mut svf = Svf::new();
        let fc = coef(cutoff, self.rate);
        for i in 0..len {
            let Some(d) = self.music.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let mut x = 0.0;
            for (j, &hz) in notes.iter().enumerate().take(4) {
                for (k, det) in [0.997f32, 1.0, 1.004].into_iter().enumerate() {
                    let p = &mut phases[j * 3 + k];
                    *p = (*p + hz * det / self.rate) % 1.0;
                    x += 2.0 * *p - 1.0;
                }
            }
            let (low, _, _) = svf.tick(x / 6.0, fc, 0.8);
            let rel = ((len - i) as f32 / (0.05 * self.rate)).min(1.0);
            let env = (s / attack).min(1.0) * rel;
            *d += amp * low * env;
        }
    }

    /// Filtered noise rising over `dur` (the riser of a build-up).
    fn riser(&mut self, t: f64, dur: f64, amp: f32, rng: &mut Rng) {
        let start = self.at(t);
        let len = (dur * self.rate as f64) as usize;
        let mut svf = Svf::new();
        for i in 0..len {
            let Some(d) = self.music.get_mut(start + i) else {
                break;
            };
            let x = i as f32 / len as f32;
            let fc = coef(300.0 + 8000.0 * x * x, self.rate);
            let (_, band, _) = svf.tick(rng.noise(), fc, 0.3);
            *d += amp * band * x * x;
        }
    }

    /// Pumping, bus compression and a soft limiter, then normalised to -1 dBFS.
    fn master(self, pump: f32, rng: &mut Rng) -> Vec<f32> {
        let mut out: Vec<f32> = self
            .drums
            .iter()
            .zip(&self.music)
            .zip(&self.side)
            .map(|((&d, &m), &sc)| d + m * (1.0 - pump * sc))
            .collect();
        // A feed-forward compressor: 4:1 above -12 dB of the running peak.
        let mut env = 0.0f32;
        let peak = out.iter().fold(1e-6f32, |a, &x| a.max(x.abs()));
        let thr = 0.25 * peak;
        let (att, rel) = (
            1.0 - (-1.0 / (0.003 * self.rate)).exp(),
            1.0 - (-1.0 / (0.15 * self.rate)).exp(),
        );
        for x in out.iter_mut() {
            let a = x.abs();
            env += (a - env) * if a > env { att } else { rel };
            if env > thr {
                *x *= (thr + (env - thr) / 4.0) / env;
            }
        }
        let peak = out.iter().fold(1e-6f32, |a, &x| a.max(x.abs()));
        for x in out.iter_mut() {
            // Drive into a tanh limiter, then a faint noise floor.
            *x = (1.6 * *x / peak).tanh() * 0.89 + 0.0005 * rng.noise();
        }
        out
    }
}

/// Beat times for a tempo that moves linearly from `bpm0` to `bpm1` over `secs`.
fn beat_grid(bpm0: f64, bpm1: f64, secs: f64, start: f64) -> Vec<f64> {
    let mut beats = Vec::new();
    let mut t = start;
    while t < secs {
        beats.push(t);
        let bpm = bpm0 + (bpm1 - bpm0) * (t / secs);
        t += 60.0 / bpm;
    }
    beats
}

/// The time of a fractional beat position on the grid.
fn time_of(beats: &[f64], pos: f64) -> Option<f64> {
    let i = pos.floor() as usize;
    let (a, b) = (*beats.get(i)?, *beats.get(i + 1)?);
    Some(a + (pos - i as f64) * (b - a))
}

/// Swing: the off-beat 8th lands at `swing` of the beat (0.5 = straight).
fn swung(frac: f64, swing: f64) -> f64 {
    if frac < 0.5 {
        frac * 2.0 * swing
    } else {
        swing + (frac - 0.5) * 2.0 * (1.0 - swing)
    }
}

fn midi(n: f32) -> f32 {
    440.0 * 2f32.powf((n - 69.0) / 12.0)
}

/// Generates one clip of `genre` (`secs` long) from `seed`.
pub fn generate(genre: Genre, seed: u64, rate: u32, secs: f64) -> Clip {
    let mut rng = Rng::new(seed ^ (genre as u64) << 32);
    let (lo, hi) = genre.tempo_range();
    let bpm = (rng.range(lo, hi) * 2.0).round() / 2.0;
    let (bpm0, bpm1) = if genre == Genre::TempoRamp {
        (bpm, bpm + rng.range(6.0, 10.0))
    } else {
        (bpm, bpm)
    };
    let beats = beat_grid(bpm0, bpm1, secs, 0.0);
    let mut mix = Mix::new(rate, secs);
    let swing = if genre == Genre::HipHop {
        rng.range(0.58, 0.66)
    } else {
        0.5
    };
    let humanize = match genre {
        Genre::HipHop => 0.008,
        Genre::Breakbeat => 0.004,
        _ => 0.001,
    };
    let root = 36.0 + (rng.range(0.0, 12.0)).floor() as f32;
    // A minor-ish progression of four chords, one per bar.
    let prog: [f32; 4] = [0.0, [3.0, 5.0, 8.0][rng.next_u64() as usize % 3], 7.0, 10.0];
    let kick_tone = rng.range(42.0, 55.0) as f32;
    let bars = beats.len() / 4;
    // Breakdown: drums out for 8 bars from a third of the clip (beats keep coming).
    let (bd_start, bd_end) = if genre == Genre::Breakdown {
        let s = bars / 3;
        (s, s + 8)
    } else {
        (usize::MAX, usize::MAX)
    };
    let hit = |rng: &mut Rng, pos: f64| -> Option<f64> {
        let frac = pos.fract();
        let p = pos.floor() + swung(frac, swing);
        time_of(&beats, p).map(|t| (t + humanize * rng.range(-1.0, 1.0)).max(0.0))
    };
    // Per-genre drum pattern over one bar in 16th steps: kick, snare/clap, closed hat, open hat.
    let (kicks, snares, hats, open): (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) = match genre {
        Genre::House | Genre::TempoRamp => (
            vec![0, 4, 8, 12],
            vec![4, 12],
            (0..16).filter(|s| s % 2 == 0 || rng.chance(0.5)).collect(),
            vec![2, 6, 10, 14],
        ),
        Genre::Techno | Genre::Breakdown => (
            vec![0, 4, 8, 12],
            if rng.chance(0.5) { vec![4, 12] } else { vec![] },
            (0..16).collect(),
            vec![2, 6, 10, 14],
        ),
        Genre::DrumAndBass => (
            if rng.chance(0.5) {
                vec![0, 10]
            } else {
                vec![0, 7, 10]
            },
            vec![4, 12],
            (0..16).filter(|s| s % 2 == 0).collect(),
            vec![],
        ),
        Genre::HipHop => (
            [vec![0, 7, 10], vec![0, 3, 8, 10], vec![0, 8, 11]][rng.next_u64() as usize % 3]
                .clone(),
            vec![4, 12],
            (0..16).filter(|s| s % 2 == 0).collect(),
            vec![],
        ),
        Genre::Breakbeat => (
            vec![0, 6, 10],
            vec![4, 12],
            (0..16).filter(|s| s % 2 == 0).collect(),
            vec![14],
        ),
        Genre::HalfTime => (
            vec![0, 3],
            vec![8],
            (0..16).filter(|s| s % 2 == 0 || rng.chance(0.35)).collect(),
            vec![],
        ),
    };
    let clap = matches!(
        genre,
        Genre::House | Genre::TempoRamp | Genre::Techno | Genre::Breakdown
    );
    for bar in 0..bars {
        let b0 = (bar * 4) as f64;
        let drums = !(bd_start..bd_end).contains(&bar);
        let fill = bar % 8 == 7;
        let chord: Vec<f32> = [0.0, 3.0, 7.0, 10.0]
            .iter()
            .map(|i| midi(root + 24.0 + prog[bar % 4] + i))
            .collect();
        if drums {
            for &s in &kicks {
                // A fill drops the last kicks and rolls the snare instead.
                if fill && s >= 12 && genre != Genre::HalfTime {
                    continue;
                }
                if let Some(t) = hit(&mut rng, b0 + s as f64 / 4.0) {
                    mix.kick(t, 0.9, kick_tone, &mut rng);
                }
            }
            for &s in &snares {
                if let Some(t) = hit(&mut rng, b0 + s as f64 / 4.0) {
                    if clap {
                        mix.clap(t, 0.5, &mut rng);
                    } else {
                        mix.snare(t, 0.6, &mut rng, 0.12);
                    }
                }
            }
            // Ghost snares in the broken styles.
            if matches!(genre, Genre::HipHop | Genre::Breakbeat | Genre::DrumAndBass) {
                for s in [5u32, 9, 14, 15] {
                    if rng.chance(0.25) {
                        if let Some(t) = hit(&mut rng, b0 + s as f64 / 4.0) {
                            mix.snare(t, 0.15, &mut rng, 0.06);
                        }
                    }
                }
            }
            for &s in &hats {
                if fill && s >= 12 {
                    continue;
                }
                let accent = if s % 4 == 2 { 0.22 } else { 0.14 };
                if let Some(t) = hit(&mut rng, b0 + s as f64 / 4.0) {
                    mix.hat(t, accent, false, &mut rng);
                }
            }
            for &s in &open {
                if let Some(t) = hit(&mut rng, b0 + s as f64 / 4.0) {
                    mix.hat(t, 0.18, true, &mut rng);
                }
            }
            if fill {
                // A snare roll over the last beat, in 16ths (32nds in D&B and half-time).
                let n = if matches!(genre, Genre::DrumAndBass | Genre::HalfTime) {
                    8
                } else {
                    4
                };
                for k in 0..n {
                    let pos = b0 + 3.0 + k as f64 / n as f64;
                    if let Some(t) = hit(&mut rng, pos) {
                        mix.snare(t, 0.25 + 0.1 * k as f32 / n as f32, &mut rng, 0.08);
                    }
                }
            }
            // Bass line on the genre's groove.
            let bass_steps: &[u32] = match genre {
                Genre::House | Genre::TempoRamp | Genre::Techno | Genre::Breakdown => {
                    &[2, 6, 10, 14]
                }
                Genre::HalfTime => &[0],
                _ => &[0, 6, 10],
            };
            for &s in bass_steps {
                let pos = b0 + s as f64 / 4.0;
                if let (Some(t), Some(t2)) = (hit(&mut rng, pos), time_of(&beats, pos + 0.45)) {
                    let sub = matches!(genre, Genre::HalfTime | Genre::DrumAndBass);
                    let dur = if genre == Genre::HalfTime {
                        1.6 * (t2 - t) * 4.0
                    } else {
                        t2 - t
                    };
                    mix.bass(t, dur, midi(root + prog[bar % 4]), 0.45, sub);
                }
            }
            // Chord stabs (house) or a held chord.
            if let (Some(t), Some(t_end)) = (time_of(&beats, b0), time_of(&beats, b0 + 4.0)) {
                if matches!(genre, Genre::House | Genre::TempoRamp) {
                    for s in [3u32, 6, 11] {
                        if let Some(ts) = time_of(&beats, b0 + s as f64 / 4.0) {
                            mix.chord(ts, 0.12, &chord, 0.16, 0.004, 2500.0);
                        }
                    }
                } else {
                    mix.chord(t, t_end - t, &chord, 0.08, 0.3, 1200.0);
                }
            }
        } else if let (Some(t), Some(t_end)) = (time_of(&beats, b0), time_of(&beats, b0 + 4.0)) {
            // Breakdown: pads and, in its second half, a riser.
            mix.chord(t, t_end - t, &chord, 0.22, 0.8, 1800.0);
            if bar == bd_start + 4 {
                if let Some(te) = time_of(&beats, (bd_end * 4) as f64) {
                    mix.riser(t, te - t, 0.25, &mut rng);
                }
            }
        }
    }
    let pump = if genre.four_on_the_floor() || genre == Genre::Breakdown {
        0.6
    } else {
        0.2
    };
    let samples = mix.master(pump, &mut rng);
    Clip {
        name: format!("{}-{:02}", genre.name(), seed),
        genre,
        rate,
        samples,
        beats,
        tempo: bpm1,
    }
}

/// The demo loop: eight bars of house at 124 BPM, looped by the worker.
pub fn demo_loop(rate: u32) -> Vec<f32> {
    let secs = 8.0 * 4.0 * 60.0 / 124.0;
    let mut rng = Rng::new(7);
    let beats = beat_grid(124.0, 124.0, secs + 1.0, 0.0);
    let mut mix = Mix::new(rate, secs);
    for (i, &t) in beats.iter().enumerate().take(32) {
        mix.kick(t, 0.9, 48.0, &mut rng);
        if i % 2 == 1 {
            mix.clap(t, 0.5, &mut rng);
        }
        let off = t + 30.0 / 124.0;
        mix.hat(off, 0.18, true, &mut rng);
        mix.bass(
            off,
            0.2,
            midi(41.0 + [0.0, 0.0, 3.0, 5.0][(i / 8) % 4]),
            0.45,
            false,
        );
    }
    mix.master(0.5, &mut rng)
}

/// Writes a clip as 16-bit WAV plus `name.beats` (one time per line, a `# genre tempo` header).
pub fn write_clip(dir: &std::path::Path, clip: &Clip) -> std::io::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: clip.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let path = dir.join(format!("{}.wav", clip.name));
    let mut w = hound::WavWriter::create(&path, spec).map_err(std::io::Error::other)?;
    for &x in &clip.samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
            .map_err(std::io::Error::other)?;
    }
    w.finalize().map_err(std::io::Error::other)?;
    let mut text = format!("# {} {:.3}\n", clip.genre.name(), clip.tempo);
    for b in &clip.beats {
        text.push_str(&format!("{b:.4}\n"));
    }
    std::fs::write(dir.join(format!("{}.beats", clip.name)), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_deterministic_loud_and_annotated() {
        let a = generate(Genre::House, 3, 22_050, 6.0);
        let b = generate(Genre::House, 3, 22_050, 6.0);
        assert_eq!(a.samples, b.samples);
        let peak = a.samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        assert!(peak > 0.5 && peak <= 1.0, "peak {peak}");
        let period = a.beats[1] - a.beats[0];
        assert!((60.0 / period - a.tempo).abs() < 0.01);
    }

    #[test]
    fn a_ramp_speeds_up() {
        let c = generate(Genre::TempoRamp, 1, 22_050, 20.0);
        let first = c.beats[1] - c.beats[0];
        let n = c.beats.len();
        let last = c.beats[n - 1] - c.beats[n - 2];
        assert!(last < first * 0.97, "{first} → {last}");
    }
}
