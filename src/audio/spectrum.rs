//! The shared short-time spectrum: a Hann-windowed FFT over the last `WINDOW` samples, updated
//! once per hop, plus the 32 log-spaced, auto-gained bins sent as `/audio/spectrum`.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::autogain::AutoGain;

/// FFT length at 44.1/48 kHz: 2048 samples (46 ms) resolves the sub-bass band (21.5 Hz bins).
/// Faster devices get a longer window so the bands keep the same resolution in Hz.
pub const WINDOW: usize = 2048;

/// The FFT length for a device rate: about 46 ms, a power of two.
pub fn window_len(rate: u32) -> usize {
    (rate as usize * 2048 / 48_000)
        .next_power_of_two()
        .max(WINDOW)
}
/// Bins of `/audio/spectrum`.
pub const SPECTRUM_BINS: usize = 32;

/// Magnitude spectrum of the most recent window. All buffers are allocated once in `new`.
pub struct Spectrum {
    rate: f32,
    len: usize,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// The last `WINDOW` samples, oldest first.
    history: Vec<f32>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
    magnitudes: Vec<f32>,
    /// k as f32 for every bin k (the centroid's weights: converting each time costs more).
    bin_numbers: Vec<f32>,
}

impl Spectrum {
    pub fn new(rate: u32) -> Self {
        let len = window_len(rate);
        let fft = FftPlanner::new().plan_fft_forward(len);
        let scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        let window = (0..len)
            .map(|i| {
                let x = std::f32::consts::TAU * i as f32 / len as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        Spectrum {
            rate: rate as f32,
            len,
            fft,
            window,
            history: vec![0.0; len],
            buf: vec![Complex32::default(); len],
            scratch,
            magnitudes: vec![0.0; len / 2 + 1],
            bin_numbers: (0..=len / 2).map(|k| k as f32).collect(),
        }
    }

    /// Takes one hop of mono samples (any length ≤ the window) and recomputes the spectrum.
    pub fn process(&mut self, hop: &[f32]) {
        let len = self.len;
        let n = hop.len().min(len);
        self.history.copy_within(n.., 0);
        self.history[len - n..].copy_from_slice(&hop[hop.len() - n..]);
        for ((b, &x), &w) in self.buf.iter_mut().zip(&self.history).zip(&self.window) {
            *b = Complex32::new(x * w, 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        // Scaled so a full-scale sine reads about 1.0.
        let scale = 4.0 / len as f32;
        for (m, b) in self.magnitudes.iter_mut().zip(&self.buf) {
            // (not `norm()`: its overflow-safe hypot costs more than the FFT here)
            *m = b.norm_sqr().sqrt() * scale;
        }
    }

    /// |X(k)| for k in 0..=len/2.
    pub fn magnitudes(&self) -> &[f32] {
        &self.magnitudes
    }

    /// The last window of time-domain samples (pitch reads them).
    pub fn samples(&self) -> &[f32] {
        &self.history
    }

    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// The analysis window's length in seconds (about 46 ms at any rate).
    pub fn window_secs(&self) -> f32 {
        self.len as f32 / self.rate
    }

    /// Analysis frames (hops) per second.
    pub fn frames_per_sec(&self) -> f32 {
        self.rate / super::HOP as f32
    }

    /// Frequency of bin `k` in Hz.
    pub fn bin_hz(&self, k: usize) -> f32 {
        k as f32 * self.rate / self.len as f32
    }

    /// The bin holding `hz`, clamped to the spectrum.
    pub fn hz_bin(&self, hz: f32) -> usize {
        ((hz * self.len as f32 / self.rate).round().max(0.0) as usize).min(self.len / 2)
    }

    /// Spectral centroid as a fraction of Nyquist (0..1).
    pub fn brightness(&self) -> f32 {
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for (&k, &m) in self.bin_numbers[1..].iter().zip(&self.magnitudes[1..]) {
            num += k * m;
            den += m;
        }
        if den <= 1e-9 {
            0.0
        } else {
            (num / den / (self.len / 2) as f32).clamp(0.0, 1.0)
        }
    }
}

/// `/audio/spectrum`: 32 log-spaced bins from 20 Hz to 20 kHz (or Nyquist), each the peak
/// magnitude in its range, in dB, auto-gained to 0..1.
pub struct LogSpectrum {
    /// `[start, end)` FFT bins of each output bin.
    ranges: [(usize, usize); SPECTRUM_BINS],
    gain: AutoGain,
    values: [f32; SPECTRUM_BINS],
}

impl LogSpectrum {
    pub fn new(spectrum: &Spectrum) -> Self {
        let lo = 20.0f32;
        let hi = 20_000f32.min(spectrum.rate() / 2.0);
        let mut ranges = [(0, 0); SPECTRUM_BINS];
        for (i, r) in ranges.iter_mut().enumerate() {
            let f0 = lo * (hi / lo).powf(i as f32 / SPECTRUM_BINS as f32);
            let f1 = lo * (hi / lo).powf((i + 1) as f32 / SPECTRUM_BINS as f32);
            let a = spectrum.hz_bin(f0);
            let top = spectrum.magnitudes().len();
            let b = spectrum.hz_bin(f1).max(a + 1).min(top);
            *r = (a.min(top - 1), b);
        }
        LogSpectrum {
            ranges,
            gain: AutoGain::new(spectrum.frames_per_sec(), 0.5),
            values: [0.0; SPECTRUM_BINS],
        }
    }

    pub fn process(&mut self, spectrum: &Spectrum) {
        let mags = spectrum.magnitudes();
        let mut peak = 0.0f32;
        let mut db = [0.0f32; SPECTRUM_BINS];
        for (d, &(a, b)) in db.iter_mut().zip(&self.ranges) {
            let m = mags[a..b].iter().fold(0.0f32, |acc, &x| acc.max(x));
            // 60 dB of range above -80 dBFS, as 0..1.
            *d = ((20.0 * (m + 1e-9).log10() + 80.0) / 60.0).max(0.0);
            peak = peak.max(*d);
        }
        let g = self.gain.update(peak);
        for (v, d) in self.values.iter_mut().zip(db) {
            *v = (d * g).clamp(0.0, 1.0);
        }
    }

    pub fn values(&self) -> &[f32; SPECTRUM_BINS] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_peaks_in_its_bin_and_log_bin() {
        let rate = 44_100;
        let mut s = Spectrum::new(rate);
        let f = 1000.0f32;
        let mut log = LogSpectrum::new(&s);
        for h in 0..8 {
            let hop: Vec<f32> = (0..512)
                .map(|i| {
                    let t = (h * 512 + i) as f32 / rate as f32;
                    (std::f32::consts::TAU * f * t).sin()
                })
                .collect();
            s.process(&hop);
            log.process(&s);
        }
        let mags = s.magnitudes();
        let k = mags
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(k, s.hz_bin(f));
        assert!(
            (mags[k] - 1.0).abs() < 0.3,
            "full-scale sine reads {}",
            mags[k]
        );
        let v = log.values();
        let top = v
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        // 1 kHz lies in bin log(1000/20)/log(1000) * 32 ≈ 18.
        assert_eq!(top, 18, "{v:?}");
    }
}
