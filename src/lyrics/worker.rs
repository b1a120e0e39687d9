//! `impl Worker` for the lyrics fetcher: one event loop receives playback OSC, starts lookups,
//! sends lyrics, and sleeps until exactly the next sung-line change (no polling).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rosc::{OscMessage, OscPacket};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Duration, Instant};
use tracing::{debug, info, warn};

use crate::bus::message::{Command, Outcome};
use crate::config::{Config, LyricsConfig};
use crate::karaoke::{self, NowPlaying, PlaybackEvent};
use crate::osc::OscOut;
use crate::service::{activation, credentials};
use crate::worker::{Context, Health, Worker};

use super::moods::{self, MoodLlm, MoodScores};
use super::song::{self, ActiveShown, Song};
use super::{find_lyrics, Found, LineFollower, LrclibClient, LyricsCache, RetryPolicy, TrackQuery};

const MAX_DATAGRAM: usize = 65_536;
/// After an unanswered lookup LRCLIB is asked again after this long, doubling up to the max.
const FIRST_RETRY: Duration = Duration::from_secs(8);
const MAX_RETRY: Duration = Duration::from_secs(120);
const BACKOFF: Duration = Duration::from_millis(500);

/// What the event loop hears from lookups, the mood task and commands.
enum Event {
    Fetched {
        generation: u64,
        result: Result<Found, String>,
    },
    Moods {
        generation: u64,
        scores: MoodScores,
        source: &'static str,
    },
    /// `fetch_lyrics` found a song: make it the current one.
    Show { track: NowPlaying, found: Found },
}

/// What `get_state` shows, kept up to date by the loop.
#[derive(Debug, Clone, Default, Serialize)]
struct View {
    track: Option<NowPlaying>,
    fetching: bool,
    lyrics: Option<LyricsView>,
    active_line: i32,
    moods: Vec<(String, f32)>,
    mood_source: Option<&'static str>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct LyricsView {
    lines: usize,
    synced: bool,
    instrumental: bool,
    refrain_lines: usize,
    from_cache: bool,
}

#[derive(Debug, Default)]
struct InCounters {
    datagrams: AtomicU64,
    playback: AtomicU64,
    /// Not OSC, or a `/karaoke/track`/`pos` of the wrong shape.
    malformed: AtomicU64,
    /// Other addresses (our own `/karaoke/lyrics/*` come back through the `/karaoke/` route).
    ignored: AtomicU64,
}

pub struct LyricsFetcher {
    cache: Arc<LyricsCache>,
    client: Mutex<Arc<LrclibClient>>,
    llm: Mutex<Option<Arc<MoodLlm>>>,
    /// "not configured" | "not asked yet" | "ok" | the last failure.
    llm_state: Arc<Mutex<String>>,
    view: Mutex<View>,
    osc_in: InCounters,
    events: mpsc::UnboundedSender<Event>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// Bound in `start`, so playback sent once the worker answers is never lost.
    socket: Mutex<Option<std::net::UdpSocket>>,
    listen: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lrclib_client(c: &LyricsConfig) -> anyhow::Result<LrclibClient> {
    Ok(LrclibClient::new(
        &c.lrclib_url,
        RetryPolicy {
            timeout: Duration::from_millis(c.timeout_ms),
            retries: c.retries,
            backoff: BACKOFF,
        },
    )?)
}

fn mood_llm(c: &LyricsConfig) -> (Option<MoodLlm>, String) {
    if c.llm.url.is_empty() {
        return (None, "not configured (word lists)".into());
    }
    let key = match credentials::read("llm_api_key") {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "llm_api_key unreadable; asking the LLM without a key");
            None
        }
    };
    let timeout = Duration::from_millis(c.llm.timeout_ms);
    (
        Some(MoodLlm::new(&c.llm.url, &c.llm.model, key, timeout)),
        "not asked yet".into(),
    )
}

/// Resolves at `deadline`, never when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn flatten(packet: OscPacket, out: &mut Vec<OscMessage>) {
    match packet {
        OscPacket::Message(m) => out.push(m),
        OscPacket::Bundle(b) => b.content.into_iter().for_each(|p| flatten(p, out)),
    }
}

fn query(track: &NowPlaying) -> TrackQuery {
    TrackQuery {
        artist: track.artist.clone(),
        title: track.title.clone(),
        album: track.album.clone(),
        duration_s: f64::from(track.duration_s),
    }
}

/// The song being played and how far the loop got with it.
struct Current {
    track: NowPlaying,
    generation: u64,
    song: Option<Arc<Song>>,
    follower: LineFollower,
    shown: ActiveShown,
    /// The last lookup got no answer: LRCLIB is asked again then (`None` while asking).
    retry_at: Option<Instant>,
    /// How long to wait after the next unanswered lookup; `None` = the last one was answered.
    backoff: Option<Duration>,
}

/// The loop's own state.
struct Stage {
    current: Option<Current>,
    generation: u64,
    offset_ms: i64,
    /// Moods sent for the last song, cleared (0) when the next song does not have them.
    moods_shown: Vec<&'static str>,
}

impl LyricsFetcher {
    fn client(&self) -> Arc<LrclibClient> {
        lock(&self.client).clone()
    }

    fn update_view(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.view));
    }

    fn spawn_fetch(&self, generation: u64, track: &NowPlaying) {
        let (cache, client, tx, q) = (
            self.cache.clone(),
            self.client(),
            self.events.clone(),
            query(track),
        );
        tokio::spawn(async move {
            let result = find_lyrics(&cache, &client, &q)
                .await
                .map_err(|e| e.to_string());
            let _ = tx.send(Event::Fetched { generation, result });
        });
    }

    fn spawn_moods(&self, generation: u64, track: &NowPlaying, song: &Song) {
        let lines: Vec<String> = song.lyrics.lines.iter().map(|l| l.text.clone()).collect();
        let llm = lock(&self.llm).clone();
        let (cache, tx, state) = (
            self.cache.clone(),
            self.events.clone(),
            self.llm_state.clone(),
        );
        let (artist, title) = (track.artist.clone(), track.title.clone());
        tokio::spawn(async move {
            let (scores, source) =
                song_moods(&cache, llm.as_deref(), &state, &artist, &title, &lines).await;
            let _ = tx.send(Event::Moods {
                generation,
                scores,
                source,
            });
        });
    }

    fn status_line(&self, ctx: &Context, stage: &Stage) {
        let Some(cur) = &stage.current else {
            ctx.status.set(
                Health::Ok,
                format!("waiting for /karaoke/track on udp://{}", self.listen),
            );
            return;
        };
        let name = format!("'{}' by {}", cur.track.title, cur.track.artist);
        let line = match (&cur.song, cur.backoff) {
            (_, Some(_)) => match cur.retry_at {
                Some(at) => format!(
                    "degraded: LRCLIB unreachable, retry in {}s",
                    at.saturating_duration_since(Instant::now())
                        .as_secs()
                        .max(1)
                ),
                None => format!("degraded: LRCLIB unreachable, asking again for {name}"),
            },
            (None, None) => format!("fetching lyrics of {name}"),
            (Some(s), None) if s.instrumental => format!("{name}: instrumental"),
            (Some(s), None) if !s.has_lyrics() => format!("{name}: no lyrics on LRCLIB"),
            (Some(s), None) => format!(
                "{name}: {} {} lines",
                s.lyrics.lines.len(),
                if s.lyrics.is_synced() {
                    "synced"
                } else {
                    "plain"
                }
            ),
        };
        let health = if cur.backoff.is_some() {
            Health::Degraded
        } else {
            Health::Ok
        };
        ctx.status.set(health, line);
    }

    /// A new song (or nothing): clear the stage and start looking its lyrics up.
    fn start_track(
        &self,
        stage: &mut Stage,
        osc: &OscOut,
        track: Option<NowPlaying>,
        lookup: bool,
    ) {
        for m in song::resets() {
            osc.send(&m);
        }
        stage.current = None;
        let Some(track) = track else {
            self.update_view(|v| {
                *v = View {
                    active_line: -1,
                    ..View::default()
                }
            });
            return;
        };
        stage.generation += 1;
        info!(track = %format!("{} - {}", track.artist, track.title), source = %track.source, "new track");
        if lookup {
            self.spawn_fetch(stage.generation, &track);
        }
        self.update_view(|v| {
            *v = View {
                track: Some(track.clone()),
                fetching: lookup,
                active_line: -1,
                ..View::default()
            }
        });
        stage.current = Some(Current {
            track,
            generation: stage.generation,
            song: None,
            follower: LineFollower::new(&Default::default(), stage.offset_ms),
            shown: ActiveShown::default(),
            retry_at: None,
            backoff: None,
        });
    }

    /// Lyrics arrived for the current song: announce them and start following.
    fn show(&self, stage: &mut Stage, osc: &OscOut, found: Found) {
        let Some(cur) = &mut stage.current else {
            return;
        };
        let song = Arc::new(Song::from_entry(&found.entry));
        for m in song.announce() {
            osc.send(&m);
        }
        if song.has_lyrics() != cur.track.has_lyrics {
            let mut t = cur.track.clone();
            t.has_lyrics = song.has_lyrics();
            osc.send(&karaoke::track_message(Some(&t)));
        }
        cur.follower.set_lyrics(&song.lyrics);
        cur.shown = ActiveShown::default();
        cur.retry_at = None;
        cur.backoff = None;
        if song.has_lyrics() {
            self.spawn_moods(cur.generation, &cur.track, &song);
        } else {
            // Nothing to score: clear the last song's moods rather than leave them standing.
            let zeros: Vec<(&str, f32)> = stage.moods_shown.drain(..).map(|m| (m, 0.0)).collect();
            for m in song::categories(&zeros) {
                osc.send(&m);
            }
        }
        let view = LyricsView {
            lines: song.lyrics.lines.len(),
            synced: song.lyrics.is_synced(),
            instrumental: song.instrumental,
            refrain_lines: song.refrain.lines.len(),
            from_cache: found.from_cache,
        };
        self.update_view(|v| {
            v.fetching = false;
            v.lyrics = Some(view);
            v.last_error = None;
        });
        cur.song = Some(song);
    }

    fn on_playback(&self, stage: &mut Stage, osc: &OscOut, ev: PlaybackEvent, now: Instant) {
        match ev {
            PlaybackEvent::Position(p) => {
                if let Some(cur) = &mut stage.current {
                    cur.follower.set_position(p, now);
                }
            }
            PlaybackEvent::Track(None) => {
                if stage.current.is_some() {
                    self.start_track(stage, osc, None, false);
                }
            }
            PlaybackEvent::Track(Some(t)) => {
                let Some(cur) = stage.current.as_mut().filter(|c| c.track.same_song(&t)) else {
                    self.start_track(stage, osc, Some(t), true);
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
                        osc.send(&karaoke::track_message(Some(&mine)));
                    }
                }
            }
        }
    }

    fn on_datagram(&self, stage: &mut Stage, osc: &OscOut, bytes: &[u8], now: Instant) {
        self.osc_in.datagrams.fetch_add(1, Ordering::Relaxed);
        let packet = match rosc::decoder::decode_udp(bytes) {
            Ok((_, p)) => p,
            Err(e) => {
                self.osc_in.malformed.fetch_add(1, Ordering::Relaxed);
                debug!(len = bytes.len(), error = ?e, "malformed OSC packet ignored");
                return;
            }
        };
        let mut msgs = Vec::new();
        flatten(packet, &mut msgs);
        for m in msgs {
            match karaoke::parse_playback(&m) {
                Ok(Some(ev)) => {
                    self.osc_in.playback.fetch_add(1, Ordering::Relaxed);
                    self.on_playback(stage, osc, ev, now);
                }
                Ok(None) => {
                    self.osc_in.ignored.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.osc_in.malformed.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, "misshapen playback message ignored");
                }
            }
        }
    }

    fn on_event(&self, stage: &mut Stage, osc: &OscOut, ev: Event, now: Instant) {
        match ev {
            Event::Fetched { generation, result } => {
                let Some(cur) = stage
                    .current
                    .as_mut()
                    .filter(|c| c.generation == generation)
                else {
                    return;
                };
                match result {
                    Ok(found) => self.show(stage, osc, found),
                    Err(e) => {
                        let wait = cur.backoff.unwrap_or(FIRST_RETRY);
                        cur.retry_at = Some(now + wait);
                        cur.backoff = Some((wait * 2).min(MAX_RETRY));
                        warn!(error = %e, retry_in = ?wait, "lyrics lookup failed");
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
                if stage.current.as_ref().map(|c| c.generation) != Some(generation) {
                    return;
                }
                let mut send: Vec<(&str, f32)> = scores.clone();
                for m in &stage.moods_shown {
                    if !scores.iter().any(|(s, _)| s == m) {
                        send.push((m, 0.0));
                    }
                }
                for m in song::categories(&send) {
                    osc.send(&m);
                }
                stage.moods_shown = scores.iter().map(|(m, _)| *m).collect();
                self.update_view(|v| {
                    v.moods = scores.iter().map(|(m, s)| (m.to_string(), *s)).collect();
                    v.mood_source = Some(source);
                });
            }
            Event::Show { track, found } => {
                self.start_track(stage, osc, Some(track), false);
                self.show(stage, osc, found);
            }
        }
    }

    /// Sends the active line if it changed; starts a due retry.
    fn follow(&self, stage: &mut Stage, osc: &OscOut, now: Instant) {
        let Some(cur) = &mut stage.current else {
            return;
        };
        if let Some(at) = cur.retry_at {
            if at <= now {
                cur.retry_at = None;
                self.update_view(|v| v.fetching = true);
                self.spawn_fetch(cur.generation, &cur.track);
            }
        }
        let Some(song) = &cur.song else { return };
        if let Some(line) = cur.follower.update(now) {
            for m in song.active(line, &mut cur.shown) {
                osc.send(&m);
            }
            self.update_view(|v| v.active_line = line);
        }
    }

    fn deadline(stage: &Stage, now: Instant) -> Option<Instant> {
        let cur = stage.current.as_ref()?;
        let next_line = cur.song.as_ref().and(cur.follower.next_change(now));
        match (next_line, cur.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn apply_config(&self, stage: &mut Stage, old: &Config, new: &Config) {
        let (o, n) = (&old.lyrics, &new.lyrics);
        if (&o.lrclib_url, o.timeout_ms, o.retries) != (&n.lrclib_url, n.timeout_ms, n.retries) {
            match lrclib_client(n) {
                Ok(c) => *lock(&self.client) = Arc::new(c),
                Err(e) => warn!(error = %e, "keeping the previous LRCLIB client"),
            }
        }
        if o.llm != n.llm {
            let (llm, state) = mood_llm(n);
            *lock(&self.llm) = llm.map(Arc::new);
            *lock(&self.llm_state) = state;
        }
        stage.offset_ms = n.offset_ms;
        if let Some(cur) = &mut stage.current {
            cur.follower.set_offset(n.offset_ms);
        }
    }

    async fn fetch_lyrics(&self, cmd: &Command) -> Result<Value, Outcome> {
        let artist = cmd.str("artist")?.trim().to_string();
        let title = cmd.str("title")?.trim().to_string();
        if artist.is_empty() || title.is_empty() {
            return Err(Outcome::fail(
                "bad argument: `artist` and `title` must not be empty",
            ));
        }
        let album = cmd.opt_str("album")?.unwrap_or("").to_string();
        let duration = cmd.opt_f64("duration")?.unwrap_or(0.0);
        if !(0.0..=86_400.0).contains(&duration) {
            return Err(Outcome::fail(format!(
                "bad argument `duration`: expected seconds 0..86400, got {duration}"
            )));
        }
        let track = NowPlaying {
            source: "manual".into(),
            artist,
            title,
            album,
            duration_s: duration as f32,
            has_lyrics: false,
        };
        let found = find_lyrics(&self.cache, &self.client(), &query(&track))
            .await
            .map_err(|e| Outcome::fail(format!("fetch_lyrics: {e}")))?;
        let song = Song::from_entry(&found.entry);
        let lines: Vec<Value> = song
            .lyrics
            .lines
            .iter()
            .map(|l| json!({"time": l.time_ms.map(|ms| ms as f64 / 1000.0), "text": l.text}))
            .collect();
        let data = json!({
            "artist": track.artist,
            "title": track.title,
            "found": found.entry.found,
            "instrumental": song.instrumental,
            "synced": song.lyrics.is_synced(),
            "from_cache": found.from_cache,
            "line_count": lines.len(),
            "lines": lines,
        });
        let _ = self.events.send(Event::Show { track, found });
        Ok(data)
    }
}

/// The moods of a song: the LLM's (cached per song) when configured and answering sensibly,
/// else the word lists'.
async fn song_moods(
    cache: &LyricsCache,
    llm: Option<&MoodLlm>,
    state: &Mutex<String>,
    artist: &str,
    title: &str,
    lines: &[String],
) -> (MoodScores, &'static str) {
    let words = || moods::score_words(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let Some(llm) = llm else {
        return (words(), "words");
    };
    let path = cache.path(artist, title, "moods.json");
    let read = path.clone();
    let cached = tokio::task::spawn_blocking(move || std::fs::read(read).ok())
        .await
        .ok()
        .flatten();
    if let Some(scores) = cached
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| moods::parse_llm_answer(&s))
    {
        return (scores, "llm (cached)");
    }
    match llm.moods(artist, title, &lines.join("\n")).await {
        Ok(scores) => {
            *lock(state) = "ok".into();
            let object: Map<String, Value> = scores
                .iter()
                .map(|(m, s)| (m.to_string(), json!(s)))
                .collect();
            let (c, bytes) = (
                cache.clone(),
                serde_json::to_vec(&object).unwrap_or_default(),
            );
            let _ = tokio::task::spawn_blocking(move || c.write(&path, &bytes)).await;
            (scores, "llm")
        }
        Err(e) => {
            warn!(error = %e, "LLM moods failed; using word lists");
            *lock(state) = e.to_string();
            (words(), "words (LLM failed)")
        }
    }
}

impl Worker for LyricsFetcher {
    const BUS_NAME: &'static str = "lyrics_fetcher";
    const CONFIG_SECTION: &'static str = "lyrics";

    async fn start(ctx: &Context) -> anyhow::Result<Self> {
        let config = ctx.config();
        let client = lrclib_client(&config.lyrics)?;
        let (llm, llm_state) = mood_llm(&config.lyrics);
        let (tx, rx) = mpsc::unbounded_channel();
        let socket = ctx.udp_socket(activation::OSC, &config.lyrics.listen)?;
        Ok(LyricsFetcher {
            cache: Arc::new(LyricsCache::new(LyricsCache::default_dir())),
            client: Mutex::new(Arc::new(client)),
            llm: Mutex::new(llm.map(Arc::new)),
            llm_state: Arc::new(Mutex::new(llm_state)),
            view: Mutex::new(View {
                active_line: -1,
                ..View::default()
            }),
            osc_in: InCounters::default(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            listen: socket
                .local_addr()
                .map_or_else(|_| config.lyrics.listen.clone(), |a| a.to_string()),
            socket: Mutex::new(Some(socket)),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context) -> anyhow::Result<()> {
        let socket = lock(&self.socket)
            .take()
            .ok_or_else(|| anyhow::anyhow!("the lyrics loop is already running"))?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let mut events = lock(&self.events_rx)
            .take()
            .ok_or_else(|| anyhow::anyhow!("the lyrics loop is already running"))?;
        let mut config = ctx.config.clone();
        let mut applied = config.borrow_and_update().clone();
        let mut stage = Stage {
            current: None,
            generation: 0,
            offset_ms: applied.lyrics.offset_ms,
            moods_shown: Vec::new(),
        };
        self.status_line(&ctx, &stage);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut watchdog = ctx.watchdog.ticker();
        let mut shutdown = ctx.shutdown.clone();
        let osc = ctx.osc.clone();
        loop {
            let deadline = Self::deadline(&stage, Instant::now());
            tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, _)) => self.on_datagram(&mut stage, &osc, &buf[..n], Instant::now()),
                    Err(e) => debug!(error = %e, "recv"),
                },
                Some(ev) = events.recv() => self.on_event(&mut stage, &osc, ev, Instant::now()),
                () = sleep_until_some(deadline) => {}
                _ = watchdog.tick() => ctx.watchdog.pet(),
                Ok(()) = config.changed() => {
                    let new = config.borrow_and_update().clone();
                    self.apply_config(&mut stage, &applied, &new);
                    applied = new;
                }
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
            self.follow(&mut stage, &osc, Instant::now());
            self.status_line(&ctx, &stage);
        }
    }

    fn state(&self) -> Map<String, Value> {
        let view = lock(&self.view).clone();
        let mut m = match serde_json::to_value(&view) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        m.insert("listen".into(), self.listen.clone().into());
        m.insert("lrclib_url".into(), self.client().base_url().into());
        m.insert("cache".into(), self.cache.stats());
        m.insert("llm".into(), lock(&self.llm_state).clone().into());
        m.insert("osc_in".into(), self.stats());
        m
    }

    fn checks(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let error = lock(&self.view).last_error.clone();
        m.insert("lrclib".into(), error.unwrap_or_else(|| "ok".into()).into());
        m.insert("llm".into(), lock(&self.llm_state).clone().into());
        m
    }

    fn stats(&self) -> Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "datagrams": n(&self.osc_in.datagrams),
            "playback_messages": n(&self.osc_in.playback),
            "malformed": n(&self.osc_in.malformed),
            "ignored": n(&self.osc_in.ignored),
        })
    }

    async fn command(self: Arc<Self>, cmd: Command) -> Option<Outcome> {
        Some(match cmd.cmd.as_str() {
            "fetch_lyrics" => match self.fetch_lyrics(&cmd).await {
                Ok(data) => Outcome::ok(data),
                Err(fail) => fail,
            },
            _ => return None,
        })
    }
}
