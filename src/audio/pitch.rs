//! Dominant pitch with McLeod's normalised square difference (NSDF) on the last 46 ms,
//! decimated ×4 and computed through an FFT so it costs a few microseconds per hop.

use super::acf::Autocorrelation;

/// Decimated samples analysed (46 ms: 2048 input samples at 44.1 kHz, decimated ×4).
const N: usize = 512;
const MIN_HZ: f32 = 50.0;
const MAX_HZ: f32 = 1000.0;
/// A peak this close to the highest one is taken (McLeod's k), favouring the fundamental.
const PEAK_RATIO: f32 = 0.9;
/// Below this clarity the hop is called unvoiced.
const VOICED: f32 = 0.6;

pub struct Pitch {
    rate: f32,
    decimate: usize,
    acf: Autocorrelation,
    x: Vec<f32>,
    nsdf: Vec<f32>,
    /// m(τ) of the NSDF (scratch).
    m: Vec<f32>,
    hz: f32,
    confidence: f32,
}

impl Pitch {
    pub fn new(rate: u32) -> Self {
        // To about 11-12 kHz whatever the device rate.
        let decimate = ((rate as usize + 6000) / 12_000).max(1);
        Pitch {
            rate: rate as f32 / decimate as f32,
            decimate,
            acf: Autocorrelation::new(N, N),
            x: vec![0.0; N],
            nsdf: vec![0.0; N],
            m: vec![0.0; N],
            hz: 0.0,
            confidence: 0.0,
        }
    }

    /// `window`: the latest `decimate × 512` samples or more, oldest first.
    pub fn process(&mut self, window: &[f32]) {
        let d = self.decimate;
        let need = d * N;
        let w = &window[window.len().saturating_sub(need)..];
        if w.len() < need {
            self.hz = 0.0;
            self.confidence = 0.0;
            return;
        }
        if d == 4 {
            // 44.1 and 48 kHz (faster devices are decimated to these first): the same sum
            // of 4, unrolled.
            for (x, c) in self.x.iter_mut().zip(w.chunks_exact(4)) {
                let c: &[f32; 4] = c.try_into().expect("chunks of 4");
                *x = c.iter().sum::<f32>() / 4.0;
            }
        } else {
            for (x, c) in self.x.iter_mut().zip(w.chunks_exact(d)) {
                *x = c.iter().sum::<f32>() / d as f32;
            }
        }
        // r(τ) first, turned into the NSDF in place.
        self.acf.compute(&self.x, &mut self.nsdf);
        // m(τ) = Σ x[i]² + x[i+τ]², updated incrementally from m(0) = 2 r(0): the running
        // sum alone first, then the divisions, which vectorise.
        let mut m = 2.0 * self.nsdf[0];
        if m <= 1e-6 {
            self.hz = 0.0;
            self.confidence = 0.0;
            return;
        }
        for ((mt, &a), &b) in self.m.iter_mut().zip(&self.x).zip(self.x.iter().rev()) {
            *mt = m;
            m -= a * a + b * b;
        }
        for (r, &m) in self.nsdf.iter_mut().zip(&self.m) {
            *r = if m > 1e-9 { 2.0 * *r / m } else { 0.0 };
        }
        let lo = (self.rate / MAX_HZ) as usize;
        let hi = ((self.rate / MIN_HZ) as usize).min(N / 2);
        // Key maxima: the highest point of each positive lobe after the first zero crossing.
        let mut highest = 0.0f32;
        let mut tau = 1;
        while tau < hi && self.nsdf[tau] > 0.0 {
            tau += 1;
        }
        let start = tau.max(lo);
        for t in start..hi {
            highest = highest.max(self.nsdf[t]);
        }
        let mut pick = None;
        let mut t = start;
        while t < hi {
            if self.nsdf[t] > 0.0 {
                let mut peak = t;
                while t < hi && self.nsdf[t] > 0.0 {
                    if self.nsdf[t] > self.nsdf[peak] {
                        peak = t;
                    }
                    t += 1;
                }
                if self.nsdf[peak] >= PEAK_RATIO * highest && peak > 0 && peak + 1 < N {
                    pick = Some(peak);
                    break;
                }
            }
            t += 1;
        }
        let Some(p) = pick else {
            self.hz = 0.0;
            self.confidence = 0.0;
            return;
        };
        let (a, b, c) = (self.nsdf[p - 1], self.nsdf[p], self.nsdf[p + 1]);
        let d = a - 2.0 * b + c;
        let shift = if d < 0.0 {
            (0.5 * (a - c) / d).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let clarity = b.clamp(0.0, 1.0);
        self.confidence = clarity;
        self.hz = if clarity >= VOICED {
            self.rate / (p as f32 + shift)
        } else {
            0.0
        };
    }

    /// Hz, 0 when unvoiced.
    pub fn hz(&self) -> f32 {
        self.hz
    }

    pub fn confidence(&self) -> f32 {
        self.confidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, f: f32, harmonics: bool) -> Vec<f32> {
        (0..8192)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let w = std::f32::consts::TAU * f * t;
                if harmonics {
                    0.5 * w.sin() + 0.3 * (2.0 * w).sin() + 0.2 * (3.0 * w).sin()
                } else {
                    0.5 * w.sin()
                }
            })
            .collect()
    }

    #[test]
    fn sines_and_rich_tones_read_their_fundamental() {
        for rate in [44_100, 48_000, 96_000] {
            let mut p = Pitch::new(rate);
            for f in [55.0, 110.0, 220.0, 440.0, 880.0] {
                for rich in [false, true] {
                    p.process(&tone(rate, f, rich));
                    let err = (p.hz() / f - 1.0).abs();
                    assert!(err < 0.02, "{f} Hz (rich {rich}) at {rate} read {}", p.hz());
                    assert!(p.confidence() > 0.9);
                }
            }
        }
    }

    #[test]
    fn noise_is_unvoiced() {
        let mut p = Pitch::new(44_100);
        let mut s = 12345u32;
        let noise: Vec<f32> = (0..4096)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        p.process(&noise);
        assert_eq!(p.hz(), 0.0, "confidence {}", p.confidence());
    }
}
