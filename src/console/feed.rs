//! The console's I/O, on a thread of its own so drawing never waits for it: the workers as
//! `vj-status` sees them (every second, faster while something changes), the debugger's push
//! subscription (only while systemd says the debugger runs: looking never starts a worker),
//! and what the keys ask for — supervisor actions, analyzer commands, log lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch, Notify};

use super::telemetry::OscMsg;
use crate::bus::client::{self, Client, ClientError};
use crate::config;
use crate::registry::{WorkerInfo, AUDIO, OSC_DEBUGGER};
use crate::status::supervisor::{self, Action, Supervisor};
use crate::status::systemd::UserManager;
use crate::status::{self, Report, RowHealth};

/// The workers are looked at this often when nothing happens…
const CALM: Duration = Duration::from_secs(1);
/// …or this often when each look runs `systemctl` (no user manager on a session bus): a
/// process a second was a third of the console's CPU (docs/BENCHMARKS.md). A key still looks
/// at once.
const CALM_BY_PROCESS: Duration = Duration::from_secs(4);
/// …and this often while a unit changes state, or for a while after a key or a lost connection.
const BUSY: Duration = Duration::from_millis(150);
const BUSY_FOR: Duration = Duration::from_secs(4);
/// How often the subscription pushes (a little faster than the screen redraws).
const PUSH_EVERY_MS: u64 = 33;
/// A command from a key gets this long to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// The lyric lines of a song are read back from the capture: this many messages at most.
const LYRICS_PREFIX: &str = "/karaoke/lyrics/";
const LYRICS_HISTORY: u64 = 1000;
/// Lines of log the pane asks for.
const LOG_LINES: usize = 200;
/// Updates the screen has not taken yet, at most: about two seconds of pushes at 30 fps. When
/// the screen stops taking them, the I/O side waits (the debugger then slows its pushes, as for
/// any slow reader) instead of queueing without bound.
const UPDATES: usize = 64;
/// Keys the I/O side has not taken yet, at most (it takes each at once, onto a task of its own).
const REQUESTS: usize = 16;
/// After a signal, the screen gets this long to quit on its own before the process ends anyway
/// (a screen stuck in the terminal library must not keep the console alive).
const QUIT_GRACE: Duration = Duration::from_millis(500);

/// What a key asks the I/O side to do.
#[derive(Debug, Clone)]
pub enum Request {
    Supervise(Action, &'static WorkerInfo),
    /// A command on the worker's control socket (only if it runs).
    Send {
        worker: &'static WorkerInfo,
        cmd: String,
        args: Map<String, Value>,
    },
    Logs(&'static WorkerInfo),
    /// The analyzer's next input (`input::next`).
    NextInput,
}

/// What the I/O side tells the screen.
#[derive(Debug)]
pub enum Update {
    Workers(Report),
    /// Subscribed to the debugger: its stats, with every address's last value.
    Subscribed(Value),
    /// What the subscription pushed.
    Osc {
        messages: Vec<OscMsg>,
        missed: u64,
        malformed: u64,
    },
    /// No telemetry now, and why.
    NoTelemetry(String),
    /// The outcome of a key: what to say, and whether it went well.
    Reply(String, bool),
    Logs(&'static WorkerInfo, Result<Vec<String>, String>),
    /// A signal asked the console to quit.
    Quit(&'static str),
}

/// One push of the debugger's subscription.
#[derive(Debug, Deserialize)]
struct Push {
    messages: Vec<OscMsg>,
    last_seq: u64,
    #[serde(default)]
    missed: u64,
    #[serde(default)]
    malformed: u64,
}

/// Whether the report says `bus_name` runs: its unit is active (or, without systemd, it
/// answered) — the test for talking to it without starting it.
pub fn is_running(report: &Report, bus_name: &str) -> bool {
    report.workers.iter().any(|w| {
        w.worker == bus_name
            && matches!(w.health, RowHealth::Worker(_))
            // systemd's word, launchd's (macOS), or none (no supervisor).
            && matches!(w.state.as_str(), "active" | "running" | "-")
    })
}

/// The I/O thread's two ends.
pub struct Feed {
    pub updates: std::sync::mpsc::Receiver<Update>,
    requests: mpsc::Sender<Request>,
}

impl Feed {
    /// Starts the I/O thread for the suite whose control sockets are in `bus_dir`.
    pub fn start(bus_dir: PathBuf) -> std::io::Result<Feed> {
        let (tx, updates) = std::sync::mpsc::sync_channel(UPDATES);
        let (requests, rx) = mpsc::channel(REQUESTS);
        // One thread: every wait here (the user manager over D-Bus, the workers' sockets,
        // `systemctl` for a key) is asynchronous, so the subscription never waits behind them.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("vj-console-feed".into())
            .spawn(move || rt.block_on(serve(bus_dir, tx, rx)))?;
        Ok(Feed { updates, requests })
    }

    /// Hands a key's request to the I/O side; one over [`REQUESTS`] waiting is dropped (keys
    /// typed faster than a task is spawned).
    pub fn send(&self, r: Request) {
        let _ = self.requests.try_send(r);
    }
}

type Out = std::sync::mpsc::SyncSender<Update>;

/// Hands the screen an update, waiting while [`UPDATES`] are queued (polling, so the I/O
/// thread's other tasks run meanwhile); `Err` once the screen is gone.
async fn deliver(tx: &Out, mut u: Update) -> Result<(), ()> {
    use std::sync::mpsc::TrySendError;
    loop {
        match tx.try_send(u) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(()),
            Err(TrySendError::Full(back)) => {
                u = back;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(bus_dir: PathBuf, tx: Out, mut requests: mpsc::Receiver<Request>) {
    let poke = Arc::new(Notify::new());
    let (latest_tx, latest) = watch::channel(None::<Report>);
    // One look at the user manager serves the workers panel and the debugger's subscription.
    let manager = UserManager::default();
    tokio::spawn(watch_workers(
        bus_dir.clone(),
        manager,
        tx.clone(),
        poke.clone(),
        latest_tx,
    ));
    tokio::spawn(follow_debugger(
        bus_dir.clone(),
        latest.clone(),
        tx.clone(),
        poke.clone(),
    ));
    tokio::spawn(signals(tx.clone()));
    let sup = Supervisor::here();
    // The screen dropped its end: the console is quitting.
    while let Some(r) = requests.recv().await {
        let (tx, poke, latest, sup, bus_dir) = (
            tx.clone(),
            poke.clone(),
            latest.clone(),
            sup.clone(),
            bus_dir.clone(),
        );
        tokio::spawn(async move {
            let update = match r {
                Request::Supervise(action, w) => {
                    poke.notify_one();
                    let plan = supervisor::plan(action, &[w], &sup);
                    let done = supervisor::run(&plan).await;
                    poke.notify_one();
                    match done {
                        Ok(()) => Update::Reply(format!("{} {}", action.done(), w.binary), true),
                        Err(e) => Update::Reply(e, false),
                    }
                }
                Request::Send { worker, cmd, args } => {
                    let running = latest
                        .borrow()
                        .as_ref()
                        .is_some_and(|r| is_running(r, worker.bus_name));
                    let (text, ok) = if running {
                        command(&bus_dir, worker, &cmd, args).await
                    } else {
                        (
                            format!("{} is not running: s on its row starts it", worker.bus_name),
                            false,
                        )
                    };
                    Update::Reply(text, ok)
                }
                Request::Logs(w) => {
                    Update::Logs(w, supervisor::last_lines(w, LOG_LINES, &sup).await)
                }
                Request::NextInput => {
                    let running = latest
                        .borrow()
                        .as_ref()
                        .is_some_and(|r| is_running(r, AUDIO.bus_name));
                    let (text, ok) = if running {
                        super::input::next(&bus_dir).await
                    } else {
                        (
                            format!("{} is not running: s on its row starts it", AUDIO.bus_name),
                            false,
                        )
                    };
                    poke.notify_one();
                    Update::Reply(text, ok)
                }
            };
            let _ = deliver(&tx, update).await;
        });
    }
}

/// Sends one command and words its reply for the footer. An analyzer without the tempo
/// commands answers `Unknown command: tap`; that is said as it is, not as a failure of ours.
async fn command(
    bus_dir: &Path,
    w: &WorkerInfo,
    cmd: &str,
    args: Map<String, Value>,
) -> (String, bool) {
    let socket = config::socket_path(bus_dir, w.bus_name);
    match client::ask(&socket, cmd, args, COMMAND_TIMEOUT).await {
        Err(ClientError::Timeout(_)) => (
            format!(
                "{}: no reply to {cmd} within {COMMAND_TIMEOUT:?}",
                w.bus_name
            ),
            false,
        ),
        Err(e) => (format!("{}: {cmd}: {e}", w.bus_name), false),
        Ok(ack) if ack.success => {
            let mut data = ack.data.to_string();
            if data == "null" || data == "{}" {
                data.clear();
            }
            (
                format!(
                    "{}: {cmd} ok {}",
                    w.bus_name,
                    crate::console::ui::fit(&data, 60)
                ),
                true,
            )
        }
        Ok(ack) => {
            let message = ack.message.unwrap_or_default();
            if message.starts_with("Unknown command") {
                (
                    format!(
                        "{} does not know `{cmd}` yet — it said: {message}",
                        w.bus_name
                    ),
                    false,
                )
            } else {
                (format!("{}: {cmd}: {message}", w.bus_name), false)
            }
        }
    }
}

/// The workers panel's feed: `status::gather`, the same view as `vj-status`.
async fn watch_workers(
    bus_dir: PathBuf,
    manager: UserManager,
    tx: Out,
    poke: Arc<Notify>,
    latest: watch::Sender<Option<Report>>,
) {
    let mut busy_until = Instant::now();
    loop {
        let report = status::gather_from(&bus_dir, &manager).await;
        let changing = report.workers.iter().any(|r| {
            matches!(
                r.state.as_str(),
                "activating" | "deactivating" | "reloading"
            )
        });
        latest.send_replace(Some(report.clone()));
        if deliver(&tx, Update::Workers(report)).await.is_err() {
            return;
        }
        let wait = if changing || Instant::now() < busy_until {
            BUSY
        } else if manager.looks_by_process() {
            CALM_BY_PROCESS
        } else {
            CALM
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = poke.notified() => busy_until = Instant::now() + BUSY_FOR,
        }
    }
}

/// Why the debugger is not read now, or `None` when it runs, from the workers' report (what
/// systemd or launchd said at the last look; never the debugger itself, which a look would start).
pub(crate) fn debugger_down(report: &Report) -> Option<String> {
    let name = OSC_DEBUGGER.bus_name;
    if is_running(report, name) {
        return None;
    }
    let Some(row) = report.workers.iter().find(|w| w.worker == name) else {
        return Some(format!("{name} is not installed (make install)"));
    };
    Some(match &row.health {
        RowHealth::Worker(crate::worker::Health::Failed) => {
            format!("{name} failed: {}", row.detail)
        }
        _ if matches!(
            row.state.as_str(),
            "activating" | "deactivating" | "reloading"
        ) =>
        {
            format!("{name} is {}", row.state)
        }
        RowHealth::Idle => format!("{name} is idle (its first OSC datagram starts it)"),
        RowHealth::Stopped => format!("{name} is stopped (s on its row starts it)"),
        RowHealth::NotInstalled if report.systemd => {
            format!("{name} is not installed (make install)")
        }
        RowHealth::NotInstalled if cfg!(target_os = "macos") => {
            format!("{name} is not loaded in launchd (s on its row)")
        }
        _ if row.detail.is_empty() => format!("{name} does not answer"),
        _ => format!("{name}: {}", row.detail),
    })
}

/// The audio, now-playing, lyrics and OSC panels' feed: the debugger's subscription, resumed
/// from the last sequence number seen after a restart of either side. Whether the debugger
/// runs comes from the workers' look (`latest`), so the debugger costs the supervisor no look
/// of its own (a `systemctl` process each, without a session bus); after losing it, the next
/// look is asked for at once (`poke`) and awaited.
async fn follow_debugger(
    bus_dir: PathBuf,
    mut latest: watch::Receiver<Option<Report>>,
    tx: Out,
    poke: Arc<Notify>,
) {
    let socket = config::socket_path(&bus_dir, OSC_DEBUGGER.bus_name);
    let mut cursor: Option<u64> = None;
    let mut said: Option<String> = None;
    loop {
        let down = match latest.borrow_and_update().as_ref() {
            // No look yet: nothing to say.
            None => Some(None),
            Some(report) => debugger_down(report).map(Some),
        };
        if let Some(why) = down {
            if let Some(why) = why.filter(|w| said.as_ref() != Some(w)) {
                if deliver(&tx, Update::NoTelemetry(why.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
                said = Some(why);
            }
            if latest.changed().await.is_err() {
                return;
            }
            continue;
        }
        let why = match subscribe(&socket, cursor).await {
            Err(e) => e,
            Ok((mut client, stats)) => {
                if deliver(&tx, Update::Subscribed(stats)).await.is_err() {
                    return;
                }
                // The ack holds each address's last value only; a song's lyric lines are many
                // messages on one address, sent when it started, so they are read back from the
                // capture (a repeat of what the subscription also pushes is harmless).
                if let Some(history) = lyrics_history(&socket).await {
                    if deliver(&tx, history).await.is_err() {
                        return;
                    }
                }
                loop {
                    match client.next_push().await {
                        Ok(Some(data)) => {
                            let Ok(push) = serde_json::from_value::<Push>(data) else {
                                continue;
                            };
                            cursor = Some(push.last_seq);
                            let update = Update::Osc {
                                messages: push.messages,
                                missed: push.missed,
                                malformed: push.malformed,
                            };
                            if deliver(&tx, update).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break "the debugger restarted its capture".to_string(),
                        Err(e) => break format!("lost {}: {e}", OSC_DEBUGGER.bus_name),
                    }
                }
            }
        };
        // What the last look said is older than the loss: wait for a look made after it.
        latest.borrow_and_update();
        poke.notify_one();
        if deliver(&tx, Update::NoTelemetry(why.clone()))
            .await
            .is_err()
        {
            return;
        }
        said = Some(why);
        if latest.changed().await.is_err() {
            return;
        }
    }
}

/// The capture's last lyric messages (the current song's reset and lines), oldest first.
async fn lyrics_history(socket: &Path) -> Option<Update> {
    let args = json!({ "prefix": LYRICS_PREFIX, "count": LYRICS_HISTORY });
    let args = args.as_object().cloned().unwrap_or_default();
    let mut reply = client::ask(socket, "get_messages", args, COMMAND_TIMEOUT)
        .await
        .ok()?;
    let messages = serde_json::from_value(reply.data.get_mut("messages")?.take()).ok()?;
    Some(Update::Osc {
        messages,
        missed: 0,
        malformed: 0,
    })
}

async fn subscribe(socket: &Path, since: Option<u64>) -> Result<(Client, Value), String> {
    let ask = async {
        let mut client = Client::connect(socket).await.map_err(|e| e.to_string())?;
        let mut args = json!({ "every_ms": PUSH_EVERY_MS });
        if let Some(s) = since {
            args["since"] = s.into();
        }
        let mut ack = client
            .request("subscribe", args.as_object().cloned().unwrap_or_default())
            .await
            .map_err(|e| e.to_string())?;
        if !ack.success {
            return Err(format!(
                "{} refused to subscribe: {}",
                OSC_DEBUGGER.bus_name,
                ack.message.unwrap_or_default()
            ));
        }
        Ok((client, ack.data["stats"].take()))
    };
    tokio::time::timeout(COMMAND_TIMEOUT, ask)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{} did not answer subscribe",
                OSC_DEBUGGER.bus_name
            ))
        })
}

async fn signals(tx: Out) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
        _ = int.recv() => "SIGINT",
    };
    // The screen takes it within a frame; if it cannot (full queue, stuck in the terminal
    // library), the process ends anyway: a console must never outlive a signal to quit.
    let _ = tx.try_send(Update::Quit(name));
    tokio::time::sleep(QUIT_GRACE).await;
    super::screen::restore();
    eprintln!("vj-console: quit on {name} (the screen did not)");
    std::process::exit(1);
}
