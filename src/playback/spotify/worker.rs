//! `impl Worker` for vj-spotify: one source task (Web API polling, MPRIS signals or AppleScript)
//! reports snapshots; the loop announces changes and interpolates the position at 4 Hz.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Duration, Instant};
use tracing::info;

use crate::config::SpotifyConfig;
use crate::karaoke::{NowPlaying, Position};
use crate::playback::clock::{sleep_until_some, Announced, Announcer, PlaybackClock};
use crate::worker::{Context, Health, Worker};

use super::web_api::{stored_refresh_token, ApiError, WebApi};
use super::{Report, SourceKind};

/// Back-off after a network failure or 5xx: doubles from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long to wait before looking again for a refresh token, or after a rejected one.
const LOGIN_RECHECK: Duration = Duration::from_secs(30);
/// A reported position this close to the interpolated one keeps the clock running smoothly.
const SMOOTH_S: f64 = 0.5;

/// What `get_state` shows (never a token).
#[derive(Debug, Clone, Default, Serialize)]
struct View {
    source: Option<SourceKind>,
    /// `track`, `episode`, `ad`, `none`, …
    playing_type: String,
    track: Option<NowPlaying>,
    position: Option<Position>,
    reports: u64,
    announced: Announced,
}

pub struct SpotifyMonitor {
    view: Mutex<View>,
    health: Arc<Mutex<(Health, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Picks the source for `config` on this machine.
pub fn source_for(c: &SpotifyConfig) -> SourceKind {
    let ready = !c.client_id.trim().is_empty() && matches!(stored_refresh_token(), Ok(Some(_)));
    SourceKind::choose(&c.source, ready)
}

/// Polls the Web API every `poll_interval_ms`, honouring 429 and backing off on failures.
pub async fn follow_web_api(c: SpotifyConfig, tx: mpsc::Sender<Report>) {
    let poll = Duration::from_millis(c.poll_interval_ms);
    loop {
        let mut api = match WebApi::new(&c) {
            Ok(a) => a,
            Err(e) => {
                let _ = tx
                    .send(Report::Health(Health::Degraded, format!("degraded: {e}")))
                    .await;
                sleep(LOGIN_RECHECK).await;
                continue;
            }
        };
        let mut backoff = BACKOFF_FIRST;
        loop {
            let wait = match api.player().await {
                Ok(s) => {
                    let what = match &s.track {
                        Some(t) => format!("{} - {}", t.artist, t.title),
                        None => format!("nothing ({})", s.kind),
                    };
                    let _ = tx
                        .send(Report::Playing {
                            track: s.track,
                            progress_s: s.progress_s,
                            playing: s.playing,
                            kind: s.kind,
                        })
                        .await;
                    let _ = tx
                        .send(Report::Health(
                            Health::Ok,
                            format!("live: Spotify Web API, {what}"),
                        ))
                        .await;
                    backoff = BACKOFF_FIRST;
                    poll
                }
                Err(ApiError::RateLimited(s)) => {
                    let line = format!("degraded: rate limited by Spotify (429), retry in {s}s");
                    let _ = tx.send(Report::Health(Health::Degraded, line)).await;
                    Duration::from_secs(s)
                }
                Err(
                    e @ (ApiError::RefreshRejected(_)
                    | ApiError::Unauthorized
                    | ApiError::NoRefreshToken
                    | ApiError::NoClientId
                    | ApiError::Credential(_)),
                ) => {
                    let line = format!("degraded: {e}");
                    let _ = tx.send(Report::Health(Health::Degraded, line)).await;
                    sleep(LOGIN_RECHECK).await;
                    break; // read the credential again: `vj-spotify login` may have run
                }
                Err(e) => {
                    let line = format!("degraded: {e}; retry in {}s", backoff.as_secs());
                    let _ = tx.send(Report::Health(Health::Degraded, line)).await;
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };
            sleep(wait).await;
        }
    }
}

fn spawn_source(kind: SourceKind, c: SpotifyConfig, tx: mpsc::Sender<Report>) -> JoinHandle<()> {
    match kind {
        SourceKind::WebApi => tokio::spawn(follow_web_api(c, tx)),
        #[cfg(target_os = "linux")]
        SourceKind::Mpris => tokio::spawn(super::mpris::follow(c, tx)),
        #[cfg(target_os = "macos")]
        SourceKind::AppleScript => tokio::spawn(super::applescript::follow(c, tx)),
        #[allow(unreachable_patterns)]
        other => tokio::spawn(async move {
            let line = format!(
                "failed: spotify.source {other:?} is not available on this system; use web_api"
            );
            let _ = tx.send(Report::Health(Health::Failed, line)).await;
        }),
    }
}

impl SpotifyMonitor {
    /// Announces a snapshot; the running clock is kept while it agrees with the report.
    fn apply(
        &self,
        ann: &mut Announcer,
        track: Option<NowPlaying>,
        progress_s: Option<f64>,
        playing: bool,
    ) {
        let now = Instant::now();
        let changed = ann.track(track.clone());
        if let Some(t) = &track {
            let running = ann.clock().map(|c| c.position(now));
            let seconds = progress_s
                .or_else(|| {
                    (!changed)
                        .then(|| running.map(|p| f64::from(p.seconds)))
                        .flatten()
                })
                .unwrap_or(0.0);
            if !changed {
                if let Some(p) = running {
                    if ann.clock().is_some_and(|c| c.playing == playing)
                        && (f64::from(p.seconds) - seconds).abs() < SMOOTH_S
                    {
                        return;
                    }
                }
            }
            let clock = PlaybackClock {
                at: now,
                seconds,
                playing,
                duration_s: (t.duration_s > 0.0).then_some(f64::from(t.duration_s)),
            };
            ann.set_clock(Some(clock), now);
        }
    }
}

impl Worker for SpotifyMonitor {
    const BUS_NAME: &'static str = "spotify_monitor";
    const CONFIG_SECTION: &'static str = "spotify";

    async fn start(_ctx: &Context) -> anyhow::Result<Self> {
        Ok(SpotifyMonitor {
            view: Mutex::new(View::default()),
            health: Arc::new(Mutex::new((Health::Ok, "starting".into()))),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context) -> anyhow::Result<()> {
        let mut config = ctx.config().spotify.clone();
        let mut config_rx = ctx.config.clone();
        let mut ann = Announcer::new(ctx.osc.clone());
        let mut watchdog = ctx.watchdog.ticker();
        let mut stopper = ctx.clone();
        let (tx, mut rx) = mpsc::channel(16);
        let mut kind = source_for(&config);
        info!(source = ?kind, "following Spotify");
        lock(&self.view).source = Some(kind);
        let mut task = spawn_source(kind, config.clone(), tx.clone());
        loop {
            tokio::select! {
                _ = stopper.stopped() => break,
                Some(report) = rx.recv() => match report {
                    Report::Playing { track, progress_s, playing, kind: what } => {
                        self.apply(&mut ann, track.clone(), progress_s, playing);
                        let mut v = lock(&self.view);
                        v.reports += 1;
                        v.playing_type = what;
                        v.track = track;
                        v.position = ann.position(Instant::now());
                        v.announced = ann.counts;
                    }
                    Report::Health(h, line) => {
                        ctx.status.set(h, line.clone());
                        *lock(&self.health) = (h, line);
                    }
                },
                _ = sleep_until_some(ann.next_tick()) => {
                    let now = Instant::now();
                    ann.tick(now);
                    let mut v = lock(&self.view);
                    v.position = ann.position(now);
                    v.announced = ann.counts;
                }
                Ok(()) = config_rx.changed() => {
                    let c = config_rx.borrow_and_update().spotify.clone();
                    if c != config {
                        config = c;
                        task.abort();
                        kind = source_for(&config);
                        info!(source = ?kind, "config changed; following Spotify anew");
                        lock(&self.view).source = Some(kind);
                        task = spawn_source(kind, config.clone(), tx.clone());
                    }
                }
                _ = watchdog.tick() => ctx.watchdog.pet(),
            }
        }
        task.abort();
        Ok(())
    }

    fn state(&self) -> Map<String, Value> {
        let v = lock(&self.view).clone();
        let mut m = Map::new();
        if let Ok(Value::Object(o)) = serde_json::to_value(&v) {
            m.extend(o);
        }
        let (h, _) = *lock(&self.health);
        m.insert("live".into(), json!(h == Health::Ok));
        m
    }

    fn checks(&self) -> Map<String, Value> {
        let v = lock(&self.view);
        let (h, line) = lock(&self.health).clone();
        let source = match v.source {
            Some(SourceKind::WebApi) => "web_api",
            Some(SourceKind::Mpris) => "mpris",
            Some(SourceKind::AppleScript) => "applescript",
            None => "none",
        };
        let mut m = Map::new();
        let word = match h {
            Health::Ok => "live",
            Health::Degraded => "degraded",
            Health::Failed => "failed",
        };
        m.insert("source".into(), json!(format!("{word}: {source} ({line})")));
        m
    }

    fn stats(&self) -> Value {
        let v = lock(&self.view);
        json!({"reports": v.reports, "tracks_sent": v.announced.tracks, "positions_sent": v.announced.positions})
    }
}
