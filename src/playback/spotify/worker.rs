//! `impl Worker` for vj-spotify: one source task (Web API polling, MPRIS signals or AppleScript)
//! reports snapshots; the loop announces changes and interpolates the position at 4 Hz.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Duration, Instant};
use tracing::info;

use super::config::SpotifyConfig;
use super::web_api::{stored_refresh_token, ApiError, WebApi};
use super::{Report, SourceKind};
use crate::bus::Outcome;
use crate::karaoke::{NowPlaying, Position};
use crate::playback::clock::{sleep_until_some, Announced, Announcer, PlaybackClock};
use crate::service::backoff::Backoff;
use crate::service::lock;
use crate::service::unit::WorkerInfo;
use crate::worker::{Context, Handle, Health, NoCommand, Status, Worker};

/// Back-off after a network failure or 5xx: 1 s, doubling up to 60 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
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
    view: Arc<Mutex<View>>,
}

/// The control plane's window on the monitor.
pub struct SpotifyHandle {
    view: Arc<Mutex<View>>,
    status: Arc<Status>,
}

/// Picks the source for `config` on this machine.
pub fn source_for(c: &SpotifyConfig) -> SourceKind {
    let ready = !c.client_id.trim().is_empty() && matches!(stored_refresh_token(), Ok(Some(_)));
    SourceKind::choose(c.source, ready)
}

/// Polls the Web API every `poll_interval_ms`, honouring 429 and backing off on failures.
pub async fn follow_web_api(c: SpotifyConfig, tx: mpsc::Sender<Report>) {
    let poll = Duration::from_millis(c.poll_interval_ms);
    loop {
        let mut api = match WebApi::new(&c) {
            Ok(a) => a,
            Err(e) => {
                let _ = tx
                    .send(Report::Health(Health::Degraded, e.to_string()))
                    .await;
                sleep(LOGIN_RECHECK).await;
                continue;
            }
        };
        let mut backoff = BACKOFF;
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
                    backoff.reset();
                    poll
                }
                Err(ApiError::RateLimited(s)) => {
                    let line = format!("rate limited by Spotify (429), retry in {s}s");
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
                    let _ = tx
                        .send(Report::Health(Health::Degraded, e.to_string()))
                        .await;
                    sleep(LOGIN_RECHECK).await;
                    break; // read the credential again: `vj-spotify login` may have run
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    let line = format!("{e}; retry in {}s", wait.as_secs());
                    let _ = tx.send(Report::Health(Health::Degraded, line)).await;
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
            let line =
                format!("spotify.source {other:?} is not available on this system; use web_api");
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

/// Its entry in the registry.
pub const SPOTIFY: WorkerInfo = WorkerInfo {
    bus_name: "spotify_monitor",
    binary: "vj-spotify",
    config_section: "spotify",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: crate::config::check::<crate::playback::spotify::SpotifyConfig>,
};

impl Worker for SpotifyMonitor {
    const INFO: &'static WorkerInfo = &SPOTIFY;
    type Config = SpotifyConfig;
    type Handle = SpotifyHandle;

    async fn start(ctx: &Context<SpotifyConfig>) -> anyhow::Result<(Self, SpotifyHandle)> {
        let view = Arc::new(Mutex::new(View::default()));
        let handle = SpotifyHandle {
            view: view.clone(),
            status: ctx.status.clone(),
        };
        Ok((SpotifyMonitor { view }, handle))
    }

    async fn run(self, ctx: Context<SpotifyConfig>) -> anyhow::Result<()> {
        let mut config = (*ctx.config()).clone();
        let mut config_rx = ctx.config.clone();
        let mut ann = Announcer::new(ctx.osc.clone());
        let mut watchdog = ctx.watchdog.ticker();
        let mut stop = ctx.stop.clone();
        let (tx, mut rx) = mpsc::channel(16);
        let mut kind = source_for(&config);
        info!(source = ?kind, "following Spotify through {kind:?}");
        lock(&self.view).source = Some(kind);
        let mut task = spawn_source(kind, config.clone(), tx.clone());
        loop {
            tokio::select! {
                _ = stop.wait() => break,
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
                    Report::Health(h, detail) => ctx.status.set(h, detail),
                },
                _ = sleep_until_some(ann.next_tick()) => {
                    let now = Instant::now();
                    ann.tick(now);
                    let mut v = lock(&self.view);
                    v.position = ann.position(now);
                    v.announced = ann.counts;
                }
                Ok(()) = config_rx.changed() => {
                    let c = (**config_rx.borrow_and_update()).clone();
                    if c != config {
                        config = c;
                        task.abort();
                        kind = source_for(&config);
                        info!(source = ?kind, "config changed: following Spotify anew through {kind:?}");
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
}

#[derive(Serialize)]
struct State {
    #[serde(flatten)]
    view: View,
    live: bool,
}

impl Handle for SpotifyHandle {
    type Command = NoCommand;

    fn state(&self) -> impl Serialize {
        State {
            view: lock(&self.view).clone(),
            live: self.status.get().health == Health::Ok,
        }
    }

    fn checks(&self) -> impl Serialize {
        let source = match lock(&self.view).source {
            Some(SourceKind::WebApi) => "web_api",
            Some(SourceKind::Mpris) => "mpris",
            Some(SourceKind::AppleScript) => "applescript",
            None => "none",
        };
        let line = self.status.get();
        let word = match line.health {
            Health::Ok => "live".to_string(),
            h => h.to_string(),
        };
        json!({ "source": format!("{word}: {source} ({line})") })
    }

    fn stats(&self) -> impl Serialize {
        let v = lock(&self.view);
        json!({"reports": v.reports, "tracks_sent": v.announced.tracks, "positions_sent": v.announced.positions})
    }

    async fn command(&self, cmd: NoCommand) -> Outcome {
        match cmd {}
    }
}
