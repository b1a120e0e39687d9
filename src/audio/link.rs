//! Ableton Link (`[audio.link]`): vj-audio as a peer of the session that DJ software, Resolume
//! and Live share. `publish`: the session's tempo follows the tracked one (when it is confident
//! and steady) and beat 0 of each quantum falls on the detected downbeat. `follow`: with another
//! peer in the session, tempo, beats and bars come from the session's timeline.
//!
//! The peer lives on the analysis thread (never the capture callback): Link's instance, its
//! session-state captures and commits are used from there only.

use serde::Serialize;

use super::config::LinkMode;
use super::TempoSource;

/// What `get_state` says about Link.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkReport {
    /// off | publish | follow.
    pub mode: String,
    /// Other peers in the session.
    pub peers: u64,
    /// The session's tempo (0 with Link off).
    pub tempo: f64,
    pub quantum: f64,
}

impl LinkReport {
    pub fn off() -> Self {
        LinkReport {
            mode: mode_name(LinkMode::Off).into(),
            ..LinkReport::default()
        }
    }

    /// For the status line: "Link follow: 2 peers at 124.0 BPM" (None with Link off).
    pub fn summary(&self) -> Option<String> {
        if self.mode == mode_name(LinkMode::Off) {
            return None;
        }
        let peers = match self.peers {
            1 => "1 peer".to_string(),
            n => format!("{n} peers"),
        };
        Some(format!(
            "Link {}: {peers} at {:.1} BPM",
            self.mode, self.tempo
        ))
    }
}

pub fn mode_name(m: LinkMode) -> &'static str {
    match m {
        LinkMode::Off => "off",
        LinkMode::Publish => "publish",
        LinkMode::Follow => "follow",
    }
}

/// The tracker's tempo reading must be this confident to go into the session.
const MIN_CONFIDENCE: f32 = 0.5;
/// A reading this far (relative) from the one being watched is a new tempo (another track, an
/// octave error): it must hold `STEADY_SECS` before it is published.
const JUMP: f64 = 0.04;
const STEADY_SECS: f64 = 2.0;
/// The session is not moved for less than this (the tracker's wobble)…
const DEADBAND_BPM: f64 = 0.2;
/// …nor more often than this, and with others in the session by at most `MAX_STEP_BPM` a time.
const MIN_INTERVAL_SECS: f64 = 1.0;
const MAX_STEP_BPM: f64 = 2.0;
/// Time constant of the reading's smoothing.
const SMOOTHING_SECS: f64 = 1.0;

/// When the tracked tempo goes into the session: only when confident, held steady for 2 s, not
/// for every small wobble, and towards a new tempo in steps (peers must not hear a jump).
#[derive(Debug, Default)]
pub struct TempoPublisher {
    /// The smoothed reading and since when it has been steady.
    watched: Option<(f64, f64)>,
    last_time: Option<f64>,
    published: Option<f64>,
    /// When the session's tempo was last set.
    committed_at: Option<f64>,
}

impl TempoPublisher {
    /// A frame at `now` (seconds) read `bpm` with `confidence`, from `source`; `session` is
    /// the session's tempo now and `alone` says nobody else is in it. Returns the tempo to
    /// commit now, if any.
    pub fn offer(
        &mut self,
        now: f64,
        bpm: f64,
        confidence: f32,
        source: TempoSource,
        session: f64,
        alone: bool,
    ) -> Option<f64> {
        let dt = self.last_time.map_or(0.0, |t| (now - t).max(0.0));
        self.last_time = Some(now);
        // A session's own tempo (follow mode) is never published back to it.
        let usable = source != TempoSource::Link
            && bpm > 0.0
            && (confidence >= MIN_CONFIDENCE || source == TempoSource::Locked);
        if !usable {
            self.watched = None;
            return None;
        }
        let (smoothed, since) = match self.watched {
            Some((s, since)) if (bpm - s).abs() <= JUMP * s => {
                let a = (dt / SMOOTHING_SECS).min(1.0);
                (s + a * (bpm - s), since)
            }
            _ => (bpm, now),
        };
        self.watched = Some((smoothed, since));
        if now - since < STEADY_SECS
            || self
                .committed_at
                .is_some_and(|t| now - t < MIN_INTERVAL_SECS)
        {
            return None;
        }
        // Against what the session says now: another peer may have moved it.
        let from = if session > 0.0 {
            session
        } else {
            self.published.unwrap_or(smoothed)
        };
        if (smoothed - from).abs() < DEADBAND_BPM && self.published.is_some() {
            return None;
        }
        let target = if alone || self.published.is_none() {
            smoothed
        } else {
            from + (smoothed - from).clamp(-MAX_STEP_BPM, MAX_STEP_BPM)
        };
        // Tenths of a BPM are what peers show; finer steps would only be noise.
        let target = (target * 100.0).round() / 100.0;
        self.published = Some(target);
        self.committed_at = Some(now);
        Some(target)
    }
}

/// Beat 0 of the quantum is moved onto the detected downbeat when it is this far off…
pub const PHASE_TOLERANCE_SECS: f64 = 0.005;
/// …the downbeat is this confident and its bar has held for `STEADY_BARS` (beats counted
/// 1, 2, …, N in order: the bar tracker is not changing its mind); at most this often.
/// (Calibrated: beats about three in four right, raw margin × evidence 0.35 with the table
/// fitted on recordings and tracker songs; 0.2 when it was raw.)
pub const MIN_DOWNBEAT_CONFIDENCE: f32 = 0.75;
pub const STEADY_BARS: u32 = 2;
pub const PHASE_INTERVAL_SECS: f64 = 1.0;

/// Whether the bar has held: beats counted in order for `STEADY_BARS` bars.
#[derive(Debug, Default)]
pub struct SteadyBar {
    last: i32,
    in_order: u32,
}

impl SteadyBar {
    /// A beat at position `count` (1..=`per_bar`) of its bar; says whether it is a downbeat
    /// of a bar that has held.
    pub fn beat(&mut self, count: i32, per_bar: u32) -> bool {
        let next = self.last.rem_euclid(per_bar.max(1) as i32) + 1;
        self.in_order = if count == next { self.in_order + 1 } else { 0 };
        self.last = count;
        count == 1 && self.in_order >= STEADY_BARS * per_bar
    }
}

/// The signed distance in beats from `phase` (0..quantum, the session's phase at a downbeat)
/// to the nearest beat 0 of the quantum.
pub fn phase_error(phase: f64, quantum: f64) -> f64 {
    let p = phase.rem_euclid(quantum);
    if p > 0.5 * quantum {
        p - quantum
    } else {
        p
    }
}

/// The Link peer when `[audio.link]` asks for one: made, reconfigured and dropped as the
/// config changes (mode off: no instance, no sockets).
#[derive(Default)]
pub struct Link {
    #[cfg(feature = "link")]
    peer: Option<peer::LinkPeer>,
}

impl Link {
    /// Follows a config change: joins the session, changes mode or quantum, or leaves.
    pub fn apply(&mut self, config: &super::AudioConfig) {
        #[cfg(feature = "link")]
        match (&mut self.peer, config.link.mode) {
            (Some(_), LinkMode::Off) => {
                self.peer = None;
                tracing::info!("Ableton Link off: left the session");
            }
            (Some(p), _) => p.configure(config),
            (None, LinkMode::Off) => {}
            (None, mode) => {
                self.peer = Some(peer::LinkPeer::new(config));
                tracing::info!(
                    mode = mode_name(mode),
                    quantum = config.link_quantum(),
                    "Ableton Link {}: joined the session (quantum {})",
                    mode_name(mode),
                    config.link_quantum()
                );
            }
        }
        // Without the `link` feature the config refuses any mode but off.
        #[cfg(not(feature = "link"))]
        let _ = config;
    }

    /// After a hop was analysed: the session's timeline to follow from the next hop on, if
    /// following (see `LinkPeer::hop`).
    pub fn hop(
        &mut self,
        frame: &super::AudioFrame,
        source: TempoSource,
        wall: impl Fn(f64) -> Option<std::time::Instant>,
    ) -> Option<super::meter::Timeline> {
        #[cfg(feature = "link")]
        if let Some(p) = &mut self.peer {
            return p.hop(frame, source, wall);
        }
        #[cfg(not(feature = "link"))]
        let _ = (frame, source, wall);
        None
    }

    pub fn report(&self) -> LinkReport {
        #[cfg(feature = "link")]
        if let Some(p) = &self.peer {
            return p.report().clone();
        }
        LinkReport::off()
    }
}

/// Whether this vj-audio was built with Link (the `link` cargo feature).
pub const BUILT: bool = cfg!(feature = "link");

#[cfg(feature = "link")]
mod peer {
    use std::time::Instant;

    use rusty_link::{AblLink, SessionState};

    use super::super::analyzer::AudioFrame;
    use super::super::config::{AudioConfig, LinkMode};
    use super::super::meter::Timeline;
    use super::super::TempoSource;
    use super::*;

    /// The session's tempo before anyone set it (Link's own default).
    const INITIAL_BPM: f64 = 120.0;

    /// One Link instance and what this peer does with it. Created, used and dropped on the
    /// analysis thread only (`capture_app_session_state` is not thread-safe).
    pub struct LinkPeer {
        link: AblLink,
        state: SessionState,
        mode: LinkMode,
        quantum: f64,
        tempo: TempoPublisher,
        phase_at: Option<f64>,
        bar: SteadyBar,
        beats_per_bar: u32,
        report: LinkReport,
    }

    impl LinkPeer {
        /// Joins (or starts) the session on every interface: sockets open here.
        pub fn new(config: &AudioConfig) -> LinkPeer {
            let link = AblLink::new(INITIAL_BPM);
            link.enable(true);
            let mut peer = LinkPeer {
                link,
                state: SessionState::new(),
                mode: config.link.mode,
                quantum: config.link_quantum(),
                tempo: TempoPublisher::default(),
                phase_at: None,
                bar: SteadyBar::default(),
                beats_per_bar: config.beats_per_bar,
                report: LinkReport::default(),
            };
            peer.configure(config);
            peer
        }

        pub fn configure(&mut self, config: &AudioConfig) {
            if config.link.mode != self.mode {
                self.tempo = TempoPublisher::default();
                self.phase_at = None;
            }
            self.mode = config.link.mode;
            self.quantum = config.link_quantum();
            self.beats_per_bar = config.beats_per_bar;
            self.report.mode = mode_name(self.mode).into();
            self.report.quantum = self.quantum;
        }

        pub fn report(&self) -> &LinkReport {
            &self.report
        }

        /// After a hop was analysed: reads the session and, by mode, publishes the tracked
        /// tempo and downbeat into it, or returns the session's timeline for the next hops.
        /// `wall` maps stream time to the machine's clock (None before the stream has one);
        /// `source` is where the frame's tempo came from.
        pub fn hop(
            &mut self,
            frame: &AudioFrame,
            source: TempoSource,
            wall: impl Fn(f64) -> Option<Instant>,
        ) -> Option<Timeline> {
            // Link's clock and ours read together: stream time → Link host time (µs). Read
            // again every hop, so the two clocks' slow drift never adds up.
            let (now, host_now) = (Instant::now(), self.link.clock_micros());
            let host = |t: f64| {
                wall(t).map(|w| {
                    let d = if w >= now {
                        (w - now).as_micros() as i64
                    } else {
                        -((now - w).as_micros() as i64)
                    };
                    host_now + d
                })
            };
            self.link.capture_app_session_state(&mut self.state);
            let peers = self.link.num_peers();
            let session = self.state.tempo();
            self.report.peers = peers;
            self.report.tempo = session;
            let q = self.quantum;
            match self.mode {
                LinkMode::Off => None,
                LinkMode::Follow if peers > 0 => {
                    let at = frame.time;
                    let beat = self.state.beat_at_time(host(at)?, q);
                    Some(Timeline {
                        at,
                        beat,
                        bpm: session,
                        quantum: q,
                    })
                }
                // Alone, a follower keeps the session on the music's tempo: a peer that joins
                // later adopts the session it finds, and must not be pulled to 120 BPM.
                LinkMode::Follow => {
                    self.publish_tempo(frame, source, session, true, host_now);
                    None
                }
                LinkMode::Publish => {
                    let alone = peers == 0;
                    self.publish_tempo(frame, source, session, alone, host_now);
                    if let Some(h) = host(frame.beat_time) {
                        self.publish_beat(frame, source, h);
                    }
                    None
                }
            }
        }

        fn publish_tempo(
            &mut self,
            frame: &AudioFrame,
            source: TempoSource,
            session: f64,
            alone: bool,
            host_now: i64,
        ) {
            let offered = self.tempo.offer(
                frame.time,
                frame.bpm as f64,
                frame.bpm_confidence,
                source,
                session,
                alone,
            );
            if let Some(bpm) = offered {
                self.state.set_tempo(bpm, host_now);
                self.link.commit_app_session_state(&self.state);
                self.report.tempo = bpm;
                tracing::debug!(bpm, "Link: the session's tempo set to {bpm:.2} BPM");
            }
        }

        /// A beat (heard at host time `h`) that the session's beats do not fall on, or a
        /// confident downbeat of a steady bar that the session's quantum does not start on:
        /// the session is moved onto it, the nearest beat (or beat 0 of the nearest quantum)
        /// mapped to `h`. That is an external clock bridged into the session, the one use
        /// Link's docs give `force_beat_at_time`.
        fn publish_beat(&mut self, frame: &AudioFrame, source: TempoSource, h: i64) {
            if !frame.beat {
                return;
            }
            let steady = self.bar.beat(frame.count[0], self.beats_per_bar);
            let downbeat = steady && frame.phase[3] >= MIN_DOWNBEAT_CONFIDENCE;
            let session = self.state.tempo();
            let ours = frame.bpm as f64;
            if source == TempoSource::Link
                || ours <= 0.0
                // Only once the session runs at our tempo: else the phase drifts anyway.
                || (session - ours).abs() > 0.01 * ours
                || self
                    .phase_at
                    .is_some_and(|t| frame.time - t < PHASE_INTERVAL_SECS)
            {
                return;
            }
            let q = self.quantum;
            let beat = self.state.beat_at_time(h, q);
            // In beats: to beat 0 of the nearest quantum, or to the nearest beat.
            let err = if downbeat {
                phase_error(self.state.phase_at_time(h, q), q)
            } else {
                phase_error(beat, 1.0)
            };
            if (err * 60.0 / session).abs() <= PHASE_TOLERANCE_SECS {
                return;
            }
            self.state.force_beat_at_time(beat - err, h, q);
            self.link.commit_app_session_state(&self.state);
            self.phase_at = Some(frame.time);
            tracing::debug!(
                off_ms = err * 60_000.0 / session,
                downbeat,
                "Link: the session's beats moved onto ours"
            );
        }
    }

    impl Drop for LinkPeer {
        fn drop(&mut self) {
            // Leaves the session before the instance (and its sockets) go.
            self.link.enable(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 44_100.0 / 512.0;

    /// Feeds `readings` (bpm, confidence), one per hop, to a publisher whose session always
    /// takes what it publishes; returns the commits as (time, bpm).
    fn run(p: &mut TempoPublisher, readings: &[(f64, f32)], alone: bool) -> Vec<(f64, f64)> {
        let mut session = 120.0;
        let mut commits = Vec::new();
        for (i, &(bpm, c)) in readings.iter().enumerate() {
            let t = i as f64 / FPS;
            if let Some(b) = p.offer(t, bpm, c, TempoSource::Audio, session, alone) {
                session = b;
                commits.push((t, b));
            }
        }
        commits
    }

    fn steady(bpm: f64, secs: f64) -> Vec<(f64, f32)> {
        (0..(secs * FPS) as usize)
            .map(|i| (bpm + 0.1 * ((i as f64) * 0.7).sin(), 0.9))
            .collect()
    }

    #[test]
    fn a_steady_confident_tempo_is_published_once_and_wobble_is_not() {
        let mut p = TempoPublisher::default();
        let commits = run(&mut p, &steady(124.0, 20.0), false);
        assert_eq!(commits.len(), 1, "{commits:?}");
        let (t, bpm) = commits[0];
        assert!((2.0..2.1).contains(&t), "published at {t}");
        assert!((bpm - 124.0).abs() < 0.15, "{bpm}");
    }

    #[test]
    fn an_unconfident_or_linked_tempo_is_never_published() {
        let mut p = TempoPublisher::default();
        let low: Vec<_> = steady(124.0, 10.0)
            .into_iter()
            .map(|(b, _)| (b, 0.3))
            .collect();
        assert!(run(&mut p, &low, false).is_empty());
        let mut p = TempoPublisher::default();
        for i in 0..1000 {
            let t = i as f64 / FPS;
            assert_eq!(p.offer(t, 133.0, 1.0, TempoSource::Link, 120.0, true), None);
        }
    }

    #[test]
    fn a_new_tempo_waits_until_steady_and_is_reached_in_steps_with_peers() {
        let mut p = TempoPublisher::default();
        let mut readings = steady(124.0, 10.0);
        // A 2 s excursion to an octave (a misread), then a new track at 130.
        readings.extend(steady(248.0, 1.5));
        readings.extend(steady(130.0, 20.0));
        let commits = run(&mut p, &readings, false);
        assert!(commits.iter().all(|&(_, b)| b < 131.0), "{commits:?}");
        let after: Vec<_> = commits.iter().filter(|(t, _)| *t > 10.0).collect();
        // 124 → 130 in steps of at most 2 BPM, a second or more apart.
        assert!(after.len() >= 3, "{commits:?}");
        let mut last = commits[0];
        for &&(t, b) in &after {
            assert!(
                (b - last.1).abs() <= 2.0 + 1e-9 && t - last.0 >= 1.0,
                "{commits:?}"
            );
            last = (t, b);
        }
        assert!((last.1 - 130.0).abs() < 0.2, "{commits:?}");
        // Alone in the session, the new tempo goes in at once (nobody hears a jump).
        let mut p = TempoPublisher::default();
        let mut readings = steady(124.0, 5.0);
        readings.extend(steady(130.0, 5.0));
        let commits = run(&mut p, &readings, true);
        assert_eq!(commits.len(), 2, "{commits:?}");
        assert!((commits[1].1 - 130.0).abs() < 0.2, "{commits:?}");
    }

    #[test]
    fn a_bar_is_steady_after_two_bars_counted_in_order() {
        let mut b = SteadyBar::default();
        let counts = [
            1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 1,
        ];
        let steady: Vec<usize> = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| b.beat(c, 4))
            .map(|(i, _)| i)
            .collect();
        // Two whole bars before the "1" at 8; the jump at 14 starts the count again.
        assert_eq!(steady, [8, 12, 22]);
    }

    #[test]
    fn the_phase_error_is_the_way_to_the_nearest_downbeat() {
        assert_eq!(phase_error(0.25, 4.0), 0.25);
        assert_eq!(phase_error(3.75, 4.0), -0.25);
        assert_eq!(phase_error(2.0, 4.0), 2.0);
        assert_eq!(phase_error(4.0, 4.0), 0.0);
    }

    #[test]
    fn the_summary_names_mode_peers_and_tempo() {
        assert_eq!(LinkReport::off().summary(), None);
        let r = LinkReport {
            mode: "follow".into(),
            peers: 2,
            tempo: 124.0,
            quantum: 4.0,
        };
        assert_eq!(
            r.summary().as_deref(),
            Some("Link follow: 2 peers at 124.0 BPM")
        );
    }
}
