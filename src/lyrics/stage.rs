//! The song on stage: what the lyrics loop knows of the current track, and what it sends when
//! playback, a lookup or a command says something new. Everything here runs on the loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::lookup::{self, Event};
use super::moods::MoodLlm;
use super::song::{self, ActiveShown, Song};
use super::worker::{LyricsView, Shared, View};
use super::{Found, LineFollower};
use crate::karaoke::{self, NowPlaying, PlaybackEvent};
use crate::osc::OscOut;
use crate::service::backoff::Backoff;
use crate::worker::{Health, StatusLine};

/// After an unanswered lookup LRCLIB is asked again after 8 s, doubling up to 2 min.
const RETRY: Backoff = Backoff::new(Duration::from_secs(8), Duration::from_secs(120));

/// The song being played and how far the loop got with it.
struct Current {
    track: NowPlaying,
    generation: u64,
    song: Option<Arc<Song>>,
    follower: LineFollower,
    shown: ActiveShown,
    /// The last lookup got no answer: LRCLIB is asked again then (`None` while asking).
    retry_at: Option<Instant>,
    /// Set while lookups go unanswered: the wait planned after the last one, and its error
    /// (a repeat of the same error is not logged again).
    failing: Option<(Duration, String)>,
    retry: Backoff,
}

/// The loop's own state.
pub struct Stage {
    shared: Arc<Shared>,
    osc: Arc<OscOut>,
    pub llm: Option<Arc<MoodLlm>>,
    current: Option<Current>,
    generation: u64,
    offset_ms: i64,
    /// Moods sent for the last song, cleared (0) when the next song does not have them.
    moods_shown: Vec<&'static str>,
}

impl Stage {
    pub fn new(
        shared: Arc<Shared>,
        osc: Arc<OscOut>,
        llm: Option<Arc<MoodLlm>>,
        offset_ms: i64,
    ) -> Stage {
        Stage {
            shared,
            osc,
            llm,
            current: None,
            generation: 0,
            offset_ms,
            moods_shown: Vec::new(),
        }
    }

    fn update_view(&self, f: impl FnOnce(&mut View)) {
        self.shared.update_view(f);
    }

    /// The status line for what is on stage.
    pub fn status(&self) -> StatusLine {
        let Some(cur) = &self.current else {
            return StatusLine::new(
                Health::Ok,
                format!("waiting for /karaoke/track on udp://{}", self.shared.listen),
            );
        };
        let name = format!("'{}' by {}", cur.track.title, cur.track.artist);
        // While LRCLIB stays unreachable the line stays the same (no countdown): it changes,
        // and is logged, when the wait does.
        if let Some((wait, _)) = &cur.failing {
            return StatusLine::new(
                Health::Degraded,
                format!("LRCLIB unreachable, retry in {}s", wait.as_secs()),
            );
        }
        let detail = match &cur.song {
            None => format!("fetching lyrics of {name}"),
            Some(s) if s.instrumental => format!("{name}: instrumental"),
            Some(s) if !s.has_lyrics() => format!("{name}: no lyrics on LRCLIB"),
            Some(s) => format!(
                "{name}: {} {} lines",
                s.lyrics.lines.len(),
                if s.lyrics.is_synced() {
                    "synced"
                } else {
                    "plain"
                }
            ),
        };
        StatusLine::new(Health::Ok, detail)
    }

    /// A new song (or nothing): clear the stage and start looking its lyrics up.
    fn start_track(&mut self, track: Option<NowPlaying>, lookup: bool) {
        for m in song::resets() {
            self.osc.send(&m);
        }
        self.current = None;
        let Some(track) = track else {
            self.update_view(|v| {
                *v = View {
                    active_line: -1,
                    ..View::default()
                }
            });
            return;
        };
        self.generation += 1;
        info!(track = %format!("{} - {}", track.artist, track.title), source = %track.source, "new track from {}: {} - {}", track.source, track.artist, track.title);
        if lookup {
            lookup::spawn_fetch(&self.shared, self.generation, &track);
        }
        self.update_view(|v| {
            *v = View {
                track: Some(track.clone()),
                fetching: lookup,
                active_line: -1,
                ..View::default()
            }
        });
        self.current = Some(Current {
            track,
            generation: self.generation,
            song: None,
            follower: LineFollower::new(&Default::default(), self.offset_ms),
            shown: ActiveShown::default(),
            retry_at: None,
            failing: None,
            retry: RETRY,
        });
    }

    /// Lyrics arrived for the current song: announce them and start following.
    fn show(&mut self, found: Found) {
        let Some(cur) = &mut self.current else {
            return;
        };
        let song = Arc::new(Song::from_entry(&found.entry));
        for m in song.announce() {
            self.osc.send(&m);
        }
        if song.has_lyrics() != cur.track.has_lyrics {
            let mut t = cur.track.clone();
            t.has_lyrics = song.has_lyrics();
            self.osc.send(&karaoke::track_message(Some(&t)));
        }
        cur.follower.set_lyrics(&song.lyrics);
        cur.shown = ActiveShown::default();
        cur.retry_at = None;
        cur.failing = None;
        cur.retry.reset();
        if song.has_lyrics() {
            lookup::spawn_moods(
                &self.shared,
                self.llm.clone(),
                cur.generation,
                &cur.track,
                &song,
            );
        } else {
            // Nothing to score: clear the last song's moods rather than leave them standing.
            let zeros: Vec<(&str, f32)> = self.moods_shown.drain(..).map(|m| (m, 0.0)).collect();
            for m in song::categories(&zeros) {
                self.osc.send(&m);
            }
        }
        let view = LyricsView {
            lines: song.lyrics.lines.len(),
            synced: song.lyrics.is_synced(),
            instrumental: song.instrumental,
            refrain_lines: song.refrain.lines.len(),
            from_cache: found.from_cache,
        };
        self.shared.update_view(|v| {
            v.fetching = false;
            v.lyrics = Some(view);
            v.last_error = None;
        });
        cur.song = Some(song);
    }

    pub fn on_playback(&mut self, ev: PlaybackEvent, now: Instant) {
        match ev {
            PlaybackEvent::Position(p) => {
                if let Some(cur) = &mut self.current {
                    cur.follower.set_position(p, now);
                }
            }
            PlaybackEvent::Track(None) => {
                if self.current.is_some() {
                    self.start_track(None, false);
                }
            }
            PlaybackEvent::Track(Some(t)) => {
                let Some(cur) = self.current.as_mut().filter(|c| c.track.same_song(&t)) else {
                    self.start_track(Some(t), true);
                    return;
                };
                if t.duration_s > 0.0 && t.duration_s != cur.track.duration_s {
                    cur.track.duration_s = t.duration_s;
                }
                // Another sender's has_lyrics differs from ours: say ours again. Our own echo
                // (the /karaoke/ route leads back here) agrees, so this cannot loop.
                if let Some(song) = &cur.song {
                    if t.has_lyrics != song.has_lyrics() {
                        let mut mine = cur.track.clone();
                        mine.has_lyrics = song.has_lyrics();
                        self.osc.send(&karaoke::track_message(Some(&mine)));
                    }
                }
            }
        }
    }

    pub fn on_event(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Fetched { generation, result } => {
                let Some(cur) = self.current.as_mut().filter(|c| c.generation == generation) else {
                    return;
                };
                match result {
                    Ok(found) => self.show(found),
                    Err(e) => {
                        let wait = cur.retry.next_wait();
                        cur.retry_at = Some(now + wait);
                        let (t, secs) = (&cur.track, wait.as_secs());
                        if cur.failing.as_ref().is_none_or(|(_, last)| *last != e) {
                            warn!(error = %e, retry_in = secs, "lyrics lookup of {} - {} failed: {e}; asking again in {secs}s", t.artist, t.title);
                        } else {
                            tracing::debug!(error = %e, retry_in = secs, "lyrics lookup failed again");
                        }
                        cur.failing = Some((wait, e.clone()));
                        self.update_view(|v| {
                            v.fetching = false;
                            v.last_error = Some(e);
                        });
                    }
                }
            }
            Event::Moods {
                generation,
                scores,
                source,
            } => {
                if self.current.as_ref().map(|c| c.generation) != Some(generation) {
                    return;
                }
                let mut send: Vec<(&str, f32)> = scores.clone();
                for m in &self.moods_shown {
                    if !scores.iter().any(|(s, _)| s == m) {
                        send.push((m, 0.0));
                    }
                }
                for m in song::categories(&send) {
                    self.osc.send(&m);
                }
                self.moods_shown = scores.iter().map(|(m, _)| *m).collect();
                self.update_view(|v| {
                    v.moods = scores.iter().map(|(m, s)| (m.to_string(), *s)).collect();
                    v.mood_source = Some(source);
                });
            }
            Event::Show { track, found } => {
                self.start_track(Some(track), false);
                self.show(found);
            }
        }
    }

    /// Sends the active line if it changed; starts a due retry.
    pub fn follow(&mut self, now: Instant) {
        let Some(cur) = &mut self.current else {
            return;
        };
        if let Some(at) = cur.retry_at {
            if at <= now {
                cur.retry_at = None;
                self.shared.update_view(|v| v.fetching = true);
                lookup::spawn_fetch(&self.shared, cur.generation, &cur.track);
            }
        }
        let Some(song) = &cur.song else { return };
        if let Some(line) = cur.follower.update(now) {
            for m in song.active(line, &mut cur.shown) {
                self.osc.send(&m);
            }
            self.shared.update_view(|v| v.active_line = line);
        }
    }

    /// When the loop must next look: the next sung-line change or a due retry.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        let cur = self.current.as_ref()?;
        let next_line = cur.song.as_ref().and(cur.follower.next_change(now));
        match (next_line, cur.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A new `offset_ms` moves every line at once, the current song's included.
    pub fn set_offset(&mut self, offset_ms: i64) {
        self.offset_ms = offset_ms;
        if let Some(cur) = &mut self.current {
            cur.follower.set_offset(offset_ms);
        }
    }
}
