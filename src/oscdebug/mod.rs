//! The OSC debugger (`osc_debugger`, `vj-oscdebug`): captures every OSC message and bundle the
//! suite sends to UDP 127.0.0.1:9001 and answers what it saw, per address, over the bus.

mod capture;
mod config;

pub use capture::{OscCapture, Received};
pub use config::OscDebuggerConfig;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::debug;

use crate::bus::Outcome;
use crate::registry::{WorkerInfo, OSC_DEBUGGER};
use crate::service::activation;
use crate::worker::{lock, Context, Handle, Health, Worker};

/// Largest datagram UDP can carry; anything OSC fits.
const MAX_DATAGRAM: usize = 65_536;

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
}

pub struct OscDebugger {
    socket: tokio::net::UdpSocket,
    capture: Arc<Mutex<OscCapture>>,
}

/// The capture, shared between the receive loop and the control plane.
pub struct DebuggerHandle {
    capture: Arc<Mutex<OscCapture>>,
    listen: String,
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
        }
    }
}

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
        Ok((worker, DebuggerHandle { capture, listen }))
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
