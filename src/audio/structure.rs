//! Song structure for visuals: energy trend (loudness now against the last seconds),
//! brightness (spectral centroid / Nyquist), build-up (bass pulled out while energy or
//! brightness rises, or a breakdown) and drop (the bass slamming back in after one).

/// One-pole follower with a time constant in frames.
#[derive(Debug, Clone, Copy)]
struct Follower {
    value: f32,
    coef: f32,
    primed: bool,
}

impl Follower {
    fn new(frames: f32) -> Self {
        Follower {
            value: 0.0,
            coef: 1.0 / frames.max(1.0),
            primed: false,
        }
    }
    fn update(&mut self, x: f32) -> f32 {
        if !self.primed {
            self.value = x;
            self.primed = true;
        }
        self.value += (x - self.value) * self.coef;
        self.value
    }
}

pub struct Structure {
    fps: f32,
    loud_fast: Follower,
    loud_slow: Follower,
    bass_fast: Follower,
    /// The recent bass peak (dB), falling 0.3 dB/s: what "full bass" means in this track.
    bass_ref: f32,
    /// Set after the bass has been out for 2 s (a breakdown); cleared by the drop.
    breakdown: bool,
    bright_fast: Follower,
    bright_slow: Follower,
    /// Frames the bass has been pulled out (a build-up or breakdown in progress).
    low_bass_frames: u32,
    buildup: bool,
    /// Frames left of the drop flag.
    drop_left: u32,
    trend: f32,
    brightness: f32,
}

fn db(x: f32) -> f32 {
    20.0 * (x + 1e-6).log10()
}

impl Structure {
    pub fn new(frames_per_sec: f32) -> Self {
        let f = frames_per_sec;
        Structure {
            fps: f,
            loud_fast: Follower::new(0.3 * f),
            loud_slow: Follower::new(4.0 * f),
            bass_fast: Follower::new(0.2 * f),
            bass_ref: -120.0,
            breakdown: false,
            bright_fast: Follower::new(0.5 * f),
            bright_slow: Follower::new(4.0 * f),
            low_bass_frames: 0,
            buildup: false,
            drop_left: 0,
            trend: 0.0,
            brightness: 0.0,
        }
    }

    /// `rms` of the hop, `bass` amplitude below 250 Hz, `brightness` centroid / Nyquist.
    pub fn process(&mut self, rms: f32, bass: f32, brightness: f32) {
        let lf = self.loud_fast.update(db(rms));
        let ls = self.loud_slow.update(db(rms));
        let bf = self.bass_fast.update(db(bass));
        self.bass_ref = (self.bass_ref - 0.3 / self.fps).max(bf);
        let bs = self.bass_ref;
        let brf = self.bright_fast.update(brightness);
        let brs = self.bright_slow.update(brightness);
        self.brightness = brf.clamp(0.0, 1.0);
        self.trend = ((lf - ls) / 6.0).clamp(-1.0, 1.0);
        let silent = lf < -70.0;
        let bass_out = !silent && bf < bs - 9.0;
        if bass_out {
            self.low_bass_frames += 1;
            if self.low_bass_frames as f32 > 2.0 * self.fps {
                self.breakdown = true;
            }
        } else {
            self.low_bass_frames = 0;
        }
        let rising = lf - ls > 1.0 || brf - brs > 0.01;
        self.buildup = !silent && bass_out && self.breakdown && rising;
        if self.drop_left > 0 {
            self.drop_left -= 1;
        }
        // The drop: the bass back near full weight after a breakdown or build-up.
        if self.breakdown && bf > bs - 4.0 && !silent {
            self.drop_left = (0.5 * self.fps) as u32;
            self.breakdown = false;
            self.buildup = false;
        }
    }

    pub fn buildup(&self) -> bool {
        self.buildup
    }

    /// True for half a second from the drop.
    pub fn drop(&self) -> bool {
        self.drop_left > 0
    }

    /// -1..1: quieter than the last seconds … louder.
    pub fn energy_trend(&self) -> f32 {
        self.trend
    }

    pub fn brightness(&self) -> f32 {
        self.brightness
    }
}
