//! Auto-gain: every level the analysis sends is scaled against its own recent peak, so a quiet
//! room and a club both fill 0..1.

/// Follows the recent peak of a level (fast up, slow down) and gives the gain that maps it to
/// 1. A floor keeps silence from being amplified into noise.
#[derive(Debug, Clone)]
pub struct AutoGain {
    peak: f32,
    decay: f32,
    floor: f32,
}

impl AutoGain {
    /// Updated `frames_per_sec` times a second; the peak falls by half in about 10 s.
    pub fn new(frames_per_sec: f32, floor: f32) -> Self {
        AutoGain {
            peak: floor,
            decay: 0.5f32.powf(1.0 / (10.0 * frames_per_sec)),
            floor,
        }
    }

    pub fn update(&mut self, level: f32) -> f32 {
        self.peak = (self.peak * self.decay).max(level).max(self.floor);
        1.0 / self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_halves_in_ten_seconds() {
        let fps = 86.0;
        let mut g = AutoGain::new(fps, 1e-3);
        assert_eq!(g.update(0.5), 2.0);
        let mut gain = 0.0;
        for _ in 0..(10.0 * fps) as usize {
            gain = g.update(0.0);
        }
        assert!((gain - 4.0).abs() < 0.05, "{gain}");
    }
}
