//! Rates above 88 kHz are brought down by a power of two to 44.1–88 kHz before analysis: the
//! stages work in hops of 512 samples, and at 96 kHz a hop is 5.3 ms, onsets smear over twice
//! the frames and the beat grid was fitted half a beat off (house at 96 kHz: F 0). A windowed-
//! sinc low-pass (flat to 0.37 of the new rate) and then every `factor`-th sample.

use std::borrow::Cow;

/// Analysis runs at the first rate at or below this times a power of two.
const MIN_RATE: u32 = 44_100;
/// Multiply-adds done side by side (two AVX or four SSE registers).
const LANES: usize = 8;

/// How many device samples make one analysed sample at `rate`.
fn factor(rate: u32) -> usize {
    let mut factor = 1usize;
    while rate / (2 * factor as u32) >= MIN_RATE {
        factor *= 2;
    }
    factor
}

/// The rate the analysis runs at for a device at `rate`.
pub fn analysis_rate(rate: u32) -> u32 {
    rate / factor(rate) as u32
}

pub struct Decimator {
    factor: usize,
    /// The filter, newest sample's coefficient last.
    taps: Vec<f32>,
    /// The last `taps.len() - 1` input samples used, then any not yet used.
    buf: Vec<f32>,
}

impl Decimator {
    /// The decimator for input at `rate`: a factor of 1 (a plain copy) up to 88.1 kHz.
    pub fn new(rate: u32) -> Self {
        let factor = factor(rate);
        let taps = if factor == 1 {
            Vec::new() // `process` only copies
        } else {
            // Zero-padded to whole lanes of 8 and stored oldest-sample-first, so that each
            // output is a plain dot product with the window, which the compiler vectorises.
            let mut h = low_pass(32 * factor + 1, 0.45 / factor as f32);
            h.resize(h.len().next_multiple_of(LANES), 0.0);
            h.reverse();
            h
        };
        Decimator {
            factor,
            buf: vec![0.0; taps.len().saturating_sub(1)],
            taps,
        }
    }

    pub fn factor(&self) -> usize {
        self.factor
    }

    /// A whole buffer at `rate`, brought down to the analysis rate: the samples (borrowed when
    /// there is nothing to do, as for most files and the demo loop) and their rate.
    pub fn all(samples: &[f32], rate: u32) -> (Cow<'_, [f32]>, u32) {
        let mut d = Decimator::new(rate);
        if d.factor == 1 {
            return (Cow::Borrowed(samples), rate);
        }
        let mut out = Vec::with_capacity(samples.len() / d.factor);
        d.process(samples, &mut out);
        (Cow::Owned(out), analysis_rate(rate))
    }

    /// Filters `input` and appends one sample per group of `factor` to `out`. Calls continue
    /// one stream, in pieces of any size (a partial group waits for the next call).
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.factor == 1 {
            out.extend_from_slice(input);
            return;
        }
        // `buf`: the last taps − 1 samples already used, then those not yet used.
        let history = self.taps.len() - 1;
        self.buf.extend_from_slice(input);
        let groups = (self.buf.len() - history) / self.factor;
        out.extend((1..=groups).map(|g| {
            let end = history + g * self.factor;
            let window = &self.buf[end - self.taps.len()..end];
            let mut acc = [0.0f32; LANES];
            for (x, h) in window
                .chunks_exact(LANES)
                .zip(self.taps.chunks_exact(LANES))
            {
                for l in 0..LANES {
                    acc[l] += x[l] * h[l];
                }
            }
            acc.iter().sum::<f32>()
        }));
        self.buf.drain(..groups * self.factor);
    }
}

/// A Blackman-windowed sinc low-pass of `n` taps (odd), cutoff in cycles per sample, unit gain
/// at DC.
fn low_pass(n: usize, cutoff: f32) -> Vec<f32> {
    use std::f32::consts::{PI, TAU};
    let mid = (n - 1) as f32 / 2.0;
    let mut taps: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f32 - mid;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (TAU * cutoff * t).sin() / (PI * t)
            };
            let x = i as f32 / (n - 1) as f32;
            let window = 0.42 - 0.5 * (TAU * x).cos() + 0.08 * (2.0 * TAU * x).cos();
            sinc * window
        })
        .collect();
    let sum: f32 = taps.iter().sum();
    taps.iter_mut().for_each(|h| *h /= sum);
    taps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn rates_come_down_to_between_44_1_and_88_khz() {
        for (rate, factor) in [
            (44_100, 1),
            (48_000, 1),
            (88_200, 2),
            (96_000, 2),
            (176_400, 4),
            (192_000, 4),
        ] {
            assert_eq!(Decimator::new(rate).factor(), factor, "{rate}");
            assert_eq!(analysis_rate(rate) * factor as u32, rate);
        }
    }

    #[test]
    fn music_passes_and_what_would_alias_does_not() {
        // At 96 kHz in, 48 kHz out: 1 kHz and 15 kHz pass, 30 kHz (which would fold to
        // 18 kHz) is gone. Fed in odd-sized pieces, as a device may deliver.
        for (hz, gain) in [(1_000.0, 1.0), (15_000.0, 1.0), (30_000.0, 0.0)] {
            let input = tone(96_000, hz, 0.5);
            let mut d = Decimator::new(96_000);
            let mut out = Vec::new();
            for piece in input.chunks(999) {
                d.process(piece, &mut out);
            }
            assert_eq!(out.len(), input.len() / 2);
            let got = rms(&out[1_000..]) / rms(&input);
            assert!((got - gain).abs() < 0.01, "{hz} Hz: gain {got}");
        }
    }
}
