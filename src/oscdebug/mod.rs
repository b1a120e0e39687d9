//! The OSC debugger (`osc_debugger`, `vj-oscdebug`): captures every OSC message and bundle the
//! suite sends to UDP 127.0.0.1:9001 and answers what it saw, per address, over the bus.

mod capture;
mod config;

pub use capture::{Batch, OscCapture, Received};
pub use config::OscDebuggerConfig;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::debug;

use crate::bus::Outcome;
use crate::service::activation;
use crate::service::lock;
use crate::service::unit::{OscIn, WorkerInfo};
use crate::worker::{Context, Handle, Health, Stop, Worker};

/// Largest datagram UDP can carry; anything OSC fits.
const MAX_DATAGRAM: usize = 65_536;
/// A push carries at most this many messages (well under the 1 MiB frame limit with 32-float
/// spectra); more waiting go in the next.
const MAX_PUSH: usize = 500;
/// How often a subscription pushes by default (25 a second) and the range a client may ask.
const PUSH_EVERY_MS: u64 = 40;
const PUSH_EVERY_RANGE: std::ops::RangeInclusive<u64> = 10..=5000;

/// The debugger's own commands.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebuggerCommand {
    /// The latest `count` (default 50) messages whose address starts with `prefix`, newer than
    /// sequence number `since`.
    GetMessages {
        count: Option<u64>,
        prefix: Option<String>,
        since: Option<u64>,
    },
    GetStats,
    Clear,
    /// Pushes every new message whose address starts with `prefix` after sequence number
    /// `since` (default: from now on), at most every `every_ms` (default 40), until the
    /// connection closes or the debugger restarts. The ack carries `get_stats`, so a
    /// subscriber starts with the last value of every address.
    Subscribe {
        since: Option<u64>,
        prefix: Option<String>,
        every_ms: Option<u64>,
    },
}

pub struct OscDebugger {
    socket: tokio::net::UdpSocket,
    capture: Arc<Mutex<OscCapture>>,
}

/// The capture, shared between the receive loop and the control plane.
pub struct DebuggerHandle {
    capture: Arc<Mutex<OscCapture>>,
    listen: String,
    /// This run's stop: subscriptions end with it (an in-process restart makes a new capture).
    stop: Stop,
}

impl DebuggerHandle {
    fn capture(&self) -> MutexGuard<'_, OscCapture> {
        lock(&self.capture)
    }
}

#[derive(Serialize)]
struct State {
    listen: String,
    capacity: usize,
    counters: Value,
}

#[derive(Serialize)]
struct Checks {
    udp: &'static str,
    malformed_packets: Value,
}

impl Handle for DebuggerHandle {
    type Command = DebuggerCommand;

    fn state(&self) -> impl Serialize {
        let capture = self.capture();
        State {
            listen: self.listen.clone(),
            capacity: capture.capacity(),
            counters: capture.counters(),
        }
    }

    fn checks(&self) -> impl Serialize {
        Checks {
            udp: "ok",
            malformed_packets: self.capture().counters()["malformed"].clone(),
        }
    }

    fn stats(&self) -> impl Serialize {
        self.capture().counters()
    }

    async fn command(&self, cmd: DebuggerCommand) -> Outcome {
        match cmd {
            DebuggerCommand::GetMessages {
                count,
                prefix,
                since,
            } => {
                let count = count.unwrap_or(50);
                if count == 0 {
                    return Outcome::bad_argument("count", "expected a positive integer, got 0");
                }
                let capture = self.capture();
                let messages = capture.messages(
                    count as usize,
                    prefix.as_deref().unwrap_or(""),
                    since.unwrap_or(0),
                );
                Outcome::ok(json!({
                    "messages": messages,
                    "count": messages.len(),
                    "last_seq": capture.last_seq(),
                }))
            }
            DebuggerCommand::GetStats => Outcome::ok(self.capture().stats(Instant::now())),
            DebuggerCommand::Clear => {
                self.capture().clear();
                Outcome::ok(json!({"cleared": true}))
            }
            DebuggerCommand::Subscribe {
                since,
                prefix,
                every_ms,
            } => {
                let every = every_ms.unwrap_or(PUSH_EVERY_MS);
                if !PUSH_EVERY_RANGE.contains(&every) {
                    return Outcome::bad_argument(
                        "every_ms",
                        format!("expected {PUSH_EVERY_RANGE:?} ms, got {every}"),
                    );
                }
                let (cursor, stats, malformed) = {
                    let capture = self.capture();
                    (
                        since.unwrap_or(capture.last_seq()),
                        capture.stats(Instant::now()),
                        capture.malformed(),
                    )
                };
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(subscription(
                    self.capture.clone(),
                    cursor,
                    malformed,
                    prefix.unwrap_or_default(),
                    Duration::from_millis(every),
                    tx,
                    self.stop.clone(),
                ));
                Outcome::subscribed(
                    json!({"since": cursor, "every_ms": every, "stats": stats}),
                    rx,
                )
            }
        }
    }
}

/// One subscriber's feed: every `every`, what came after its cursor, if anything did (or the
/// malformed count moved). A slow reader holds `tx.send`, so the cursor waits with it and
/// what the ring lost meanwhile is counted in `missed`.
async fn subscription(
    capture: Arc<Mutex<OscCapture>>,
    mut cursor: u64,
    // The count the ack's stats told.
    mut malformed: u64,
    prefix: String,
    every: Duration,
    tx: tokio::sync::mpsc::Sender<Value>,
    mut stop: Stop,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tx.closed() => return,
            _ = stop.wait() => return,
        }
        let push = {
            let capture = lock(&capture);
            let batch = capture.after(cursor, &prefix, MAX_PUSH);
            let moved = malformed != capture.malformed();
            if batch.messages.is_empty() && batch.missed == 0 && !moved {
                cursor = batch.cursor;
                continue;
            }
            malformed = capture.malformed();
            cursor = batch.cursor;
            json!({
                "messages": batch.messages,
                "last_seq": batch.cursor,
                "missed": batch.missed,
                "malformed": capture.malformed(),
            })
        };
        tokio::select! {
            sent = tx.send(push) => if sent.is_err() { return },
            _ = stop.wait() => return,
        }
    }
}

/// Its entry in the registry.
pub const OSC_DEBUGGER: WorkerInfo = WorkerInfo {
    bus_name: "osc_debugger",
    binary: "vj-oscdebug",
    config_section: "osc_debugger",
    osc_in: Some(OscIn {
        port: 9001,
        route: None,
    }),
    http_port: None,
    starts_with_target: false,
    check_config: crate::config::check::<crate::oscdebug::OscDebuggerConfig>,
};

impl Worker for OscDebugger {
    const INFO: &'static WorkerInfo = &OSC_DEBUGGER;
    type Config = OscDebuggerConfig;
    type Handle = DebuggerHandle;

    async fn start(ctx: &Context<OscDebuggerConfig>) -> anyhow::Result<(Self, DebuggerHandle)> {
        let config = ctx.config();
        let socket = ctx.udp_socket(activation::OSC, &config.listen)?;
        let listen = socket.local_addr()?.to_string();
        let capture = Arc::new(Mutex::new(OscCapture::new(config.capacity)));
        let worker = OscDebugger {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            capture: capture.clone(),
        };
        let handle = DebuggerHandle {
            capture,
            listen,
            stop: ctx.stop.clone(),
        };
        Ok((worker, handle))
    }

    async fn run(self, ctx: Context<OscDebuggerConfig>) -> anyhow::Result<()> {
        let local = self.socket.local_addr()?;
        ctx.status
            .set(Health::Ok, format!("capturing OSC on udp://{local}"));
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut watchdog = ctx.watchdog.ticker();
        let mut config = ctx.config.clone();
        let mut stop = ctx.stop.clone();
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, _peer)) => lock(&self.capture).record(&buf[..n], Instant::now()),
                    // ICMP errors and the like: nothing to do with our capture.
                    Err(e) => debug!(error = %e, "recv"),
                },
                _ = watchdog.tick() => ctx.watchdog.pet(),
                Ok(()) = config.changed() => {
                    let capacity = config.borrow_and_update().capacity;
                    lock(&self.capture).set_capacity(capacity);
                }
                _ = stop.wait() => return Ok(()),
            }
        }
    }
}
