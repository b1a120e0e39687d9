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
    /// Each beat's place in its bar, 1 = downbeat (4/4 throughout).
    pub positions: Vec<u32>,
    /// Every drum hit: when, which drum, how hard (the amplitude it was mixed at).
    pub hits: Vec<Hit>,
    /// The right channel of a stereo clip (`samples` is then the mono mix; `left` the left).
    pub stereo: Option<(Vec<f32>, Vec<f32>)>,
    /// The tempo at the end of the clip.
    pub tempo: f64,
    /// When the drums return after the breakdown (breakdown clips only).
    pub drop: Option<f64>,
}

/// The drums whose hits `/audio/kick`, `/audio/snare` and `/audio/hat` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drum {
    Kick,
    /// Snares, claps and rimshots: the backbeat.
    Snare,
    /// Closed and open hats, shakers.
    Hat,
}

/// A drum hit of the ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub time: f64,
    pub drum: Drum,
    pub amp: f32,
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
    /// The time of the first sample (≤ 0: a pickup before the clip starts is rendered too, so
    /// that what rings over into the clip is there).
    origin: f64,
    drums: Vec<f32>,
    music: Vec<f32>,
    /// Kick envelope for side-chain pumping.
    side: Vec<f32>,
    /// Every drum hit at or after time 0.
    hits: Vec<Hit>,
}

impl Mix {
    fn new(rate: u32, secs: f64) -> Self {
        Mix::starting(rate, secs, 0.0)
    }

    fn starting(rate: u32, secs: f64, origin: f64) -> Self {
        let n = ((secs - origin) * rate as f64) as usize;
        Mix {
            rate: rate as f32,
            origin,
            drums: vec![0.0; n],
            music: vec![0.0; n],
            side: vec![0.0; n],
            hits: Vec::new(),
        }
    }

    fn at(&self, t: f64) -> usize {
        ((t - self.origin) * self.rate as f64) as usize
    }

    fn record(&mut self, t: f64, drum: Drum, amp: f32) {
        if t >= 0.0 {
            self.hits.push(Hit { time: t, drum, amp });
        }
    }

    fn kick(&mut self, t: f64, amp: f32, tone: f32, rng: &mut Rng) {
        self.record(t, Drum::Kick, amp);
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
        self.record(t, Drum::Snare, amp);
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
        self.record(t, Drum::Snare, amp);
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
        self.record(t, Drum::Hat, amp);
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

    /// The other kicks of the harder corpus: an 808 (a long sine boom with a slow glide) and
    /// a short, clicky acoustic one.
    fn kick_kind(&mut self, t: f64, amp: f32, tone: f32, kind: Kit, rng: &mut Rng) {
        if kind.kick == 0 {
            return self.kick(t, amp, tone, rng);
        }
        self.record(t, Drum::Kick, amp);
        let start = self.at(t);
        let (decay, sweep, sweep_t, click): (f32, f32, f32, f32) = match kind.kick {
            1 => (0.7, 60.0, 0.06, 0.1),
            _ => (0.12, 160.0, 0.015, 0.6),
        };
        let len = ((decay * 4.0).min(1.2) * self.rate) as usize;
        let mut phase = 0.0f32;
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let f = tone + sweep * (-s / sweep_t).exp();
            phase += TAU * f / self.rate;
            let env = (-s / decay).exp();
            let transient = click * (-s / 0.004).exp() * rng.noise();
            *d += amp * ((phase.sin() * 1.2).tanh() * env + transient);
            if let Some(sc) = self.side.get_mut(start + i) {
                *sc = sc.max((-s / 0.15).exp());
            }
        }
    }

    /// Snares beyond the classic one: a rimshot (bright and short) and a lo-fi snare (dark,
    /// long, no body); `kind.snare == 0` is the classic snare.
    fn snare_kind(&mut self, t: f64, amp: f32, decay: f32, kind: Kit, rng: &mut Rng) {
        if kind.snare == 0 {
            return self.snare(t, amp, rng, decay);
        }
        self.record(t, Drum::Snare, amp);
        let start = self.at(t);
        let (hz, body_hz, decay) = match kind.snare {
            1 => (5200.0, 240.0, decay * 0.6),
            _ => (1800.0, 0.0, decay * 1.5),
        };
        let len = (decay * 5.0 * self.rate) as usize;
        let mut svf = Svf::new();
        let fc = coef(hz, self.rate);
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let (low, band, _) = svf.tick(rng.noise(), fc, 0.6);
            let tone = if body_hz > 0.0 {
                band + 0.7 * (TAU * body_hz * s).sin() * (-s / 0.02).exp()
            } else {
                0.5 * low + 0.5 * band
            };
            *d += amp * 1.2 * tone * (-s / decay).exp();
        }
    }

    /// Hats beyond the noise hat: an 808-style metallic one (six detuned squares) and a
    /// shaker (band-passed noise with a soft attack, hard to place).
    fn hat_kind(&mut self, t: f64, amp: f32, open: bool, kind: Kit, rng: &mut Rng) {
        if kind.hat == 0 {
            return self.hat(t, amp, open, rng);
        }
        self.record(t, Drum::Hat, amp);
        let start = self.at(t);
        let decay = if open { 0.2 } else { 0.04 };
        let len = (decay * 5.0 * self.rate) as usize;
        let mut svf = Svf::new();
        let fc = coef(if kind.hat == 1 { 8000.0 } else { 5500.0 }, self.rate);
        const METAL: [f32; 6] = [205.3, 304.4, 369.6, 522.7, 540.0, 800.0];
        for i in 0..len {
            let Some(d) = self.drums.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let (x, env) = if kind.hat == 1 {
                let x = METAL
                    .iter()
                    .map(|&f| {
                        if (f * 2.1 * s).fract() < 0.5 {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                    .sum::<f32>()
                    / 6.0;
                (x, (-s / decay).exp())
            } else {
                (
                    rng.noise(),
                    (s / 0.008).min(1.0) * (-s / (decay * 1.5)).exp(),
                )
            };
            let (_, band, high) = svf.tick(x, fc, 0.5);
            let y = if kind.hat == 1 { high } else { band };
            *d += amp * 1.3 * y * env;
        }
    }

    /// The chord instruments of the harder corpus: an electric piano (FM, decaying), an organ
    /// (additive, no attack transient) and a pluck (a saw through a closing filter).
    fn keys(&mut self, t: f64, dur: f64, notes: &[f32], amp: f32, instrument: u32) {
        let start = self.at(t);
        let len = (dur * self.rate as f64) as usize;
        let mut svf = Svf::new();
        let mut phases = [0.0f32; 4];
        for i in 0..len {
            let Some(d) = self.music.get_mut(start + i) else {
                break;
            };
            let s = i as f32 / self.rate;
            let mut x = 0.0;
            for (p, &hz) in phases.iter_mut().zip(notes) {
                *p = (*p + hz / self.rate) % 1.0;
                let w = TAU * *p;
                x += match instrument {
                    1 => (w + 1.5 * (-s / 0.3).exp() * (2.0 * w).sin()).sin() * (-s / 1.2).exp(),
                    2 => w.sin() + 0.5 * (2.0 * w).sin() + 0.3 * (3.0 * w).sin(),
                    _ => 2.0 * *p - 1.0,
                };
            }
            let x = if instrument == 3 {
                let fc = coef(300.0 + 4000.0 * (-s / 0.12).exp(), self.rate);
                svf.tick(x, fc, 0.7).0 * (-s / 0.4).exp()
            } else {
                x
            };
            let rel = ((len - i) as f32 / (0.03 * self.rate)).min(1.0);
            let att = (s / 0.01).min(1.0);
            *d += amp * 0.3 * x * att * rel;
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

    /// Pumping, bus compression and a soft limiter, then normalised to -1 dBFS; what was
    /// rendered before time 0 is cut. `haas`: the music's right channel this many seconds
    /// behind its left (a stereo widener; the mono mix of it is comb-filtered, as real ones are),
    /// giving (left, right); else the mono mix in both.
    fn master(self, pump: f32, rng: &mut Rng) -> Vec<f32> {
        self.master_stereo(pump, 0.0, rng).0
    }

    fn master_stereo(
        mut self,
        pump: f32,
        haas: f64,
        rng: &mut Rng,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let skip = ((-self.origin) * self.rate as f64) as usize;
        let mono = |drums: &[f32], music: &[f32], side: &[f32], delay: usize| -> Vec<f32> {
            (0..drums.len())
                .map(|i| {
                    let m = if i >= delay { music[i - delay] } else { 0.0 };
                    drums[i] + m * (1.0 - pump * side[i])
                })
                .collect()
        };
        let right = (haas > 0.0).then(|| {
            let delay = (haas * self.rate as f64) as usize;
            mono(&self.drums, &self.music, &self.side, delay)
        });
        let out = mono(&self.drums, &self.music, &self.side, 0);
        self.drums = Vec::new();
        let out = self.compress(out, skip, rng);
        let right = right.map(|r| self.compress(r, skip, rng));
        (out, right)
    }

    fn compress(&self, mut out: Vec<f32>, skip: usize, rng: &mut Rng) -> Vec<f32> {
        out.drain(..skip.min(out.len()));
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

/// The drum sounds of a clip of the harder corpus (0 = the classic sound).
#[derive(Debug, Clone, Copy, Default)]
struct Kit {
    kick: u32,
    snare: u32,
    hat: u32,
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

/// Generates one clip of `genre` (`secs` long) from `seed`: the classic corpus, on which the
/// tracker was tuned until 2026-11-30 (its clips are kept as they were).
pub fn generate(genre: Genre, seed: u64, rate: u32, secs: f64) -> Clip {
    render(genre, seed, rate, secs, false)
}

/// A clip of the harder corpus: the clip starts anywhere in a bar (not on a downbeat), hip-hop
/// swings 54–70 % (8ths or 16ths) with ghost snares and hats on the swung 16ths and laid-back
/// kicks, drums, bass and keys come in several timbres, the music is stereo (a Haas widener),
/// and the master gets noise at 15–40 dB SNR and, often for hip-hop, lo-fi filtering.
pub fn generate_hard(genre: Genre, seed: u64, rate: u32, secs: f64) -> Clip {
    render(genre, seed, rate, secs, true)
}

/// What `hard` adds to a clip, drawn from its own generator so the classic clips stay as they
/// were.
struct Realism {
    kit: Kit,
    /// 0 = saw chords (classic), 1 = electric piano, 2 = organ, 3 = pluck.
    keys: u32,
    /// Swing of the 16ths instead of the 8ths.
    swing16: bool,
    /// Seconds the kicks sit behind the grid.
    laid_back: f64,
    /// Seconds the music's right channel lags its left.
    haas: f64,
    snr_db: f32,
    /// Pink rather than white noise.
    pink: bool,
    /// Low-pass (Hz) and bit depth of a lo-fi master, when it is one.
    lofi: Option<(f32, u32)>,
}

impl Realism {
    fn draw(genre: Genre, xr: &mut Rng) -> Self {
        let hiphop = genre == Genre::HipHop;
        Realism {
            kit: Kit {
                kick: (xr.next_u64() % 3) as u32,
                snare: (xr.next_u64() % 3) as u32,
                hat: (xr.next_u64() % 3) as u32,
            },
            keys: (xr.next_u64() % 4) as u32,
            swing16: hiphop && xr.chance(0.5),
            laid_back: if hiphop { xr.range(0.005, 0.022) } else { 0.0 },
            haas: xr.range(0.006, 0.016),
            snr_db: xr.range(15.0, 40.0) as f32,
            pink: xr.chance(0.5),
            lofi: xr.chance(if hiphop { 0.6 } else { 0.2 }).then(|| {
                (
                    xr.range(3500.0, 8000.0) as f32,
                    8 + (xr.next_u64() % 5) as u32,
                )
            }),
        }
    }
}

fn render(genre: Genre, seed: u64, rate: u32, secs: f64, hard: bool) -> Clip {
    let mut rng = Rng::new(seed ^ (genre as u64) << 32);
    let mut xr = Rng::new(seed.wrapping_mul(31) ^ (genre as u64) << 40 ^ 0x5eed);
    let real = hard.then(|| Realism::draw(genre, &mut xr));
    let (lo, hi) = genre.tempo_range();
    let bpm = (rng.range(lo, hi) * 2.0).round() / 2.0;
    let (bpm0, bpm1) = if genre == Genre::TempoRamp {
        (bpm, bpm + rng.range(6.0, 10.0))
    } else {
        (bpm, bpm)
    };
    // The harder clips start anywhere in a bar: the grid begins up to a bar before time 0.
    let origin = if hard {
        -(60.0 / bpm0) * xr.range(0.0, 4.0)
    } else {
        0.0
    };
    let grid = beat_grid(bpm0, bpm1, secs, origin);
    let mut mix = Mix::starting(rate, secs, origin.min(0.0) - if hard { 0.5 } else { 0.0 });
    let song = Arrangement::draw(genre, hard, grid, real.as_ref(), &mut rng, &mut xr);
    for bar in 0..song.bars {
        song.play_bar(bar, &mut mix, &mut rng, &mut xr);
    }
    let pump = if genre.four_on_the_floor() || genre == Genre::Breakdown {
        0.6
    } else {
        0.2
    };
    let mut hits = std::mem::take(&mut mix.hits);
    hits.sort_by(|a, b| a.time.total_cmp(&b.time));
    let (samples, stereo) = match &real {
        None => (mix.master(pump, &mut rng), None),
        Some(r) => {
            let (mut left, right) = mix.master_stereo(pump, r.haas, &mut rng);
            let mut right = right.unwrap_or_else(|| left.clone());
            for ch in [&mut left, &mut right] {
                degrade(ch, rate, r, &mut xr);
            }
            let mono = left
                .iter()
                .zip(&right)
                .map(|(l, r)| 0.5 * (l + r))
                .collect();
            (mono, Some((left, right)))
        }
    };
    // The truth: the beats from time 0, each with its place in the bar (grid beat 0 is a "1").
    let grid = song.grid;
    let first = grid.iter().position(|&t| t >= 0.0).unwrap_or(grid.len());
    let positions = (first..grid.len()).map(|i| (i % 4) as u32 + 1).collect();
    let drop = (genre == Genre::Breakdown)
        .then(|| grid.get(song.breakdown.end * 4).copied())
        .flatten();
    Clip {
        name: format!("{}-{:02}", genre.name(), seed),
        genre,
        rate,
        samples,
        drop,
        beats: grid[first..].to_vec(),
        positions,
        hits,
        stereo,
        tempo: bpm1,
    }
}

/// A genre's drum pattern over one bar, in 16th steps.
struct Pattern {
    kicks: Vec<u32>,
    /// Snares or claps.
    snares: Vec<u32>,
    /// Closed hats.
    hats: Vec<u32>,
    open: Vec<u32>,
}

impl Pattern {
    fn draw(genre: Genre, rng: &mut Rng) -> Self {
        let (kicks, snares, hats, open) = match genre {
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
        Pattern {
            kicks,
            snares,
            hats,
            open,
        }
    }
}

/// Everything about a clip that is settled before its bars are played: the grid and its feel,
/// harmony, kit and pattern. Drawn in a fixed order, so a seed always gives the same clip.
struct Arrangement {
    genre: Genre,
    hard: bool,
    /// Beat times; beat 0 is a "1".
    grid: Vec<f64>,
    bars: usize,
    swing: f64,
    swing16: bool,
    /// Seconds of random timing error per hit.
    humanize: f64,
    root: f32,
    /// A minor-ish progression of four chords, one per bar.
    prog: [f32; 4],
    kick_tone: f32,
    kit: Kit,
    laid_back: f64,
    keys: u32,
    pattern: Pattern,
    clap: bool,
    /// Breakdown: drums out for these bars (beats keep coming).
    breakdown: std::ops::Range<usize>,
}

impl Arrangement {
    fn draw(
        genre: Genre,
        hard: bool,
        grid: Vec<f64>,
        real: Option<&Realism>,
        rng: &mut Rng,
        xr: &mut Rng,
    ) -> Self {
        let swing = match genre {
            Genre::HipHop if hard => xr.range(0.54, 0.70),
            Genre::HipHop => rng.range(0.58, 0.66),
            _ => 0.5,
        };
        let humanize = match genre {
            Genre::HipHop => 0.008,
            Genre::Breakbeat => 0.004,
            _ => 0.001,
        };
        let root = 36.0 + (rng.range(0.0, 12.0)).floor() as f32;
        let prog: [f32; 4] = [0.0, [3.0, 5.0, 8.0][rng.next_u64() as usize % 3], 7.0, 10.0];
        let kick_tone = rng.range(42.0, 55.0) as f32;
        let bars = grid.len() / 4;
        let breakdown = if genre == Genre::Breakdown {
            let s = bars / 3;
            s..s + 8
        } else {
            usize::MAX..usize::MAX
        };
        Arrangement {
            genre,
            hard,
            grid,
            bars,
            swing,
            swing16: real.is_some_and(|r| r.swing16),
            humanize,
            root,
            prog,
            kick_tone,
            kit: real.map_or(Kit::default(), |r| r.kit),
            laid_back: real.map_or(0.0, |r| r.laid_back),
            keys: real.map_or(0, |r| r.keys),
            pattern: Pattern::draw(genre, rng),
            clap: matches!(
                genre,
                Genre::House | Genre::TempoRamp | Genre::Techno | Genre::Breakdown
            ),
            breakdown,
        }
    }

    /// The time of a hit at beat position `pos`, swung and humanised.
    fn hit(&self, rng: &mut Rng, pos: f64) -> Option<f64> {
        let p = if self.swing16 {
            // Swing of the 16ths: the second 16th of each 8th is late.
            let eighths = pos * 2.0;
            (eighths.floor() + swung(eighths.fract(), self.swing)) / 2.0
        } else {
            pos.floor() + swung(pos.fract(), self.swing)
        };
        time_of(&self.grid, p).map(|t| {
            let t = t + self.humanize * rng.range(-1.0, 1.0);
            if self.hard {
                t
            } else {
                t.max(0.0)
            }
        })
    }

    fn play_bar(&self, bar: usize, mix: &mut Mix, rng: &mut Rng, xr: &mut Rng) {
        let b0 = (bar * 4) as f64;
        let chord: Vec<f32> = [0.0, 3.0, 7.0, 10.0]
            .iter()
            .map(|i| midi(self.root + 24.0 + self.prog[bar % 4] + i))
            .collect();
        if !self.breakdown.contains(&bar) {
            self.drums(bar, mix, rng, xr);
            self.bass(bar, mix, rng);
            self.keys(b0, &chord, mix);
        } else if let (Some(t), Some(t_end)) =
            (time_of(&self.grid, b0), time_of(&self.grid, b0 + 4.0))
        {
            // Breakdown: pads and, in its second half, a riser.
            mix.chord(t, t_end - t, &chord, 0.22, 0.8, 1800.0);
            if bar == self.breakdown.start + 4 {
                if let Some(te) = time_of(&self.grid, (self.breakdown.end * 4) as f64) {
                    mix.riser(t, te - t, 0.25, rng);
                }
            }
        }
    }

    fn drums(&self, bar: usize, mix: &mut Mix, rng: &mut Rng, xr: &mut Rng) {
        let (genre, kit, p) = (self.genre, self.kit, &self.pattern);
        let b0 = (bar * 4) as f64;
        let fill = bar % 8 == 7;
        for &s in &p.kicks {
            // A fill drops the last kicks and rolls the snare instead.
            if fill && s >= 12 && genre != Genre::HalfTime {
                continue;
            }
            if let Some(t) = self.hit(rng, b0 + s as f64 / 4.0) {
                mix.kick_kind(t + self.laid_back, 0.9, self.kick_tone, kit, rng);
            }
        }
        for &s in &p.snares {
            if let Some(t) = self.hit(rng, b0 + s as f64 / 4.0) {
                if self.clap && kit.snare != 2 {
                    mix.clap(t, 0.5, rng);
                } else {
                    mix.snare_kind(t, 0.6, 0.12, kit, rng);
                }
            }
        }
        // Ghost snares in the broken styles.
        if matches!(genre, Genre::HipHop | Genre::Breakbeat | Genre::DrumAndBass) {
            for s in [5u32, 9, 14, 15] {
                if rng.chance(0.25) {
                    if let Some(t) = self.hit(rng, b0 + s as f64 / 4.0) {
                        mix.snare_kind(t, 0.15, 0.06, kit, rng);
                    }
                }
            }
        }
        // Hip-hop in the harder corpus: ghost snares and hats on the swung 16ths.
        if self.hard && genre == Genre::HipHop {
            for s in [1u32, 3, 7, 9, 11, 13, 15] {
                if xr.chance(0.3) {
                    if let Some(t) = self.hit(xr, b0 + s as f64 / 4.0) {
                        mix.snare_kind(t, 0.1 + 0.08 * xr.unit() as f32, 0.05, kit, xr);
                    }
                }
                if xr.chance(0.5) {
                    if let Some(t) = self.hit(xr, b0 + s as f64 / 4.0) {
                        mix.hat_kind(t, 0.07 + 0.05 * xr.unit() as f32, false, kit, xr);
                    }
                }
            }
        }
        for &s in &p.hats {
            if fill && s >= 12 {
                continue;
            }
            let accent = if s % 4 == 2 { 0.22 } else { 0.14 };
            if let Some(t) = self.hit(rng, b0 + s as f64 / 4.0) {
                mix.hat_kind(t, accent, false, kit, rng);
            }
        }
        for &s in &p.open {
            if let Some(t) = self.hit(rng, b0 + s as f64 / 4.0) {
                mix.hat_kind(t, 0.18, true, kit, rng);
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
                if let Some(t) = self.hit(rng, pos) {
                    mix.snare_kind(t, 0.25 + 0.1 * k as f32 / n as f32, 0.08, kit, rng);
                }
            }
        }
    }

    /// The bass line on the genre's groove.
    fn bass(&self, bar: usize, mix: &mut Mix, rng: &mut Rng) {
        let genre = self.genre;
        let b0 = (bar * 4) as f64;
        let steps: &[u32] = match genre {
            Genre::House | Genre::TempoRamp | Genre::Techno | Genre::Breakdown => &[2, 6, 10, 14],
            Genre::HalfTime => &[0],
            _ => &[0, 6, 10],
        };
        for &s in steps {
            let pos = b0 + s as f64 / 4.0;
            if let (Some(t), Some(t2)) = (self.hit(rng, pos), time_of(&self.grid, pos + 0.45)) {
                let sub = matches!(genre, Genre::HalfTime | Genre::DrumAndBass);
                let dur = if genre == Genre::HalfTime {
                    1.6 * (t2 - t) * 4.0
                } else {
                    t2 - t
                };
                mix.bass(t, dur, midi(self.root + self.prog[bar % 4]), 0.45, sub);
            }
        }
    }

    /// Chord stabs (house) or a held chord over the bar from beat `b0`.
    fn keys(&self, b0: f64, chord: &[f32], mix: &mut Mix) {
        let (Some(t), Some(t_end)) = (time_of(&self.grid, b0), time_of(&self.grid, b0 + 4.0))
        else {
            return;
        };
        let keys = self.keys;
        if matches!(self.genre, Genre::House | Genre::TempoRamp) {
            for s in [3u32, 6, 11] {
                if let Some(ts) = time_of(&self.grid, b0 + s as f64 / 4.0) {
                    if keys == 0 {
                        mix.chord(ts, 0.12, chord, 0.16, 0.004, 2500.0);
                    } else {
                        mix.keys(ts, 0.15, chord, 0.16, keys);
                    }
                }
            }
        } else if keys == 0 {
            mix.chord(t, t_end - t, chord, 0.08, 0.3, 1200.0);
        } else {
            mix.keys(t, t_end - t, chord, 0.1, keys);
        }
    }
}

/// The harder corpus' last step on each channel: a lo-fi low-pass and bit depth (when the
/// clip is lo-fi), then white or pink noise at the clip's SNR.
fn degrade(ch: &mut [f32], rate: u32, real: &Realism, xr: &mut Rng) {
    if let Some((hz, bits)) = real.lofi {
        let fc = coef(hz, rate as f32);
        let mut svf = Svf::new();
        let mut svf2 = Svf::new();
        let steps = (1u32 << (bits - 1)) as f32;
        for x in ch.iter_mut() {
            let (low, _, _) = svf.tick(*x, fc, 1.0);
            let (low, _, _) = svf2.tick(low, fc, 1.0);
            *x = (low * steps).round() / steps;
        }
    }
    let power = ch.iter().map(|x| x * x).sum::<f32>() / ch.len().max(1) as f32;
    let noise_rms = (power / 10f32.powf(real.snr_db / 10.0)).sqrt();
    // Paul Kellet's economy pink filter: three poles, -3 dB/octave within 0.5 dB.
    let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
    // White noise in [-1, 1) has RMS 1/√3; the pink filter's gain is about 3.3.
    let (scale, pink_scale) = (noise_rms * 3f32.sqrt(), noise_rms * 3f32.sqrt() / 3.3);
    for x in ch.iter_mut() {
        let w = xr.noise();
        let n = if real.pink {
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            (b0 + b1 + b2 + w * 0.1848) * pink_scale
        } else {
            w * scale
        };
        *x = (*x + n).clamp(-1.0, 1.0);
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

/// Writes a clip as 16-bit WAV (stereo when it is) plus `name.beats`: a `# genre tempo [drop]`
/// header, then one `time position` line per beat (position 1 = downbeat).
pub fn write_clip(dir: &std::path::Path, clip: &Clip) -> std::io::Result<()> {
    let spec = hound::WavSpec {
        channels: if clip.stereo.is_some() { 2 } else { 1 },
        sample_rate: clip.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let path = dir.join(format!("{}.wav", clip.name));
    let mut w = hound::WavWriter::create(&path, spec).map_err(std::io::Error::other)?;
    let mut put = |x: f32| {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
            .map_err(std::io::Error::other)
    };
    match &clip.stereo {
        Some((l, r)) => {
            for (&a, &b) in l.iter().zip(r) {
                put(a)?;
                put(b)?;
            }
        }
        None => {
            for &x in &clip.samples {
                put(x)?;
            }
        }
    }
    w.finalize().map_err(std::io::Error::other)?;
    let mut text = format!("# {} {:.3}", clip.genre.name(), clip.tempo);
    if let Some(d) = clip.drop {
        text.push_str(&format!(" {d:.4}"));
    }
    text.push('\n');
    for (b, p) in clip.beats.iter().zip(&clip.positions) {
        text.push_str(&format!("{b:.4} {p}\n"));
    }
    std::fs::write(dir.join(format!("{}.beats", clip.name)), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC_HOUSE_01: f64 = 6321.696192116476;

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
    fn a_hard_clip_starts_inside_a_bar_and_knows_its_downbeats_and_drums() {
        let starts: Vec<u32> = (1..9)
            .map(|seed| generate_hard(Genre::HipHop, seed, 22_050, 8.0).positions[0])
            .collect();
        assert!(
            starts.iter().any(|&p| p != 1),
            "every clip starts on a downbeat: {starts:?}"
        );
        let c = generate_hard(Genre::House, 4, 22_050, 8.0);
        assert_eq!(c.beats.len(), c.positions.len());
        assert!(c.beats[0] >= 0.0 && c.beats[0] < 60.0 / c.tempo + 1e-9);
        for w in c.positions.windows(2) {
            assert_eq!(w[1], w[0] % 4 + 1);
        }
        let (l, r) = c.stereo.as_ref().expect("stereo");
        assert_eq!(l.len(), c.samples.len());
        assert!(l.iter().zip(r).any(|(a, b)| a != b));
        // House: a kick on every beat, each within humanising of it.
        let kicks: Vec<f64> = c
            .hits
            .iter()
            .filter(|h| h.drum == Drum::Kick)
            .map(|h| h.time)
            .collect();
        // (a fill drops the last kick of every 8th bar)
        let kicked = c.beats[..c.beats.len() - 1]
            .iter()
            .filter(|&&b| kicks.iter().any(|k| (k - b).abs() < 0.005))
            .count();
        assert!(
            kicked * 10 >= (c.beats.len() - 1) * 9,
            "{kicked} of {} beats",
            c.beats.len()
        );
        assert!(c.hits.iter().any(|h| h.drum == Drum::Hat));
        assert!(c.hits.iter().any(|h| h.drum == Drum::Snare));
    }

    #[test]
    fn the_classic_corpus_is_as_it_was() {
        // A checksum of house-01 as generated before the harder corpus existed: the tuning
        // and regression tests of the classic corpus keep their meaning.
        let c = generate(Genre::House, 1, 22_050, 4.0);
        let sum: f64 = c.samples.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((sum - CLASSIC_HOUSE_01).abs() < 1e-6, "{sum}");
        assert_eq!(c.positions[..5], [1, 2, 3, 4, 1]);
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
