//! Onset strength: how much new energy this hop brings (log-magnitude spectral flux against a
//! frequency-max-filtered previous spectrum), the input of the tempo and beat trackers.

use super::autogain::AutoGain;
use super::spectrum::Spectrum;

/// Highest frequency the flux looks at: above it there is mostly hiss.
const MAX_HZ: f32 = 16_000.0;
/// Below this the flux is also counted on its own: kicks carry the beat in dance music, and
/// in a log spectrum the many hi-hat bins would otherwise outvote the few kick bins.
const LOW_HZ: f32 = 150.0;
const LOW_SHARE: f32 = 1.0;
/// The whole band's flux, hats included, gets a smaller vote than the kicks and snares: open
/// hats on the off-beats, loud in a noisy master, pulled house clips of the harder corpus
/// half a beat off at 1.0 (docs/BENCHMARKS.md, "The beat tracker on the harder corpus").
const RAW_SHARE: f32 = 0.3;
/// Below this (and above LOW_HZ) the flux also gets a smaller vote of its own: snares and claps
/// mark the backbeat there, while hats, above it, mark the off-beats. Without it a breakbeat
/// whose kicks fall on the off-beats scores both grids alike.
const MID_HZ: f32 = 4_000.0;
const MID_SHARE: f32 = 0.8;
/// The flux of a sound peaks about this share of the analysis window after the sound: the
/// window is a time (≈ 46 ms), so the delay is one too, at any device rate. Measured on the
/// eval corpus at 44.1, 48 and 96 kHz (docs/BENCHMARKS.md).
const DELAY_WINDOWS: f32 = 0.5;

pub struct OnsetStrength {
    prev: Vec<f32>,
    cur: Vec<f32>,
    /// Each bin's rise this hop (scratch).
    rise: Vec<f32>,
    top: usize,
    low: usize,
    mid: usize,
    raw: f32,
    /// This hop's flux in the mids (LOW_HZ..MID_HZ).
    mid_flux: f32,
    accent: f32,
    prev_power: Vec<f32>,
    raw_peak: AutoGain,
    low_peak: AutoGain,
    mid_peak: AutoGain,
    gain: AutoGain,
    normalized: f32,
}

impl OnsetStrength {
    pub fn new(spectrum: &Spectrum) -> Self {
        let n = spectrum.magnitudes().len();
        OnsetStrength {
            prev: vec![0.0; n],
            cur: vec![0.0; n],
            rise: vec![0.0; n],
            top: spectrum.hz_bin(MAX_HZ).min(n - 1),
            // Every bin up to LOW_HZ, at any rate: rounded to the nearest bin, 48 kHz stopped
            // at 117 Hz, where a kick's falling pitch arrives later, and its beats came out
            // 24 ms late (44.1 kHz reaches 129 Hz).
            low: (LOW_HZ / spectrum.bin_hz(1)).ceil() as usize,
            mid: spectrum.hz_bin(MID_HZ).min(n - 1),
            raw: 0.0,
            mid_flux: 0.0,
            accent: 0.0,
            prev_power: vec![0.0; n],
            raw_peak: AutoGain::new(spectrum.frames_per_sec(), 1e-4),
            low_peak: AutoGain::new(spectrum.frames_per_sec(), 1e-6),
            mid_peak: AutoGain::new(spectrum.frames_per_sec(), 1e-4),
            gain: AutoGain::new(spectrum.frames_per_sec(), 1e-3),
            normalized: 0.0,
        }
    }

    pub fn process(&mut self, spectrum: &Spectrum) {
        let mags = spectrum.magnitudes();
        for (c, &m) in self.cur[..=self.top].iter_mut().zip(mags) {
            *c = fast_ln(1.0 + 1000.0 * m);
        }
        let mut low = 0.0f32;
        // The bass in linear power: the kick is the loudest thing there, while in a log
        // spectrum an off-beat bass line would count as much.
        for (m, p) in mags[1..self.low].iter().zip(&mut self.prev_power[1..]) {
            let d = m * m - *p;
            if d > 0.0 {
                low += d;
            }
            *p = m * m;
        }
        // A 3-bin max filter on the previous frame ignores vibrato and slides. Every bin's
        // rise first (a loop without bounds checks or a running sum, which vectorises), then
        // each band's sum in bin order.
        let top = self.top;
        let (prev, cur) = (&self.prev, &self.cur);
        let bins = self.rise[1..top].iter_mut().zip(&cur[1..top]).zip(
            prev[..top - 1]
                .iter()
                .zip(&prev[1..top])
                .zip(&prev[2..=top]),
        );
        for ((r, &c), ((&below, &at), &above)) in bins {
            *r = (c - below.max(at).max(above)).max(0.0);
        }
        let rise = |a: usize, b: usize| self.rise[a.min(b)..b].iter().copied().sum::<f32>();
        let mid = rise(self.low, self.mid);
        let flux = rise(1, self.low) + mid + rise(self.mid, top);
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.raw = flux / self.top as f32;
        // Each against its own recent peak, so each vote is its share whatever the mix.
        let gr = self.raw_peak.update(self.raw);
        let gl = self.low_peak.update(low);
        let gm = self.mid_peak.update(mid);
        self.accent = RAW_SHARE * self.raw * gr + LOW_SHARE * low * gl + MID_SHARE * mid * gm;
        self.mid_flux = mid;
        let g = self.gain.update(self.raw);
        self.normalized = (self.raw * g).clamp(0.0, 1.0);
    }

    /// Seconds from a sound to the peak of its onset strength, at `spectrum`'s rate.
    pub fn delay_secs(spectrum: &Spectrum) -> f32 {
        DELAY_WINDOWS * spectrum.window_secs()
    }

    /// Unscaled flux (the trackers normalise it themselves).
    pub fn raw(&self) -> f32 {
        self.raw
    }

    /// Unscaled flux of the mids, where snares and claps mark the backbeat.
    pub fn mid(&self) -> f32 {
        self.mid_flux
    }

    /// Flux with the bass and the mids counted apart: where the kicks and snares are, for
    /// placing beats.
    pub fn accent(&self) -> f32 {
        self.accent
    }

    /// Onset strength 0..1 against the recent peak, as sent in `/audio/beat`.
    pub fn strength(&self) -> f32 {
        self.normalized
    }
}

/// ln(x) for x ≥ 1 to about 1e-4: exponent from the float's bits, a quartic for the mantissa.
/// The flux takes ~750 logs per hop; `f32::ln` alone would be a third of the hop's budget.
#[inline]
fn fast_ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    // The mantissa m in [0, 1); ln(1 + m) by a least-squares quartic, error < 1.4e-4.
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) - 1.0;
    let p = m * (0.997_123_7 + m * (-0.470_003_38 + m * (0.224_309_69 - m * 0.058_413_704)));
    e as f32 * std::f32::consts::LN_2 + p
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_ln_is_close() {
        for x in [1.0f32, 1.5, 2.0, 3.7, 10.0, 123.4, 1000.0, 1e5] {
            assert!((super::fast_ln(x) - x.ln()).abs() < 2e-3, "{x}");
        }
    }

    use super::*;

    #[test]
    fn a_hit_is_an_onset_and_a_steady_tone_is_not() {
        let rate = 44_100;
        let mut s = Spectrum::new(rate);
        let mut o = OnsetStrength::new(&s);
        let mut values = Vec::new();
        for h in 0..60 {
            let hop: Vec<f32> = (0..512)
                .map(|i| {
                    let n = h * 512 + i;
                    let t = n as f32 / rate as f32;
                    let tone = 0.3 * (std::f32::consts::TAU * 440.0 * t).sin();
                    // A noise burst at hop 40.
                    let burst = if (40 * 512..41 * 512).contains(&n) {
                        ((n * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.8
                    } else {
                        0.0
                    };
                    tone + burst
                })
                .collect();
            s.process(&hop);
            o.process(&s);
            values.push(o.raw());
        }
        let steady = values[20..39].iter().fold(0.0f32, |a, &b| a.max(b));
        let hit = values[40..44].iter().fold(0.0f32, |a, &b| a.max(b));
        assert!(
            hit > 10.0 * steady.max(1e-4),
            "hit {hit} vs steady {steady}"
        );
    }
}
