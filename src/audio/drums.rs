//! Drum hits for `/audio/kick`, `/audio/snare` and `/audio/hat`: band-limited spectral flux
//! (kick: power below 150 Hz, where it outweighs the bass; snare: magnitude at 1-4 kHz, where
//! snares, claps and rimshots sit above the bass and keys; hat: magnitude at 6-16 kHz), each
//! peak-picked against its own recent level and peak, with a refractory time.

use super::spectrum::Spectrum;

/// One drum's detector.
struct Band {
    /// `[lo, hi)` FFT bins.
    bins: (usize, usize),
    /// Power (kick) or magnitude flux.
    power: bool,
    /// Frames, at this rate, of the level and peak time constants and the refractory time.
    level_coef: f32,
    peak_fall: f32,
    refractory: u32,
    /// A hit must rise above this many times the recent level and this share of the peak
    /// (snares higher: hats and keys reach into their band).
    over_level: f32,
    over_peak: f32,
    prev: f32,
    level: f32,
    peak: f32,
    since: u32,
    hit: bool,
    strength: f32,
}

impl Band {
    fn new(
        spectrum: &Spectrum,
        (lo_hz, hi_hz): (f32, f32),
        power: bool,
        refractory_secs: f32,
        (over_level, over_peak): (f32, f32),
    ) -> Self {
        let fps = spectrum.frames_per_sec();
        let top = spectrum.magnitudes().len() - 1;
        let lo = spectrum.hz_bin(lo_hz).max(1);
        let hi = spectrum.hz_bin(hi_hz).clamp(lo + 1, top);
        Band {
            bins: (lo, hi),
            power,
            level_coef: 1.0 / (0.5 * fps),
            peak_fall: 1.0 - 1.0 / (3.0 * fps),
            refractory: (refractory_secs * fps).ceil() as u32,
            over_level,
            over_peak,
            prev: 0.0,
            level: 0.0,
            peak: 1e-9,
            since: u32::MAX,
            hit: false,
            strength: 0.0,
        }
    }

    /// This hop's flux in the band, from the previous magnitudes.
    fn flux(&self, mags: &[f32], prev: &[f32]) -> f32 {
        let (lo, hi) = self.bins;
        let bins = mags[lo..hi].iter().zip(&prev[lo..hi]);
        // The kind of flux chosen once, not per bin.
        if self.power {
            bins.fold(0.0f32, |sum, (&m, &p)| sum + (m * m - p * p).max(0.0))
        } else {
            bins.fold(0.0f32, |sum, (&m, &p)| sum + (m - p).max(0.0))
        }
    }

    fn process(&mut self, flux: f32) {
        self.since = self.since.saturating_add(1);
        self.peak = (self.peak * self.peak_fall).max(flux).max(1e-9);
        let rising = flux > self.prev;
        self.hit = rising
            && flux > self.over_level * self.level
            && flux > self.over_peak * self.peak
            && self.since >= self.refractory;
        if self.hit {
            self.since = 0;
            self.strength = (flux / self.peak).clamp(0.0, 1.0);
        }
        // The level follows what is not a hit, so a loud groove does not raise its own bar.
        self.level += (flux.min(2.0 * self.level.max(1e-9)) - self.level) * self.level_coef;
        self.prev = flux;
    }
}

/// Kick, snare and hat onsets, each with a strength 0..1 (against its recent peak).
pub struct DrumHits {
    bands: [Band; 3],
    prev: Vec<f32>,
}

/// Which of [`DrumHits`]'s bands.
pub const KICK: usize = 0;
pub const SNARE: usize = 1;
pub const HAT: usize = 2;

impl DrumHits {
    pub fn new(spectrum: &Spectrum) -> Self {
        DrumHits {
            bands: [
                Band::new(spectrum, (30.0, 150.0), true, 0.09, (2.0, 0.25)),
                Band::new(spectrum, (1000.0, 4000.0), false, 0.07, (3.0, 0.55)),
                Band::new(spectrum, (6000.0, 16_000.0), false, 0.05, (2.0, 0.2)),
            ],
            prev: vec![0.0; spectrum.magnitudes().len()],
        }
    }

    pub fn process(&mut self, spectrum: &Spectrum) {
        let mags = spectrum.magnitudes();
        for band in &mut self.bands {
            let flux = band.flux(mags, &self.prev);
            band.process(flux);
        }
        // A kick's beater click reaches the snare band: on a kick, only a strong rise there is
        // a snare too.
        let [kick, snare, _] = &mut self.bands;
        if kick.hit && snare.hit && snare.strength < 0.6 {
            snare.hit = false;
        }
        self.prev.copy_from_slice(mags);
    }

    /// Whether drum `which` (KICK, SNARE, HAT) hit on this hop, and how hard.
    /// Drum `which`'s band flux this hop (unscaled; the bar tracker weighs it as a share).
    pub fn flux(&self, which: usize) -> f32 {
        self.bands[which].prev
    }

    pub fn hit(&self, which: usize) -> (bool, f32) {
        let b = &self.bands[which];
        (b.hit, if b.hit { b.strength } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::synth::{generate_hard, Drum, Genre};
    use crate::audio::HOP;

    /// F-measure (±50 ms) of one drum's detections against the clip's hits of that drum at
    /// least `min_amp` loud; detections near quieter hits of it (ghost notes) count neither way.
    fn drum_f(genre: Genre, seed: u64, drum: Drum, which: usize, min_amp: f32) -> f64 {
        let clip = generate_hard(genre, seed, 44_100, 20.0);
        let mut s = Spectrum::new(44_100);
        let mut d = DrumHits::new(&s);
        let delay = crate::audio::onset::OnsetStrength::delay_secs(&s) as f64;
        let mut found = Vec::new();
        for (k, hop) in clip.samples.chunks_exact(HOP).enumerate() {
            s.process(hop);
            d.process(&s);
            if d.hit(which).0 {
                found.push((k + 1) as f64 * HOP as f64 / 44_100.0 - delay);
            }
        }
        let of = |loud: bool| -> Vec<f64> {
            clip.hits
                .iter()
                .filter(|h| h.drum == drum && (h.amp >= min_amp) == loud)
                .map(|h| h.time)
                .collect()
        };
        let (truth, ghosts) = (of(true), of(false));
        let near = |t: f64, set: &[f64]| set.iter().any(|&x| (x - t).abs() <= 0.05);
        let found: Vec<f64> = found
            .into_iter()
            .filter(|&t| near(t, &truth) || !near(t, &ghosts))
            .collect();
        let hits = truth.iter().filter(|&&t| near(t, &found)).count() as f64;
        let (p, r) = (
            hits / found.len().max(1) as f64,
            hits / truth.len().max(1) as f64,
        );
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    #[test]
    fn kicks_snares_and_hats_are_found_apart() {
        for (genre, seed) in [(Genre::House, 3), (Genre::Breakbeat, 5), (Genre::HipHop, 2)] {
            let kick = drum_f(genre, seed, Drum::Kick, KICK, 0.5);
            assert!(kick > 0.9, "{genre:?}-{seed}: kick F {kick}");
        }
        // Snares: claps on the kicks of house and techno. (Hip-hop and breakbeat read more
        // snares than they have, F 0.65-0.7: docs/BENCHMARKS.md.)
        for (genre, seed) in [(Genre::House, 3), (Genre::Techno, 1)] {
            let snare = drum_f(genre, seed, Drum::Snare, SNARE, 0.4);
            assert!(snare > 0.8, "{genre:?}-{seed}: snare F {snare}");
        }
        let hat = drum_f(Genre::House, 3, Drum::Hat, HAT, 0.1);
        assert!(hat > 0.7, "house-03: hat F {hat}");
    }
}
