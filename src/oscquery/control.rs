//! Control over OSC: `/vj/<bus name>/<command> args…` from the allowed networks runs the same
//! typed command as the control socket, by forwarding it there: the worker that owns the
//! command decodes it with its own command enum, so every command a worker has (tap, nudge,
//! set_config, restart, …) works over OSC the day it is added, and nothing here knows them.
//!
//! Arguments: none; `key value` pairs (`/vj/audio_analyzer/nudge "ms" 20`), named as the
//! control socket names them; or positional values (`/vj/audio_analyzer/nudge 20`), which the
//! worker's decoder lays onto the command's arguments in order. A lone 0 / 0.0 / false is a
//! controller button's release and runs nothing (a button sends 1 on press, 0 on release).
//!
//! Only the commands `[control.osc] commands` lists run ([`super::policy`]); the others are
//! answered `…/reply 0 "not allowed: …"`. At most [`MAX_FORWARDS`] commands are in flight.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rosc::{OscMessage, OscPacket, OscType};
use serde::Serialize;
use serde_json::{Map, Number, Value};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::config::{Cidr, ControlOscConfig};
use super::policy;
use super::tally::{Tally, TallyState};
use crate::bus::client;
use crate::bus::command::POSITIONAL;
use crate::service::unit::WorkerInfo;

/// Replies are cut below this: one datagram, well under a 1500-byte MTU.
const MAX_REPLY_DATA: usize = 1000;
/// Commands forwarded at once; more wait for none and are answered "busy".
pub const MAX_FORWARDS: usize = 16;

/// A command read off an OSC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Call {
        bus: &'static str,
        cmd: String,
        args: Map<String, Value>,
    },
    /// A button's release: nothing to run.
    Release,
}

/// An OSC argument as the JSON a control-socket client would send.
fn json_arg(arg: &OscType) -> Result<Value, String> {
    Ok(match arg {
        OscType::Int(i) => Value::from(*i),
        OscType::Long(h) => Value::from(*h),
        // The float as written (0.1, not 0.10000000149): f32 -> shortest text -> f64.
        OscType::Float(f) => Number::from_f64(f.to_string().parse().unwrap_or(0.0))
            .map(Value::Number)
            .ok_or("a float that is not finite")?,
        OscType::Double(d) => Number::from_f64(*d)
            .map(Value::Number)
            .ok_or("a double that is not finite")?,
        OscType::String(s) => Value::from(s.clone()),
        OscType::Bool(b) => Value::from(*b),
        OscType::Nil => Value::Null,
        other => return Err(format!("argument type {other:?} has no JSON form")),
    })
}

fn is_release(args: &[OscType]) -> bool {
    matches!(
        args,
        [OscType::Int(0)] | [OscType::Bool(false)] | [OscType::Long(0)]
    ) || matches!(args, [OscType::Float(f)] if *f == 0.0)
        || matches!(args, [OscType::Double(d)] if *d == 0.0)
}

/// Reads `/vj/<bus name>/<command> args…`, for a worker of `suite`.
pub fn parse(msg: &OscMessage, suite: &[&'static WorkerInfo]) -> Result<Parsed, String> {
    let mut parts = msg.addr.split('/');
    let (Some(""), Some("vj"), Some(bus), Some(cmd), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(format!(
            "{}: control messages are /vj/<bus name>/<command>",
            msg.addr
        ));
    };
    let worker = suite
        .iter()
        .find(|w| w.is_called(bus))
        .ok_or_else(|| format!("{}: no worker called {bus:?}", msg.addr))?;
    if cmd.is_empty() {
        return Err(format!("{}: no command", msg.addr));
    }
    if is_release(&msg.args) {
        return Ok(Parsed::Release);
    }
    let pairs = msg.args.len() % 2 == 0
        && msg
            .args
            .iter()
            .step_by(2)
            .all(|a| matches!(a, OscType::String(_)));
    let mut args = Map::new();
    if pairs {
        for kv in msg.args.chunks(2) {
            if let [OscType::String(k), v] = kv {
                args.insert(k.clone(), json_arg(v)?);
            }
        }
    } else {
        let values = msg.args.iter().map(json_arg).collect::<Result<_, _>>()?;
        args.insert(POSITIONAL.into(), Value::Array(values));
    }
    Ok(Parsed::Call {
        bus: worker.bus_name,
        cmd: cmd.to_string(),
        args,
    })
}

/// What `get_state` shows of the input.
#[derive(Debug, Default)]
pub struct ControlStats {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// Commands refused by `[control.osc] commands` (or a set_config key), and turned away busy.
    pub not_allowed: AtomicU64,
    pub busy: AtomicU64,
    /// Refused senders, each with how many messages it sent; logged once per sender.
    pub refused: Tally,
    /// Senders whose refused commands were logged (once per sender).
    pub refused_commands: Tally,
    /// Commands run per allowed sender (the first is logged).
    pub senders: Tally,
}

#[derive(Serialize)]
pub struct ControlState {
    pub listen: String,
    pub allow: Vec<String>,
    pub commands: Vec<String>,
    pub accepted: u64,
    pub rejected: u64,
    pub not_allowed: u64,
    pub busy: u64,
    pub refused: std::collections::BTreeMap<String, u64>,
    pub refused_others: u64,
    pub not_allowed_by_source: TallyState,
    pub accepted_by_source: TallyState,
}

impl ControlStats {
    pub fn state(&self, listen: String, allow: Vec<String>, commands: Vec<String>) -> ControlState {
        let refused = self.refused.state();
        ControlState {
            listen,
            allow,
            commands,
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            not_allowed: self.not_allowed.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            refused: refused.by_source,
            refused_others: refused.others,
            not_allowed_by_source: self.refused_commands.state(),
            accepted_by_source: self.senders.state(),
        }
    }
}

/// The input: its socket, who may use it, where the workers are.
pub struct ControlInput {
    pub socket: Arc<UdpSocket>,
    pub allow: Vec<Cidr>,
    pub config: ControlOscConfig,
    pub bus_dir: PathBuf,
    pub stats: Arc<ControlStats>,
    /// The workers it may forward to.
    suite: &'static [&'static WorkerInfo],
    forwards: Arc<Semaphore>,
}

/// Runs one call on the worker's control socket.
async fn forward(
    bus_dir: &std::path::Path,
    bus: &str,
    cmd: &str,
    args: Map<String, Value>,
) -> (bool, String, Value) {
    let path = crate::config::socket_path(bus_dir, bus);
    match client::ask(&path, cmd, args, Duration::from_secs(5)).await {
        Ok(ack) => (ack.success, ack.message.unwrap_or_default(), ack.data),
        Err(e) => (false, e.to_string(), Value::Null),
    }
}

fn reply_packet(address: &str, ok: bool, message: &str, data: &Value) -> Option<Vec<u8>> {
    let mut data = if data.is_null() {
        String::new()
    } else {
        data.to_string()
    };
    if data.len() > MAX_REPLY_DATA {
        data = r#"{"truncated":"too large for one datagram: ask the control socket"}"#.into();
    }
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: format!("{address}/reply"),
        args: vec![
            OscType::Int(i32::from(ok)),
            OscType::String(message.to_string()),
            OscType::String(data),
        ],
    }))
    .ok()
}

impl ControlInput {
    pub fn new(
        socket: Arc<UdpSocket>,
        config: ControlOscConfig,
        bus_dir: PathBuf,
        stats: Arc<ControlStats>,
        suite: &'static [&'static WorkerInfo],
    ) -> ControlInput {
        ControlInput {
            socket,
            suite,
            allow: config.networks(),
            config,
            bus_dir,
            stats,
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        }
    }

    async fn answer(&self, reply: Option<SocketAddr>, address: &str, ok: bool, message: &str) {
        if let (Some(to), Some(bytes)) = (reply, reply_packet(address, ok, message, &Value::Null)) {
            let _ = self.socket.send_to(&bytes, to).await;
        }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(ip))
    }

    fn reply_to(&self, peer: SocketAddr) -> Option<SocketAddr> {
        self.config.reply.then(|| match self.config.reply_port {
            0 => peer,
            p => SocketAddr::new(peer.ip(), p),
        })
    }

    /// Handles one datagram from `peer`.
    pub async fn handle(self: &Arc<Self>, datagram: &[u8], peer: SocketAddr) {
        if !self.allowed(peer.ip()) {
            if self.stats.refused.count(peer.ip()) {
                warn!(sender = %peer.ip(), "control over OSC refused: the sender is not in [control.osc] allow (logged once per sender)");
            }
            return;
        }
        let msgs = match crate::osc::decode_messages(datagram) {
            Ok(m) => m,
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "control over OSC: not an OSC packet");
                return;
            }
        };
        for msg in msgs {
            let reply = self.reply_to(peer);
            match parse(&msg, self.suite) {
                Ok(Parsed::Release) => {}
                Ok(Parsed::Call { bus, cmd, args }) => {
                    if let Err(refusal) = policy::check(&self.config.commands, bus, &cmd, &args) {
                        self.stats.not_allowed.fetch_add(1, Ordering::Relaxed);
                        if self.stats.refused_commands.count(peer.ip()) {
                            warn!(sender = %peer.ip(), worker = bus, cmd = %cmd, "control over OSC: not allowed: {refusal} (logged once per sender)");
                        }
                        self.answer(reply, &msg.addr, false, &format!("not allowed: {refusal}"))
                            .await;
                        continue;
                    }
                    let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
                        self.stats.busy.fetch_add(1, Ordering::Relaxed);
                        let busy = format!("busy: {MAX_FORWARDS} commands in flight; try again");
                        self.answer(reply, &msg.addr, false, &busy).await;
                        continue;
                    };
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let me = self.clone();
                    // Each command on a task of its own: a slow worker holds up no other.
                    tokio::spawn(async move {
                        let (ok, message, data) = forward(&me.bus_dir, bus, &cmd, args).await;
                        drop(permit);
                        // The first command of each sender is logged; the rest (a fader sends
                        // dozens a second) only at debug level.
                        if me.stats.senders.count(peer.ip()) {
                            info!(worker = bus, cmd = %cmd, success = ok, "command over OSC from {} (its first; the rest at debug level)", peer.ip());
                        } else {
                            debug!(worker = bus, cmd = %cmd, success = ok, "command over OSC from {}", peer.ip());
                        }
                        if let (Some(to), Some(bytes)) =
                            (reply, reply_packet(&msg.addr, ok, &message, &data))
                        {
                            let _ = me.socket.send_to(&bytes, to).await;
                        }
                    });
                }
                Err(e) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, "control over OSC: not a command");
                    if let (Some(to), Some(bytes)) =
                        (reply, reply_packet(&msg.addr, false, &e, &Value::Null))
                    {
                        let _ = self.socket.send_to(&bytes, to).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(addr: &str, args: Vec<OscType>) -> OscMessage {
        OscMessage {
            addr: addr.into(),
            args,
        }
    }

    fn call(addr: &str, args: Vec<OscType>) -> (String, String, Value) {
        match parse(&msg(addr, args), &crate::registry::WORKERS).unwrap() {
            Parsed::Call { bus, cmd, args } => (bus.to_string(), cmd, Value::Object(args)),
            Parsed::Release => panic!("a release"),
        }
    }

    #[test]
    fn addresses_and_arguments_become_the_control_sockets_commands() {
        assert_eq!(
            call("/vj/audio_analyzer/tap", vec![]),
            ("audio_analyzer".into(), "tap".into(), json!({}))
        );
        assert_eq!(
            call(
                "/vj/audio_analyzer/nudge",
                vec![OscType::String("ms".into()), OscType::Float(0.1)]
            )
            .2,
            json!({"ms": 0.1})
        );
        assert_eq!(
            call("/vj/audio_analyzer/nudge", vec![OscType::Int(-20)]).2,
            json!({ POSITIONAL: [-20] })
        );
        assert_eq!(
            call(
                "/vj/audio_analyzer/set_tempo",
                vec![OscType::Float(128.0), OscType::Bool(true)]
            )
            .2,
            json!({ POSITIONAL: [128.0, true] })
        );
        assert_eq!(
            call("/vj/audio_analyzer/tap", vec![OscType::Float(1.0)]).2,
            json!({ POSITIONAL: [1.0] })
        );
        assert_eq!(
            parse(
                &msg("/vj/audio_analyzer/tap", vec![OscType::Float(0.0)]),
                &crate::registry::WORKERS
            ),
            Ok(Parsed::Release)
        );
        assert!(
            parse(&msg("/vj/nobody/tap", vec![]), &crate::registry::WORKERS)
                .unwrap_err()
                .contains("no worker called \"nobody\"")
        );
        assert!(parse(&msg("/audio/bpm", vec![]), &crate::registry::WORKERS).is_err());
        assert!(parse(
            &msg("/vj/audio_analyzer/tap/x", vec![]),
            &crate::registry::WORKERS
        )
        .is_err());
    }

    #[test]
    fn refused_senders_are_counted_and_logged_once() {
        let s = ControlStats::default();
        let ip: IpAddr = "10.9.0.3".parse().unwrap();
        assert!(s.refused.count(ip));
        assert!(!s.refused.count(ip));
        assert_eq!(
            s.state(String::new(), vec![], vec![]).refused["10.9.0.3"],
            2
        );
    }

    #[test]
    fn a_reply_fits_one_datagram() {
        let big = json!({"x": "y".repeat(5000)});
        let bytes = reply_packet("/vj/osc_debugger/get_state", true, "", &big).unwrap();
        assert!(bytes.len() < 1400);
    }
}
