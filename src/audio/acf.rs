//! Autocorrelation through the FFT, r(τ) = Σᵢ x[i]·x[i+τ], zero-padded so no lag wraps around.
//! Shared by the pitch detector (46 ms of samples) and the tempo tracker (8 s of onset strength).

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

pub struct Autocorrelation {
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl Autocorrelation {
    /// For signals of up to `max_len` samples and up to `lags` lags (0..lags).
    pub fn new(max_len: usize, lags: usize) -> Self {
        let len = (max_len + lags).next_power_of_two();
        let mut planner = FftPlanner::new();
        let forward = planner.plan_fft_forward(len);
        let inverse = planner.plan_fft_inverse(len);
        let scratch_len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        Autocorrelation {
            forward,
            inverse,
            buf: vec![Complex32::default(); len],
            scratch: vec![Complex32::default(); scratch_len],
        }
    }

    /// `out[τ] = r(τ)` for every τ < `out.len()`. Allocates nothing.
    ///
    /// # Panics
    /// If `x` or `out` is longer than this was made for.
    pub fn compute(&mut self, x: &[f32], out: &mut [f32]) {
        let len = self.buf.len();
        assert!(
            x.len() + out.len() <= len,
            "autocorrelation of {} samples at {} lags needs more than {len} points",
            x.len(),
            out.len()
        );
        let (signal, pad) = self.buf.split_at_mut(x.len());
        for (b, &v) in signal.iter_mut().zip(x) {
            *b = Complex32::new(v, 0.0);
        }
        pad.fill(Complex32::default());
        self.forward
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        for b in self.buf.iter_mut() {
            *b = Complex32::new(b.norm_sqr(), 0.0);
        }
        self.inverse
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        let scale = 1.0 / len as f32;
        for (o, b) in out.iter_mut().zip(&self.buf) {
            *o = b.re * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_direct_sum() {
        let x: Vec<f32> = (0..700)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) + (i as f32 * 0.3).sin())
            .collect();
        let mut acf = Autocorrelation::new(x.len(), 350);
        let mut out = vec![0.0; 350];
        acf.compute(&x, &mut out);
        let zero: f32 = x.iter().map(|v| v * v).sum();
        for (lag, &r) in out.iter().enumerate() {
            let direct: f32 = x[lag..].iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!(
                (r - direct).abs() <= 1e-4 * zero,
                "lag {lag}: {r} vs {direct}"
            );
        }
    }

    #[test]
    fn a_shorter_signal_is_zero_padded() {
        let mut acf = Autocorrelation::new(64, 64);
        let mut out = vec![0.0; 4];
        acf.compute(&[1.0, 2.0, 3.0], &mut out);
        let want = [14.0, 8.0, 3.0, 0.0];
        for (r, w) in out.iter().zip(want) {
            assert!((r - w).abs() < 1e-4, "{out:?}");
        }
    }
}
