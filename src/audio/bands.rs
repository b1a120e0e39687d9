//! `/audio/levels`: seven frequency bands and the overall RMS, each auto-gained against its own
//! recent peak, compressed and smoothed so a VJ can map them straight to 0..1 parameters.

use super::autogain::AutoGain;
use super::spectrum::Spectrum;

/// Band edges in Hz of SPEC section 4: sub_bass, bass, low_mid, mid, high_mid, presence, air.
pub const DEFAULT_EDGES: [f32; 8] = [20.0, 60.0, 250.0, 500.0, 2000.0, 4000.0, 6000.0, 20000.0];
pub const BANDS: usize = 7;

/// One-pole smoothing with a fast attack and a release set by `smoothing` (0 = none, 0.99 = slow).
#[derive(Debug, Clone, Copy)]
pub struct Smoother {
    value: f32,
}

impl Smoother {
    pub fn new() -> Self {
        Smoother { value: 0.0 }
    }
    pub fn update(&mut self, x: f32, smoothing: f32) -> f32 {
        let coef = if x > self.value {
            // Attack: a third of the release's lag, so hits still read as hits.
            smoothing * 0.33
        } else {
            smoothing
        };
        self.value = x + (self.value - x) * coef.clamp(0.0, 0.999);
        self.value
    }
}

impl Default for Smoother {
    fn default() -> Self {
        Self::new()
    }
}

/// Seven band levels plus RMS, each 0..1.
pub struct BandLevels {
    ranges: [(usize, usize); BANDS],
    gains: [AutoGain; BANDS + 1],
    smooth: [Smoother; BANDS + 1],
    values: [f32; BANDS + 1],
}

fn compress(x: f32) -> f32 {
    // A gentle power law: quiet parts stay visible, loud parts do not pin at 1.
    x.clamp(0.0, 1.0).powf(0.6)
}

impl BandLevels {
    /// `edges` are 8 ascending frequencies in Hz; bins are found at this spectrum's rate, so a
    /// 48 kHz device keeps the same bands in Hz.
    pub fn new(spectrum: &Spectrum, edges: &[f32; 8]) -> Self {
        let mut ranges = [(0, 0); BANDS];
        for (i, r) in ranges.iter_mut().enumerate() {
            let a = spectrum.hz_bin(edges[i]).max(1);
            let b = spectrum.hz_bin(edges[i + 1]).max(a + 1);
            let top = spectrum.magnitudes().len();
            *r = (a.min(top - 1), b.min(top));
        }
        BandLevels {
            ranges,
            gains: std::array::from_fn(|_| AutoGain::new(spectrum.frames_per_sec(), 1e-3)),
            smooth: [Smoother::new(); BANDS + 1],
            values: [0.0; BANDS + 1],
        }
    }

    /// Updates from this hop's spectrum and its time-domain RMS.
    pub fn process(&mut self, spectrum: &Spectrum, rms: f32, smoothing: f32) {
        let mags = spectrum.magnitudes();
        for i in 0..=BANDS {
            let level = if i < BANDS {
                let (a, b) = self.ranges[i];
                mags[a..b].iter().map(|m| m * m).sum::<f32>().sqrt()
            } else {
                rms
            };
            let g = self.gains[i].update(level);
            let x = compress(level * g);
            self.values[i] = self.smooth[i].update(x, smoothing);
        }
    }

    /// sub_bass, bass, low_mid, mid, high_mid, presence, air, rms.
    pub fn values(&self) -> &[f32; BANDS + 1] {
        &self.values
    }
}

/// Root mean square of a hop.
pub fn rms(hop: &[f32]) -> f32 {
    if hop.is_empty() {
        return 0.0;
    }
    (hop.iter().map(|x| x * x).sum::<f32>() / hop.len() as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(s: &mut Spectrum, b: &mut BandLevels, freq: f32, rate: u32, hops: usize) {
        for h in 0..hops {
            let hop: Vec<f32> = (0..512)
                .map(|i| {
                    let t = (h * 512 + i) as f32 / rate as f32;
                    0.5 * (std::f32::consts::TAU * freq * t).sin()
                })
                .collect();
            s.process(&hop);
            b.process(s, rms(&hop), 0.5);
        }
    }

    #[test]
    fn a_tone_lights_its_own_band_at_any_device_rate() {
        let tones = [30.0, 120.0, 350.0, 1000.0, 3000.0, 5000.0, 9000.0];
        for rate in [44_100, 48_000, 96_000] {
            let mut s = Spectrum::new(rate);
            let mut b = BandLevels::new(&s, &DEFAULT_EDGES);
            // Let every band's auto-gain see its own tone once.
            for f in tones {
                tone(&mut s, &mut b, f, rate, 30);
            }
            for (band, f) in tones.into_iter().enumerate() {
                tone(&mut s, &mut b, f, rate, 40);
                let v = *b.values();
                for (i, &x) in v[..7].iter().enumerate() {
                    if i == band {
                        assert!(x > 0.8, "{f} Hz at {rate}: band {i} is {x}: {v:?}");
                    } else {
                        assert!(x < 0.5, "{f} Hz at {rate} leaks into band {i}: {v:?}");
                    }
                }
                assert!(v[7] > 0.8, "rms {v:?}");
            }
        }
    }
    #[test]
    fn silence_stays_dark() {
        let mut s = Spectrum::new(44_100);
        let mut b = BandLevels::new(&s, &DEFAULT_EDGES);
        for _ in 0..50 {
            let hop = [1e-6f32; 512];
            s.process(&hop);
            b.process(&s, rms(&hop), 0.5);
        }
        assert!(b.values().iter().all(|&v| v < 0.05), "{:?}", b.values());
    }
}
