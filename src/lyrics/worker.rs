//! `impl Worker` for the lyrics fetcher: one event loop receives playback OSC, hands it to the
//! [`Stage`], hears back from lookups, and sleeps until exactly the next sung-line change (no
//! polling). The handle answers `get_state` and `fetch_lyrics` meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rosc::{OscMessage, OscPacket};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::LyricsConfig;
use super::lookup::{self, Event};
use super::stage::Stage;
use super::{find_lyrics, LrclibClient, LyricsCache, Song};
use crate::bus::Outcome;
use crate::karaoke::{self, NowPlaying};
use crate::playback::clock::sleep_until_some;
use crate::service::activation;
use crate::service::lock;
use crate::service::unit::{OscIn, WorkerInfo};
use crate::worker::{Context, Handle, Worker};

const MAX_DATAGRAM: usize = 65_536;

/// The fetcher's own commands.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LyricsCommand {
    /// Looks a song up (cache, then LRCLIB), answers its lines and puts it on stage.
    FetchLyrics {
        artist: String,
        title: String,
        album: Option<String>,
        /// Seconds; helps LRCLIB pick the right version.
        duration: Option<f64>,
    },
}

/// What `get_state` shows, kept up to date by the loop.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    pub track: Option<NowPlaying>,
    pub fetching: bool,
    pub lyrics: Option<LyricsView>,
    pub active_line: i32,
    pub moods: Vec<(String, f32)>,
    pub mood_source: Option<&'static str>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LyricsView {
    pub lines: usize,
    pub synced: bool,
    pub instrumental: bool,
    pub refrain_lines: usize,
    pub from_cache: bool,
}

/// What arrives on the OSC input.
#[derive(Debug, Default)]
pub struct InCounters {
    datagrams: AtomicU64,
    playback: AtomicU64,
    /// Not OSC, or a `/karaoke/track`/`pos` of the wrong shape.
    malformed: AtomicU64,
    /// Other addresses (our own `/karaoke/lyrics/*` come back through the `/karaoke/` route).
    ignored: AtomicU64,
}

impl InCounters {
    fn count(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the loop, its lookups and the control plane share.
pub struct Shared {
    pub cache: Arc<LyricsCache>,
    /// Replaced when `lyrics.lrclib_url` or its timeouts change.
    pub client: Mutex<Arc<LrclibClient>>,
    /// "not configured" | "not asked yet" | "ok" | the last failure.
    pub llm_state: Mutex<String>,
    pub view: Mutex<View>,
    pub osc_in: InCounters,
    pub events: mpsc::UnboundedSender<Event>,
    /// Where playback OSC is received.
    pub listen: String,
}

impl Shared {
    pub fn update_view(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.view));
    }
}

pub struct LyricsFetcher {
    /// Bound in `start`, so playback sent once the worker answers is never lost.
    socket: tokio::net::UdpSocket,
    events: mpsc::UnboundedReceiver<Event>,
    stage: Stage,
    shared: Arc<Shared>,
}

/// The control plane's window on the fetcher.
pub struct LyricsHandle {
    shared: Arc<Shared>,
}

fn flatten(packet: OscPacket, out: &mut Vec<OscMessage>) {
    match packet {
        OscPacket::Message(m) => out.push(m),
        OscPacket::Bundle(b) => b.content.into_iter().for_each(|p| flatten(p, out)),
    }
}

/// Playback OSC in: every track and position goes on stage; anything else is counted.
fn on_datagram(stage: &mut Stage, counters: &InCounters, bytes: &[u8], now: Instant) {
    InCounters::count(&counters.datagrams);
    let packet = match rosc::decoder::decode_udp(bytes) {
        Ok((_, p)) => p,
        Err(e) => {
            InCounters::count(&counters.malformed);
            debug!(len = bytes.len(), error = ?e, "malformed OSC packet ignored");
            return;
        }
    };
    let mut msgs = Vec::new();
    flatten(packet, &mut msgs);
    for m in msgs {
        match karaoke::parse_playback(&m) {
            Ok(Some(ev)) => {
                InCounters::count(&counters.playback);
                stage.on_playback(ev, now);
            }
            Ok(None) => InCounters::count(&counters.ignored),
            Err(e) => {
                InCounters::count(&counters.malformed);
                debug!(error = %e, "misshapen playback message ignored");
            }
        }
    }
}

/// A `set_config` of `[lyrics]`: a new LRCLIB client or LLM when theirs changed, the offset
/// at once.
fn apply_config(stage: &mut Stage, shared: &Shared, old: &LyricsConfig, new: &LyricsConfig) {
    if (&old.lrclib_url, old.timeout_ms, old.retries)
        != (&new.lrclib_url, new.timeout_ms, new.retries)
    {
        match lookup::lrclib_client(new) {
            Ok(c) => *lock(&shared.client) = Arc::new(c),
            Err(e) => {
                warn!(error = %e, "cannot use the new LRCLIB settings ({e}); keeping the previous client")
            }
        }
    }
    if old.llm != new.llm {
        let (llm, state) = lookup::mood_llm(new);
        stage.llm = llm;
        *lock(&shared.llm_state) = state;
    }
    stage.set_offset(new.offset_ms);
}

/// Its entry in the registry.
pub const LYRICS: WorkerInfo = WorkerInfo {
    bus_name: "lyrics_fetcher",
    binary: "vj-lyrics",
    config_section: "lyrics",
    osc_in: Some(OscIn {
        port: 9002,
        route: Some("/karaoke/"),
    }),
    http_port: None,
    starts_with_target: false,
    check_config: crate::config::check::<crate::lyrics::LyricsConfig>,
};

impl Worker for LyricsFetcher {
    const INFO: &'static WorkerInfo = &LYRICS;
    type Config = LyricsConfig;
    type Handle = LyricsHandle;

    async fn start(ctx: &Context<LyricsConfig>) -> anyhow::Result<(Self, LyricsHandle)> {
        let config = ctx.config();
        let client = lookup::lrclib_client(&config)?;
        let (llm, llm_state) = lookup::mood_llm(&config);
        let (tx, rx) = mpsc::unbounded_channel();
        let socket = ctx.udp_socket(activation::OSC, &config.listen)?;
        let shared = Arc::new(Shared {
            cache: Arc::new(LyricsCache::new(LyricsCache::default_dir())),
            client: Mutex::new(Arc::new(client)),
            llm_state: Mutex::new(llm_state),
            view: Mutex::new(View {
                active_line: -1,
                ..View::default()
            }),
            osc_in: InCounters::default(),
            events: tx,
            listen: socket
                .local_addr()
                .map_or_else(|_| config.listen.clone(), |a| a.to_string()),
        });
        let stage = Stage::new(shared.clone(), ctx.osc.clone(), llm, config.offset_ms);
        let worker = LyricsFetcher {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            events: rx,
            stage,
            shared: shared.clone(),
        };
        Ok((worker, LyricsHandle { shared }))
    }

    async fn run(self, ctx: Context<LyricsConfig>) -> anyhow::Result<()> {
        let LyricsFetcher {
            socket,
            mut events,
            mut stage,
            shared,
        } = self;
        let mut config = ctx.config.clone();
        let mut applied = config.borrow_and_update().clone();
        ctx.status.set_line(stage.status());
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut watchdog = ctx.watchdog.ticker();
        let mut stop = ctx.stop.clone();
        loop {
            let deadline = stage.deadline(Instant::now());
            tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, _)) => on_datagram(&mut stage, &shared.osc_in, &buf[..n], Instant::now()),
                    Err(e) => debug!(error = %e, "recv"),
                },
                Some(ev) = events.recv() => stage.on_event(ev, Instant::now()),
                () = sleep_until_some(deadline) => {}
                _ = watchdog.tick() => ctx.watchdog.pet(),
                Ok(()) = config.changed() => {
                    let new = config.borrow_and_update().clone();
                    apply_config(&mut stage, &shared, &applied, &new);
                    applied = new;
                }
                _ = stop.wait() => return Ok(()),
            }
            stage.follow(Instant::now());
            ctx.status.set_line(stage.status());
        }
    }
}

#[derive(Serialize)]
struct State {
    #[serde(flatten)]
    view: View,
    listen: String,
    lrclib_url: String,
    cache: Value,
    llm: String,
    osc_in: Value,
}

impl LyricsHandle {
    async fn fetch_lyrics(&self, track: NowPlaying) -> Outcome {
        let client = lock(&self.shared.client).clone();
        let found = match find_lyrics(&self.shared.cache, &client, &lookup::query(&track)).await {
            Ok(f) => f,
            Err(e) => return Outcome::fail(format!("fetch_lyrics: {e}")),
        };
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
        let _ = self.shared.events.send(Event::Show { track, found });
        Outcome::ok(data)
    }
}

impl Handle for LyricsHandle {
    type Command = LyricsCommand;

    fn state(&self) -> impl Serialize {
        State {
            view: lock(&self.shared.view).clone(),
            listen: self.shared.listen.clone(),
            lrclib_url: lock(&self.shared.client).base_url().to_string(),
            cache: self.shared.cache.stats(),
            llm: lock(&self.shared.llm_state).clone(),
            osc_in: serde_json::to_value(self.stats()).unwrap_or_default(),
        }
    }

    fn checks(&self) -> impl Serialize {
        let error = lock(&self.shared.view).last_error.clone();
        json!({
            "lrclib": error.unwrap_or_else(|| "ok".into()),
            "llm": lock(&self.shared.llm_state).clone(),
        })
    }

    fn stats(&self) -> impl Serialize {
        let c = &self.shared.osc_in;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "datagrams": n(&c.datagrams),
            "playback_messages": n(&c.playback),
            "malformed": n(&c.malformed),
            "ignored": n(&c.ignored),
        })
    }

    async fn command(&self, cmd: LyricsCommand) -> Outcome {
        match cmd {
            LyricsCommand::FetchLyrics {
                artist,
                title,
                album,
                duration,
            } => {
                let (artist, title) = (artist.trim().to_string(), title.trim().to_string());
                if artist.is_empty() || title.is_empty() {
                    return Outcome::fail("bad argument: `artist` and `title` must not be empty");
                }
                let duration = duration.unwrap_or(0.0);
                if !(0.0..=86_400.0).contains(&duration) {
                    return Outcome::bad_argument(
                        "duration",
                        format!("expected seconds 0..86400, got {duration}"),
                    );
                }
                self.fetch_lyrics(NowPlaying {
                    source: "manual".into(),
                    artist,
                    title,
                    album: album.unwrap_or_default(),
                    duration_s: duration as f32,
                    has_lyrics: false,
                })
                .await
            }
        }
    }
}
