//! The OSC debugger (`osc_debugger`, `vj-oscdebug`): captures every OSC message and bundle the
//! suite sends to UDP 127.0.0.1:9001 and answers what it saw, per address, over the bus.

mod capture;

pub use capture::{OscCapture, Received};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{json, Map, Value};
use tracing::debug;

use crate::bus::message::{Command, Outcome};
use crate::service::activation;
use crate::worker::{Context, Health, Worker};

/// Largest datagram UDP can carry; anything OSC fits.
const MAX_DATAGRAM: usize = 65_536;

pub struct OscDebugger {
    capture: Mutex<OscCapture>,
    listen: String,
}

impl OscDebugger {
    fn capture(&self) -> MutexGuard<'_, OscCapture> {
        self.capture.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_messages(&self, cmd: &Command) -> Result<Value, Outcome> {
        let capture = self.capture();
        let count = cmd.opt_u64("count")?.unwrap_or(50);
        if count == 0 {
            return Err(Outcome::fail(
                "bad argument `count`: expected a positive integer, got 0",
            ));
        }
        let prefix = cmd.opt_str("prefix")?.unwrap_or("");
        let since = cmd.opt_u64("since")?.unwrap_or(0);
        let messages = capture.messages(count as usize, prefix, since);
        Ok(json!({
            "messages": messages,
            "count": messages.len(),
            "last_seq": capture.last_seq(),
        }))
    }
}

impl Worker for OscDebugger {
    const BUS_NAME: &'static str = "osc_debugger";
    const CONFIG_SECTION: &'static str = "osc_debugger";

    async fn start(ctx: &Context) -> anyhow::Result<Self> {
        let config = ctx.config();
        Ok(OscDebugger {
            capture: Mutex::new(OscCapture::new(config.osc_debugger.capacity)),
            listen: config.osc_debugger.listen.clone(),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context) -> anyhow::Result<()> {
        let socket = ctx.udp_socket(activation::OSC, &self.listen)?;
        let local = socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        ctx.status
            .set(Health::Ok, format!("capturing OSC on udp://{local}"));
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut watchdog = ctx.watchdog.ticker();
        let mut config = ctx.config.clone();
        let mut shutdown = ctx.shutdown.clone();
        loop {
            tokio::select! {
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, _peer)) => self.capture().record(&buf[..n], Instant::now()),
                    // ICMP errors and the like: nothing to do with our capture.
                    Err(e) => debug!(error = %e, "recv"),
                },
                _ = watchdog.tick() => ctx.watchdog.pet(),
                Ok(()) = config.changed() => {
                    let capacity = config.borrow_and_update().osc_debugger.capacity;
                    self.capture().set_capacity(capacity);
                }
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }

    fn state(&self) -> Map<String, Value> {
        let capture = self.capture();
        let mut m = Map::new();
        m.insert("listen".into(), self.listen.clone().into());
        m.insert("capacity".into(), capture.capacity().into());
        m.insert("counters".into(), capture.counters());
        m
    }

    fn checks(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let malformed = self.capture().counters()["malformed"].clone();
        m.insert("udp".into(), "ok".into());
        m.insert("malformed_packets".into(), malformed);
        m
    }

    fn stats(&self) -> Value {
        self.capture().counters()
    }

    async fn command(self: Arc<Self>, cmd: Command) -> Option<Outcome> {
        Some(match cmd.cmd.as_str() {
            "get_messages" => match self.get_messages(&cmd) {
                Ok(data) => Outcome::ok(data),
                Err(fail) => fail,
            },
            "get_stats" => Outcome::ok(self.capture().stats(Instant::now())),
            "clear" => {
                self.capture().clear();
                Outcome::ok(json!({"cleared": true}))
            }
            _ => return None,
        })
    }
}
