//! What both monitors share: a playback clock interpolated between reports, and the announcer
//! that sends `/karaoke/track` on every change and `/karaoke/pos` at 4 Hz while playing.

use std::sync::Arc;

use serde::Serialize;
use tokio::time::{Duration, Instant};

use crate::karaoke::{position_message, track_message, NowPlaying, Position};
use crate::osc::OscOut;

/// `/karaoke/pos` period while something plays: 4 Hz, so lyrics move smoothly.
pub const POSITION_PERIOD: Duration = Duration::from_millis(250);

/// A position reported at an instant, moving at 1× while playing, stopped at the song's end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaybackClock {
    pub at: Instant,
    pub seconds: f64,
    pub playing: bool,
    /// Seconds; the clock stops there.
    pub duration_s: Option<f64>,
}

impl PlaybackClock {
    /// The position at `now`.
    pub fn position(&self, now: Instant) -> Position {
        let mut s = self.seconds;
        if self.playing {
            s += now.saturating_duration_since(self.at).as_secs_f64();
        }
        let mut playing = self.playing;
        if let Some(d) = self.duration_s.filter(|d| *d > 0.0) {
            if s >= d {
                s = d;
                playing = false;
            }
        }
        Position {
            seconds: s.max(0.0) as f32,
            playing,
        }
    }
}

/// Counters for get_state and heartbeats.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Announced {
    pub tracks: u64,
    pub positions: u64,
}

/// Sends what plays: the track when it changes, the position while it moves.
pub struct Announcer {
    osc: Arc<OscOut>,
    /// `None` before the first announcement; `Some(None)` = "nothing plays" was sent.
    track: Option<Option<NowPlaying>>,
    clock: Option<PlaybackClock>,
    next_tick: Option<Instant>,
    pub counts: Announced,
}

impl Announcer {
    pub fn new(osc: Arc<OscOut>) -> Self {
        Announcer {
            osc,
            track: None,
            clock: None,
            next_tick: None,
            counts: Announced::default(),
        }
    }

    pub fn current(&self) -> Option<&NowPlaying> {
        self.track.as_ref().and_then(Option::as_ref)
    }

    /// Announces `track` if it differs from what was last said (or nothing was said yet);
    /// says whether it did. A new track also needs a new [`Announcer::clock`].
    pub fn track(&mut self, track: Option<NowPlaying>) -> bool {
        if self.track.as_ref() == Some(&track) {
            return false;
        }
        self.osc.send(&track_message(track.as_ref()));
        self.counts.tracks += 1;
        if track.is_none() {
            self.set_clock(None, Instant::now());
        }
        self.track = Some(track);
        true
    }

    /// Sets where playback is and sends it now (when something plays, or it just stopped).
    pub fn set_clock(&mut self, clock: Option<PlaybackClock>, now: Instant) {
        let was = self.clock.take();
        self.clock = clock;
        self.next_tick = None;
        match (clock, was) {
            (Some(_), _) => self.tick(now),
            (None, Some(c)) if c.playing => {
                let p = c.position(now);
                self.send_position(Position {
                    playing: false,
                    ..p
                });
            }
            _ => {}
        }
    }

    pub fn clock(&self) -> Option<PlaybackClock> {
        self.clock
    }

    fn send_position(&mut self, p: Position) {
        self.osc.send(&position_message(p));
        self.counts.positions += 1;
    }

    /// Sends the position and plans the next tick (none once playback stopped).
    pub fn tick(&mut self, now: Instant) {
        let Some(clock) = self.clock else {
            self.next_tick = None;
            return;
        };
        let p = clock.position(now);
        self.send_position(p);
        self.next_tick = p.playing.then(|| now + POSITION_PERIOD);
    }

    /// When [`Announcer::tick`] is due; `None` = nothing moves (no wake-ups).
    pub fn next_tick(&self) -> Option<Instant> {
        self.next_tick
    }

    pub fn position(&self, now: Instant) -> Option<Position> {
        self.clock.map(|c| c.position(now))
    }
}

/// Resolves at `deadline`, never when there is none.
pub async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_while_playing_and_stops_at_the_end() {
        let t0 = Instant::now();
        let c = PlaybackClock {
            at: t0,
            seconds: 10.0,
            playing: true,
            duration_s: Some(12.0),
        };
        let p = c.position(t0 + Duration::from_millis(1500));
        assert!((p.seconds - 11.5).abs() < 1e-3 && p.playing);
        let p = c.position(t0 + Duration::from_secs(5));
        assert_eq!((p.seconds, p.playing), (12.0, false));
        let paused = PlaybackClock {
            playing: false,
            ..c
        };
        assert_eq!(paused.position(t0 + Duration::from_secs(1)).seconds, 10.0);
    }
}
