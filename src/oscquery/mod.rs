//! The OSCQuery server (`oscquery_server`, `vj-oscquery`): the suite's OSC namespace with its
//! latest values over HTTP, `LISTEN` streaming over WebSocket, mDNS/DNS-SD advertising beyond
//! loopback, and the control-over-OSC input, which it forwards to each worker's control socket.
//!
//! Values arrive as the suite's own OSC (an `[osc] targets` entry, UDP 127.0.0.1:9003): this
//! worker never asks the others for them.

pub mod config;
pub mod control;
pub mod http;
pub mod listen;
pub mod mdns;
pub mod namespace;

pub use config::{Cidr, ControlConfig, ControlOscConfig, OscQueryConfig};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, Semaphore};
use tracing::{debug, warn};

use crate::bus::Outcome;
use crate::registry::{WorkerInfo, OSCQUERY};
use crate::service::activation;
use crate::service::stop::Stop;
use crate::worker::{lock, Context, Handle, Health, NoCommand, Worker};
use listen::Update;
use namespace::Namespace;

/// Largest datagram UDP can carry.
const MAX_DATAGRAM: usize = 65_536;
/// HTTP and WebSocket connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// Values queued per WebSocket client before a slow one starts skipping.
const STREAM_QUEUE: usize = 1024;
/// An idle HTTP connection is closed after this.
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Counters {
    pub http_requests: AtomicU64,
    pub osc_in: AtomicU64,
    pub malformed: AtomicU64,
    pub ws_clients: AtomicU64,
    pub ws_sent: AtomicU64,
    pub ws_lagged: AtomicU64,
}

/// What the receive loop, the HTTP side and the control plane share.
pub struct Shared {
    pub namespace: Mutex<Namespace>,
    pub updates: broadcast::Sender<Arc<Update>>,
    pub counters: Counters,
    host_info: Value,
    http: SocketAddr,
    osc_in: SocketAddr,
    control: Option<(SocketAddr, Vec<String>)>,
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
    shared: Arc<Shared>,
    _mdns: Option<mdns::Advertiser>,
}

pub struct OscQueryHandle {
    shared: Arc<Shared>,
}

#[derive(Serialize)]
struct State {
    http: String,
    osc_listen: String,
    addresses: usize,
    unlisted_addresses: u64,
    mdns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mdns_error: Option<String>,
    control_osc: Value,
    counters: Value,
}

impl Shared {
    fn counters(&self) -> Value {
        let c = &self.counters;
        json!({
            "http_requests": c.http_requests.load(Ordering::Relaxed),
            "osc_in": c.osc_in.load(Ordering::Relaxed),
            "malformed": c.malformed.load(Ordering::Relaxed),
            "ws_clients": c.ws_clients.load(Ordering::Relaxed),
            "ws_sent": c.ws_sent.load(Ordering::Relaxed),
            "ws_lagged": c.ws_lagged.load(Ordering::Relaxed),
        })
    }
}

impl Handle for OscQueryHandle {
    type Command = NoCommand;

    fn state(&self) -> impl Serialize {
        let s = &self.shared;
        let ns = lock(&s.namespace);
        let control_osc = match (&s.control, &s.control_error) {
            (Some((addr, allow)), _) => {
                json!(s.control_stats.state(addr.to_string(), allow.clone()))
            }
            (None, Some(e)) => json!({ "error": e }),
            (None, None) => json!("off"),
        };
        State {
            http: s.http.to_string(),
            osc_listen: s.osc_in.to_string(),
            addresses: ns.len(),
            unlisted_addresses: ns.unlisted,
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

/// Binds the control input if `[control.osc] listen` is set; an error degrades only it.
async fn control_input(
    ctx: &Context<OscQueryConfig>,
    stats: Arc<control::ControlStats>,
) -> Result<Option<control::ControlInput>, String> {
    let c = ctx.common.control.osc.clone();
    if c.listen.is_empty() {
        return Ok(None);
    }
    let addr = c
        .listen_addr()
        .ok_or_else(|| format!("control.osc.listen {:?} is not ip:port", c.listen))?;
    let socket = UdpSocket::bind(addr)
        .await
        .map_err(|e| format!("control over OSC cannot listen on {addr}: {e}"))?;
    Ok(Some(control::ControlInput {
        socket: Arc::new(socket),
        allow: c.networks(),
        bus_dir: crate::config::bus_dir(&ctx.common.bus),
        config: c,
        stats,
    }))
}

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
        let (control, control_error) = match control_input(ctx, stats.clone()).await {
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
        let shared = Arc::new(Shared {
            namespace: Mutex::new(Namespace::default()),
            updates,
            counters: Counters::default(),
            host_info: host_info(&config.name, control_addr),
            http: http_addr,
            osc_in: osc_addr,
            control: control_addr.map(|a| (a, ctx.common.control.osc.allow.clone())),
            control_stats: stats,
            control_error,
            advertised: advertiser
                .as_ref()
                .map(|a| a.services.clone())
                .unwrap_or_default(),
            mdns_error,
        });
        let worker = OscQueryServer {
            http: TcpListener::from_std(http)?,
            osc_in: UdpSocket::from_std(osc_in)?,
            control,
            shared: shared.clone(),
            _mdns: advertiser,
        };
        Ok((worker, OscQueryHandle { shared }))
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
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
                accepted = self.http.accept() => match accepted {
                    Ok((stream, _)) => match connections.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = self.shared.clone();
                            let stop = ctx.stop.clone();
                            tokio::spawn(async move {
                                serve_connection(stream, shared, stop).await;
                                drop(permit);
                            });
                        }
                        Err(_) => debug!("too many connections; one refused"),
                    },
                    Err(e) => debug!(error = %e, "accept"),
                },
                _ = watchdog.tick() => ctx.watchdog.pet(),
                _ = stop.wait() => return Ok(()),
            }
        }
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

impl Shared {
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

    /// The answer to one HTTP request.
    pub fn answer(&self, req: &http::Request) -> http::Response {
        self.counters.http_requests.fetch_add(1, Ordering::Relaxed);
        http::answer(req, &lock(&self.namespace), &self.host_info)
    }
}

/// One HTTP connection: requests until it closes or idles, or a WebSocket upgrade.
pub async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>, stop: Stop) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let (req, used) = loop {
            match http::parse_head(&buf) {
                Ok(Some(done)) => break done,
                Ok(None) => {}
                Err(e) => {
                    let body = http::Response {
                        status: 400,
                        body: Some(json!({ "error": e.to_string() })),
                    };
                    let _ = stream.write_all(&body.to_bytes(false)).await;
                    return;
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..used);
        if let Some(key) = req.websocket_key() {
            if stream
                .write_all(&listen::accept_response(key))
                .await
                .is_err()
            {
                return;
            }
            listen::session(stream, shared, stop).await;
            return;
        }
        let keep = req.keep_alive();
        let mut bytes = shared.answer(&req).to_bytes(keep);
        if req.method == "HEAD" {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                bytes.truncate(end + 4);
            }
        }
        if stream.write_all(&bytes).await.is_err() || !keep {
            return;
        }
    }
}
