//! The OSCQuery server (`oscquery_server`, `vj-oscquery`): the suite's OSC namespace with its
//! latest values over HTTP, `LISTEN` streaming over WebSocket, mDNS/DNS-SD advertising beyond
//! loopback, and the control-over-OSC input, which it forwards to each worker's control socket.
//!
//! Values arrive as the suite's own OSC (an `[osc] targets` entry, UDP 127.0.0.1:9003): this
//! worker never asks the others for them.

pub mod config;
pub mod control;
pub mod gate;
pub mod http;
pub mod listen;
pub mod mdns;
pub mod namespace;
pub mod policy;
pub mod server;
pub mod tally;

pub use config::{Cidr, ControlConfig, ControlOscConfig, OscQueryConfig};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, Semaphore};
use tracing::{debug, warn};

use crate::bus::Outcome;
use crate::service::activation;
use crate::service::lock;
use crate::service::stop::Stop;
use crate::service::unit::{OscIn, WorkerInfo};
use crate::worker::{Context, Handle, Health, NoCommand, Worker};
use listen::Update;
use namespace::Namespace;

/// Largest datagram UDP can carry.
const MAX_DATAGRAM: usize = 65_536;
/// Values queued per WebSocket client before a slow one starts skipping.
const STREAM_QUEUE: usize = 1024;
/// The name of the control-over-OSC socket: an activated fd of that name if a socket unit
/// gives one, else bound to `[control.osc] listen` once per process and kept across restarts.
pub const CONTROL_OSC: &str = "control-osc";

#[derive(Debug, Default)]
pub struct Counters {
    pub http_requests: AtomicU64,
    /// Requests refused for their Host or Origin.
    pub refused: AtomicU64,
    /// Connections turned away because every one open was busy.
    pub http_turned_away: AtomicU64,
    /// Connections closed for idling (or evicted for a newer one: see `server`).
    pub http_idle_closed: AtomicU64,
    pub osc_in: AtomicU64,
    pub malformed: AtomicU64,
    pub ws_clients: AtomicU64,
    pub ws_sent: AtomicU64,
    pub ws_lagged: AtomicU64,
    /// WebSockets closed for a protocol error (an oversized message, a bad frame).
    pub ws_refused: AtomicU64,
    /// WebSockets closed for answering no ping.
    pub ws_dead: AtomicU64,
}

/// What the receive loop, the HTTP side and the control plane share.
pub struct Served {
    pub namespace: Mutex<Namespace>,
    pub updates: broadcast::Sender<Arc<Update>>,
    pub counters: Counters,
    /// Refused HTTP sources (Host or Origin), logged once each.
    pub refused: tally::Tally,
    host_info: Value,
    /// This instance's stop: connections and sessions end with it.
    stop: Stop,
    http: SocketAddr,
    osc_in: SocketAddr,
    control: Option<(SocketAddr, Vec<String>, Vec<String>)>,
    control_stats: Arc<control::ControlStats>,
    control_error: Option<String>,
    advertised: Vec<String>,
    mdns_error: Option<String>,
}

/// OSCQuery `HOST_INFO`: the name, the OSC input (the control input, when it is on), and
/// the extensions served. WebSocket shares the HTTP port, so `WS_PORT` is left out.
pub fn host_info(name: &str, control: Option<SocketAddr>) -> Value {
    let mut info = json!({
        "NAME": name,
        "OSC_TRANSPORT": "UDP",
        "EXTENSIONS": {
            "ACCESS": true, "VALUE": true, "RANGE": true, "DESCRIPTION": true,
            "LISTEN": true, "TAGS": false, "EXTENDED_TYPE": false, "UNIT": false,
            "CRITICAL": false, "CLIPMODE": false, "PATH_CHANGED": false,
            "PATH_RENAMED": false, "PATH_ADDED": false, "PATH_REMOVED": false,
        },
    });
    if let Some(c) = control {
        info["OSC_PORT"] = c.port().into();
        if !c.ip().is_unspecified() {
            info["OSC_IP"] = c.ip().to_string().into();
        }
    }
    info
}

pub struct OscQueryServer {
    http: TcpListener,
    osc_in: UdpSocket,
    control: Option<Arc<control::ControlInput>>,
    site: Arc<server::Site>,
    shared: Arc<Served>,
    _mdns: Option<mdns::Advertiser>,
}

pub struct OscQueryHandle {
    shared: Arc<Served>,
    site: Arc<server::Site>,
}

#[derive(Serialize)]
struct State {
    http: String,
    osc_listen: String,
    addresses: usize,
    /// Unknown `/audio/*`, `/karaoke/*` addresses seen on UDP, kept (≤ 256), dropped.
    unlisted_addresses: u64,
    learned_addresses: usize,
    learned_dropped: u64,
    http_connections: usize,
    refused_http: tally::TallyState,
    mdns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mdns_error: Option<String>,
    control_osc: Value,
    counters: Value,
}

impl Served {
    fn counters(&self) -> Value {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "http_requests": n(&c.http_requests),
            "http_refused": n(&c.refused),
            "http_turned_away": n(&c.http_turned_away),
            "http_idle_closed": n(&c.http_idle_closed),
            "osc_in": n(&c.osc_in),
            "malformed": n(&c.malformed),
            "ws_clients": n(&c.ws_clients),
            "ws_sent": n(&c.ws_sent),
            "ws_lagged": n(&c.ws_lagged),
            "ws_refused": n(&c.ws_refused),
            "ws_dead": n(&c.ws_dead),
        })
    }
}

impl Handle for OscQueryHandle {
    type Command = NoCommand;

    fn state(&self) -> impl Serialize {
        let s = &self.shared;
        let ns = lock(&s.namespace);
        let control_osc = match (&s.control, &s.control_error) {
            (Some((addr, allow, commands)), _) => {
                json!(s
                    .control_stats
                    .state(addr.to_string(), allow.clone(), commands.clone()))
            }
            (None, Some(e)) => json!({ "error": e }),
            (None, None) => json!("off"),
        };
        State {
            http: s.http.to_string(),
            osc_listen: s.osc_in.to_string(),
            addresses: ns.len(),
            unlisted_addresses: ns.unlisted,
            learned_addresses: ns.learned(),
            learned_dropped: ns.unlisted_dropped,
            http_connections: lock(&self.site.connections).len(),
            refused_http: s.refused.state(),
            mdns: s.advertised.clone(),
            mdns_error: s.mdns_error.clone(),
            control_osc,
            counters: s.counters(),
        }
    }

    fn checks(&self) -> impl Serialize {
        let s = &self.shared;
        json!({
            "http": "ok",
            "mdns": s.mdns_error.clone().unwrap_or_else(|| if s.advertised.is_empty() { "off (loopback)".into() } else { "ok".into() }),
            "control_osc": s.control_error.clone().unwrap_or_else(|| if s.control.is_some() { "ok".into() } else { "off".into() }),
        })
    }

    fn stats(&self) -> impl Serialize {
        self.shared.counters()
    }

    async fn command(&self, cmd: NoCommand) -> Outcome {
        match cmd {}
    }
}

/// `[control]`, read from the config table this process loaded (the worker that serves it
/// reads it; no other worker checks it).
fn control_config(ctx: &Context<OscQueryConfig>) -> Result<ControlOscConfig, String> {
    crate::config::section::<ControlConfig>(&ctx.table, "control", "the loaded config")
        .map(|c| c.osc)
        .map_err(|e| e.to_string())
}

/// The control input if `[control.osc] listen` is set; an error degrades only it. Its socket
/// is the process's ([`CONTROL_OSC`]): a `restart` (even one asked for over OSC, whose reply is
/// still in flight) reuses it instead of binding again.
fn control_input(
    ctx: &Context<OscQueryConfig>,
    stats: Arc<control::ControlStats>,
) -> Result<Option<control::ControlInput>, String> {
    let c = control_config(ctx)?;
    if c.listen.is_empty() {
        return Ok(None);
    }
    let addr = c
        .listen_addr()
        .ok_or_else(|| format!("control.osc.listen {:?} is not ip:port", c.listen))?;
    let socket = ctx
        .udp_socket(CONTROL_OSC, &addr.to_string())
        .and_then(UdpSocket::from_std)
        .map_err(|e| format!("control over OSC cannot listen on {addr}: {e}"))?;
    Ok(Some(control::ControlInput::new(
        Arc::new(socket),
        c,
        crate::config::bus_dir(&ctx.common.bus),
        stats,
        ctx.suite,
    )))
}

/// The OSCQuery server: it receives everything the suite sends (an `[osc] targets` entry),
/// serves the namespace over HTTP, and runs the control-over-OSC input. Started with the
/// target: mDNS must answer before anyone has connected.
pub const OSCQUERY: WorkerInfo = WorkerInfo {
    bus_name: "oscquery_server",
    binary: "vj-oscquery",
    config_section: "oscquery",
    osc_in: Some(OscIn {
        port: 9003,
        route: None,
    }),
    http_port: Some(9010),
    starts_with_target: true,
    check_config: crate::config::check::<crate::oscquery::OscQueryConfig>,
};

impl Worker for OscQueryServer {
    const INFO: &'static WorkerInfo = &OSCQUERY;
    type Config = OscQueryConfig;
    type Handle = OscQueryHandle;

    async fn start(ctx: &Context<OscQueryConfig>) -> anyhow::Result<(Self, OscQueryHandle)> {
        let config = ctx.config();
        let http = ctx.tcp_listener(activation::HTTP, &config.listen)?;
        let http_addr = http.local_addr()?;
        if http_addr.to_string() != config.listen {
            debug!(socket = %http_addr, config = %config.listen, "HTTP socket from the supervisor");
        }
        let osc_in = ctx.udp_socket(activation::OSC, &config.osc_listen)?;
        let osc_addr = osc_in.local_addr()?;
        let stats = Arc::new(control::ControlStats::default());
        let (control, control_error) = match control_input(ctx, stats.clone()) {
            Ok(c) => (c.map(Arc::new), None),
            Err(e) => {
                warn!(error = %e, "control over OSC is off");
                (None, Some(e))
            }
        };
        let control_addr = control.as_ref().and_then(|c| c.socket.local_addr().ok());
        let (advertiser, mdns_error) = match mdns::advertise(&config.name, http_addr, control_addr)
        {
            Ok(a) => (a, None),
            Err(e) => {
                warn!(error = %e, "mDNS advertising failed");
                (None, Some(format!("mDNS: {e}")))
            }
        };
        let (updates, _) = broadcast::channel(STREAM_QUEUE);
        let shared = Arc::new(Served {
            namespace: Mutex::new(Namespace::default()),
            updates,
            counters: Counters::default(),
            refused: tally::Tally::default(),
            host_info: host_info(&config.name, control_addr),
            stop: ctx.stop.clone(),
            http: http_addr,
            osc_in: osc_addr,
            control: control
                .as_ref()
                .zip(control_addr)
                .map(|(c, a)| (a, c.config.allow.clone(), c.config.commands.clone())),
            control_stats: stats,
            control_error,
            advertised: advertiser
                .as_ref()
                .map(|a| a.services.clone())
                .unwrap_or_default(),
            mdns_error,
        });
        let site = Arc::new(server::Site {
            shared: shared.clone(),
            gate: gate::Gate::new(&config, http_addr, &mdns::machine_names()),
            connections: Mutex::new(server::Connections::default()),
            websockets: Arc::new(Semaphore::new(server::MAX_WEBSOCKETS)),
        });
        let worker = OscQueryServer {
            http: TcpListener::from_std(http)?,
            osc_in: UdpSocket::from_std(osc_in)?,
            control,
            site: site.clone(),
            shared: shared.clone(),
            _mdns: advertiser,
        };
        Ok((worker, OscQueryHandle { shared, site }))
    }

    async fn run(self, ctx: Context<OscQueryConfig>) -> anyhow::Result<()> {
        let s = &self.shared;
        let degraded: Vec<&str> = [s.control_error.as_deref(), s.mdns_error.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let line = format!(
            "OSCQuery on http://{}, {} addresses{}",
            s.http,
            lock(&s.namespace).len(),
            if s.advertised.is_empty() {
                ""
            } else {
                ", advertised over mDNS"
            }
        );
        if degraded.is_empty() {
            ctx.status.set(Health::Ok, line);
        } else {
            ctx.status
                .set(Health::Degraded, format!("{line}; {}", degraded.join("; ")));
        }
        // The transport runs beside the loop; it ends with this instance's stop, and is
        // aborted if this loop ends any other way.
        let transport = tokio::spawn(server::serve(
            self.http,
            self.site.clone(),
            ctx.stop.clone(),
        ));
        let _transport = AbortOnDrop(transport);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut control_buf = vec![0u8; MAX_DATAGRAM];
        let mut watchdog = ctx.watchdog.ticker();
        let mut stop = ctx.stop.clone();
        loop {
            tokio::select! {
                received = self.osc_in.recv_from(&mut buf) => match received {
                    Ok((n, _)) => self.shared.receive(&buf[..n]),
                    Err(e) => debug!(error = %e, "recv"),
                },
                control = recv_control(self.control.as_deref(), &mut control_buf) => match control {
                    Ok((n, peer)) => {
                        if let Some(c) = &self.control {
                            c.handle(&control_buf[..n], peer).await;
                        }
                    }
                    Err(e) => debug!(error = %e, "control recv"),
                },
                _ = watchdog.tick() => ctx.watchdog.pet(),
                _ = stop.wait() => return Ok(()),
            }
        }
    }
}

/// A task that ends when its owner does.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn recv_control(
    control: Option<&control::ControlInput>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match control {
        Some(c) => c.socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

impl Served {
    /// One datagram of the suite's OSC: values recorded, and passed to listening clients.
    pub fn receive(&self, datagram: &[u8]) {
        let msgs = match crate::osc::decode_messages(datagram) {
            Ok(m) => m,
            Err(_) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let streaming = self.updates.receiver_count() > 0;
        let mut ns = lock(&self.namespace);
        for msg in msgs {
            self.counters.osc_in.fetch_add(1, Ordering::Relaxed);
            if !ns.record(&msg) || !streaming {
                continue;
            }
            let path = msg.addr.clone();
            if let Ok(packet) = rosc::encoder::encode(&rosc::OscPacket::Message(msg)) {
                let _ = self.updates.send(Arc::new(Update { path, packet }));
            }
        }
    }
}
