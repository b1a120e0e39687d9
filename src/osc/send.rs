//! Fans each message out to every `[osc] targets` entry plus the routes whose prefix matches.
//!
//! Sending is a non-blocking `send_to`: a full socket buffer drops the packet (and counts it)
//! rather than stalling the caller, which may be the audio analysis thread. Each destination
//! keeps its own health: a host name is resolved on a thread of its own (never on the caller's),
//! a target that cannot be resolved or reached is skipped until its retry time and says why in
//! `get_state`, and the other targets carry on. Multicast groups get a socket of their own with
//! their `ttl` and `interface`. IPv6 destinations (`[::1]:9000`, a name whose address is IPv6)
//! go out through an IPv6 socket of their own family, opened the first time one is used.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime};
use serde::Serialize;
use tracing::{info, warn};

use crate::config::{OscConfig, OscTarget};
use crate::service::backoff::Backoff;
use crate::service::lock;

/// A failed target is tried again after 1 s, doubling to 30 s.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// A host name that resolved is looked up again this often (its address may move).
const REFRESH: Duration = Duration::from_secs(60);
/// How long `OscOut::new` waits for the first lookups (local names answer at once).
const FIRST_LOOKUP: Duration = Duration::from_millis(300);

/// What a destination is doing, as `get_state` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    Ok,
    /// A host name not looked up yet.
    Resolving,
    /// The host name does not resolve (retried).
    Unresolved,
    /// Sending failed (no route, no such interface; retried).
    Unreachable,
}

/// The changing part of a destination, behind one lock.
#[derive(Debug)]
struct Reach {
    addr: Option<SocketAddr>,
    /// A multicast group's own socket, set up for its ttl and interface.
    socket: Option<UdpSocket>,
    health: TargetHealth,
    error: Option<String>,
    /// Nothing is sent (or looked up) before this.
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// When a resolved host name is looked up again.
    refresh_at: Option<Instant>,
}

#[derive(Debug)]
struct Destination {
    /// As configured (`visuals.local:9000`).
    text: String,
    /// Wants one bundle per frame instead of plain messages.
    bundle: bool,
    ttl: Option<u32>,
    interface: Option<String>,
    /// Not an IP literal: looked up by the resolver thread.
    named: bool,
    /// The worker's own receive socket: never sent to (the default `/karaoke/` route would
    /// otherwise pour the lyrics fetcher's own burst back into its input and crowd out the
    /// next track change). Set once, when the worker binds the socket.
    own: AtomicBool,
    reach: Mutex<Reach>,
    sent: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Route {
    prefix: String,
    destinations: Vec<Arc<Destination>>,
}

/// One destination in `get_state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetState {
    pub addr: String,
    /// The prefix of the route it belongs to; `None` for an `[osc] targets` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub health: TargetHealth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    pub sent: u64,
    pub dropped: u64,
}

/// Counters and per-target health for `get_state` and heartbeats.
#[derive(Debug, Default, Serialize, Clone, PartialEq, Eq)]
pub struct SendStats {
    pub packets_sent: u64,
    pub packets_dropped: u64,
    pub targets: Vec<TargetState>,
}

impl SendStats {
    /// How many destinations are not ok (`get_state` and `health` say which).
    pub fn failing(&self) -> usize {
        self.targets
            .iter()
            .filter(|t| t.health != TargetHealth::Ok)
            .count()
    }
}

#[derive(Debug)]
struct Outputs {
    /// IPv4 unicast.
    socket: UdpSocket,
    /// IPv6 unicast, opened on first use (a host without IPv6 degrades only those targets).
    socket_v6: std::sync::OnceLock<Result<UdpSocket, String>>,
    targets: Vec<Arc<Destination>>,
    routes: Vec<Route>,
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// The suite's OSC output: every target and route from the config.
#[derive(Debug)]
pub struct OscOut {
    shared: Arc<Outputs>,
    /// `send_frame`'s buffers, kept from one frame to the next.
    frame: Mutex<FrameBytes>,
}

/// A frame's messages, each encoded once, and the bundles put together from them. The buffers
/// keep their capacity, so sending a frame allocates nothing once they have grown.
#[derive(Debug)]
struct FrameBytes {
    /// The message being encoded: rosc encodes a packet, and a packet owns its message.
    packet: OscPacket,
    /// Each message as a bundle element: its size (4 bytes), then the message.
    elements: Vec<u8>,
    /// Where each message's element lies in `elements`.
    spans: Vec<(usize, usize)>,
    /// The bundle being put together.
    bundle: Vec<u8>,
}

impl FrameBytes {
    fn new() -> FrameBytes {
        FrameBytes {
            packet: OscPacket::Message(OscMessage {
                addr: String::new(),
                args: Vec::new(),
            }),
            elements: Vec::new(),
            spans: Vec::new(),
            bundle: Vec::new(),
        }
    }

    /// Encodes `msgs`, each as a bundle element. rosc's TCP framing (OSC 1.0: the size, then
    /// the packet) is how a bundle holds an element, so a plain datagram is an element less
    /// its first 4 bytes.
    fn encode(&mut self, msgs: &[OscMessage]) {
        self.elements.clear();
        self.spans.clear();
        for msg in msgs {
            let OscPacket::Message(m) = &mut self.packet else {
                unreachable!("holds a message from new")
            };
            // clone_from keeps the address's and the arguments' capacity.
            m.addr.clone_from(&msg.addr);
            m.args.clone_from(&msg.args);
            let start = self.elements.len();
            let Ok(_) = encoder::encode_into_tcp(&self.packet, &mut self.elements);
            self.spans.push((start, self.elements.len()));
        }
    }

    /// Message `i` as a plain packet.
    fn message(&self, i: usize) -> &[u8] {
        let (start, end) = self.spans[i];
        &self.elements[start + 4..end]
    }

    /// The bundle of the messages `wanted` picks, in order; None if it picks none.
    fn bundle(&mut self, timetag: OscTime, wanted: impl Iterator<Item = bool>) -> Option<&[u8]> {
        self.bundle.clear();
        let header = OscPacket::Bundle(OscBundle {
            timetag,
            content: Vec::new(),
        });
        let Ok(header_len) = encoder::encode_into(&header, &mut self.bundle);
        for (&(start, end), _) in self.spans.iter().zip(wanted).filter(|(_, w)| *w) {
            self.bundle.extend_from_slice(&self.elements[start..end]);
        }
        (self.bundle.len() > header_len).then_some(self.bundle.as_slice())
    }
}

/// The OSC output could not be set up at all (a bad target only degrades that target).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("osc target {0:?} is not a host:port address")]
    Syntax(String),
    #[error("cannot open a UDP socket for OSC output: {0}")]
    Socket(io::Error),
}

/// `host:port` split, the host without IPv6 brackets; a literal IP parsed.
fn parse(text: &str) -> Result<(String, u16, Option<IpAddr>), TargetError> {
    let (host, port) =
        crate::config::host_port(text).ok_or_else(|| TargetError::Syntax(text.to_string()))?;
    Ok((host.to_string(), port, host.parse().ok()))
}

impl Destination {
    fn new(target: &OscTarget) -> Result<Destination, TargetError> {
        let text = target.addr().to_string();
        let (_, _, ip) = parse(&text)?;
        let d = Destination {
            text,
            bundle: target.bundle(),
            ttl: target.ttl(),
            interface: target.interface().map(str::to_string),
            named: ip.is_none(),
            own: AtomicBool::new(false),
            reach: Mutex::new(Reach::new()),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        if !d.named {
            d.lookup();
        }
        Ok(d)
    }

    /// Records the outcome of a lookup (or of parsing a literal).
    fn settle(&self, reach: &mut Reach, found: Result<SocketAddr, String>, now: Instant) {
        let found = found.and_then(|addr| {
            let socket = if addr.ip().is_multicast() {
                Some(
                    multicast_socket(addr, self.ttl, self.interface.as_deref())
                        .map_err(|e| format!("cannot set up multicast to {addr}: {e}"))?,
                )
            } else {
                None
            };
            Ok((addr, socket))
        });
        match found {
            Ok((addr, socket)) => {
                reach.refresh_at = self.named.then(|| now + REFRESH);
                // The same address that could not be reached: its retry time stands.
                let still = reach.addr == Some(addr) && reach.health == TargetHealth::Unreachable;
                reach.addr = Some(addr);
                reach.socket = socket;
                if still {
                    return;
                }
                if reach.health != TargetHealth::Ok && reach.health != TargetHealth::Resolving {
                    info!(target = %self.text, %addr, "osc target usable again");
                }
                reach.health = TargetHealth::Ok;
                reach.error = None;
                reach.retry_at = None;
                reach.backoff.reset();
            }
            Err(e) => {
                let wait = reach.backoff.next_wait();
                if reach.health == TargetHealth::Ok || reach.health == TargetHealth::Resolving {
                    warn!(target = %self.text, error = %e, "osc target degraded; retrying");
                }
                // An address that resolved before keeps being used while a refresh fails.
                if reach.addr.is_none() || !self.named {
                    reach.health = if self.named && !e.starts_with("cannot set up") {
                        TargetHealth::Unresolved
                    } else {
                        TargetHealth::Unreachable
                    };
                    reach.error = Some(e);
                    reach.retry_at = Some(now + wait);
                } else {
                    reach.refresh_at = Some(now + wait);
                }
            }
        }
    }

    /// A failed send: skipped until the retry time, looked up again then if it is a name.
    fn unreachable(&self, reach: &mut Reach, e: &io::Error, now: Instant) {
        let wait = reach.backoff.next_wait();
        if reach.health == TargetHealth::Ok {
            warn!(target = %self.text, error = %e, "osc target unreachable; retrying");
        }
        reach.health = TargetHealth::Unreachable;
        reach.error = Some(format!("send failed: {e}"));
        reach.retry_at = Some(now + wait);
        if self.named {
            reach.refresh_at = Some(now + wait);
        }
    }

    /// Is a lookup (or, for a literal, setting its socket up again) due now?
    fn lookup_due(&self, now: Instant) -> bool {
        let reach = lock(&self.reach);
        match (reach.health, reach.addr) {
            (TargetHealth::Resolving, _) => true,
            (_, None) => reach.retry_at.is_none_or(|t| now >= t),
            _ => self.named && reach.refresh_at.is_some_and(|t| now >= t),
        }
    }

    /// Needs the resolver thread: a name, or a group whose socket could not be set up.
    fn needs_lookups(&self) -> bool {
        self.named || lock(&self.reach).addr.is_none()
    }

    fn lookup(&self) {
        // Literals too: std parses an IP literal without asking any resolver.
        let found = self
            .text
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {:?}: {e}", self.text))
            .and_then(|mut a| {
                a.next()
                    .ok_or_else(|| format!("{:?} resolves to no address", self.text))
            });
        let mut reach = lock(&self.reach);
        self.settle(&mut reach, found, Instant::now());
    }

    fn state(&self, route: Option<&str>, now: Instant) -> TargetState {
        let reach = lock(&self.reach);
        TargetState {
            addr: self.text.clone(),
            route: route.map(str::to_string),
            health: reach.health,
            resolved: reach.addr.filter(|_| self.named).map(|a| a.to_string()),
            error: reach.error.clone(),
            retry_in_ms: reach
                .retry_at
                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Reach {
    fn new() -> Reach {
        Reach {
            addr: None,
            socket: None,
            health: TargetHealth::Resolving,
            error: None,
            retry_at: None,
            backoff: RETRY,
            refresh_at: None,
        }
    }
}

/// The interface a multicast group is sent from: an address, or (Linux) a name.
fn interface_v4(socket: &UdpSocket, interface: &str) -> io::Result<Option<u32>> {
    if interface.parse::<Ipv4Addr>().is_ok() {
        return Ok(None);
    }
    #[cfg(target_os = "linux")]
    {
        rustix::net::netdevice::name_to_index(socket, interface)
            .map(Some)
            .map_err(|e| io::Error::new(e.kind(), format!("no interface {interface:?}: {e}")))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface {interface:?}: give the interface's IPv4 address"),
        ))
    }
}

/// A socket for one multicast group: its hops, its outgoing interface, and loopback delivery
/// on (a receiver on the same machine hears it too).
fn multicast_socket(
    group: SocketAddr,
    ttl: Option<u32>,
    interface: Option<&str>,
) -> io::Result<UdpSocket> {
    let ttl = ttl.unwrap_or(1);
    let socket = match group.ip() {
        IpAddr::V4(_) => {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.set_multicast_ttl_v4(ttl)?;
            if let Some(name) = interface {
                match interface_v4(&s, name)? {
                    None => {
                        let addr: Ipv4Addr = name.parse().map_err(|_| {
                            io::Error::new(io::ErrorKind::InvalidInput, "bad interface address")
                        })?;
                        socket2::SockRef::from(&s).set_multicast_if_v4(&addr)?;
                    }
                    #[cfg(target_os = "linux")]
                    Some(index) => rustix::net::sockopt::set_ip_multicast_if_with_ifindex(
                        &s,
                        &Ipv4Addr::UNSPECIFIED,
                        &Ipv4Addr::UNSPECIFIED,
                        index,
                    )?,
                    #[cfg(not(target_os = "linux"))]
                    Some(_) => {}
                }
            }
            s
        }
        IpAddr::V6(_) => {
            let s = UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, 0))?;
            socket2::SockRef::from(&s).set_multicast_hops_v6(ttl)?;
            if let Some(name) = interface {
                let index = match name.parse::<u32>() {
                    Ok(i) => i,
                    #[cfg(target_os = "linux")]
                    Err(_) => rustix::net::netdevice::name_to_index(&s, name)?,
                    #[cfg(not(target_os = "linux"))]
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "give the interface's index",
                        ))
                    }
                };
                socket2::SockRef::from(&s).set_multicast_if_v6(index)?;
            }
            s
        }
    };
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl OscOut {
    pub fn new(config: &OscConfig) -> Result<Self, TargetError> {
        let targets = config
            .targets
            .iter()
            .map(|t| Destination::new(t).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let routes = config
            .routes
            .iter()
            .map(|r| {
                Ok(Route {
                    prefix: r.prefix.clone(),
                    destinations: r
                        .targets
                        .iter()
                        .map(|t| Destination::new(t).map(Arc::new))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, TargetError>>()?;
        let socket = UdpSocket::bind("0.0.0.0:0").map_err(TargetError::Socket)?;
        socket.set_nonblocking(true).map_err(TargetError::Socket)?;
        let shared = Arc::new(Outputs {
            socket,
            socket_v6: std::sync::OnceLock::new(),
            targets,
            routes,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        if shared.all().any(|d| d.needs_lookups()) {
            let (first_tx, first_rx) = std::sync::mpsc::channel();
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("vj-osc-resolve".into())
                .spawn(move || resolver(weak, first_tx))
                .map_err(TargetError::Socket)?;
            let _ = first_rx.recv_timeout(FIRST_LOOKUP);
        }
        Ok(OscOut {
            shared,
            frame: Mutex::new(FrameBytes::new()),
        })
    }

    /// Marks every destination that is `local`, the worker's own receive socket (bound to
    /// `local`, or to the unspecified address and reached over loopback): nothing goes there.
    pub fn exclude_own(&self, local: SocketAddr) {
        for d in self.shared.all() {
            let Some(to) = lock(&d.reach).addr else {
                continue;
            };
            if to.port() == local.port()
                && (to.ip() == local.ip() || (local.ip().is_unspecified() && to.ip().is_loopback()))
            {
                d.own.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Every destination a message with this address goes to.
    fn destinations<'a>(
        &'a self,
        addr: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Destination>> + 'a {
        self.shared
            .groups()
            .filter(move |(prefix, _)| addr.starts_with(prefix))
            .flat_map(|(_, destinations)| destinations)
            .filter(|d| !d.own.load(Ordering::Relaxed))
    }

    fn send_bytes(&self, bytes: &[u8], d: &Destination) {
        let now = Instant::now();
        let mut reach = lock(&d.reach);
        let due = reach.retry_at.is_none_or(|t| now >= t);
        let result = match reach.addr {
            Some(addr) if due => match &reach.socket {
                Some(own) => own.send_to(bytes, addr),
                None => self
                    .shared
                    .unicast(addr)
                    .and_then(|s| s.send_to(bytes, addr)),
            },
            // Not resolved yet, or waiting for its retry time.
            _ => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        };
        match result {
            Ok(_) => {
                if reach.retry_at.take().is_some() {
                    info!(target = %d.text, "osc target reachable again");
                    reach.health = TargetHealth::Ok;
                    reach.error = None;
                    reach.backoff.reset();
                }
                d.sent.fetch_add(1, Ordering::Relaxed);
                self.shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // A full buffer: the next frame comes 11 ms later. No route, no interface, a
                // refused broadcast: that target waits for its retry, the others carry on.
                if e.kind() != io::ErrorKind::WouldBlock {
                    d.unreachable(&mut reach, &e, now);
                }
                d.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends one message as a plain packet to each destination (bundle targets included:
    /// a lone message needs no bundle).
    pub fn send(&self, msg: &OscMessage) {
        let Ok(bytes) = encoder::encode(&OscPacket::Message(msg.clone())) else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        for d in self.destinations(&msg.addr) {
            self.send_bytes(&bytes, d);
        }
    }

    /// Sends the messages of one analysis frame: plain messages to ordinary destinations, one
    /// timetagged bundle (of the messages meant for it) to each destination that asked for bundles.
    /// Each message is encoded once, and a bundle is put together once for all the destinations
    /// it is the same for (the debugger and the OSCQuery server both get every message).
    pub fn send_frame(&self, msgs: &[OscMessage]) {
        let mut frame = lock(&self.frame);
        frame.encode(msgs);
        for (i, msg) in msgs.iter().enumerate() {
            for d in self.destinations(&msg.addr).filter(|d| !d.bundle) {
                self.send_bytes(frame.message(i), d);
            }
        }
        let wants_bundles = |d: &Arc<Destination>| d.bundle && !d.own.load(Ordering::Relaxed);
        let mut timetag = None;
        for (prefix, destinations) in self.shared.groups() {
            if !destinations.iter().any(wants_bundles) {
                continue;
            }
            let timetag = *timetag.get_or_insert_with(|| {
                OscTime::try_from(std::time::SystemTime::now()).unwrap_or(OscTime {
                    seconds: 0,
                    fractional: 1,
                })
            });
            let wanted = msgs.iter().map(|m| m.addr.starts_with(prefix));
            if let Some(bytes) = frame.bundle(timetag, wanted) {
                for d in destinations.iter().filter(|d| wants_bundles(d)) {
                    self.send_bytes(bytes, d);
                }
            }
        }
    }

    pub fn stats(&self) -> SendStats {
        let now = Instant::now();
        let s = &self.shared;
        let mut targets: Vec<TargetState> = s.targets.iter().map(|d| d.state(None, now)).collect();
        for r in &s.routes {
            targets.extend(r.destinations.iter().map(|d| d.state(Some(&r.prefix), now)));
        }
        SendStats {
            packets_sent: s.sent.load(Ordering::Relaxed),
            packets_dropped: s.dropped.load(Ordering::Relaxed),
            targets,
        }
    }
}

impl Outputs {
    /// The unicast socket of `to`'s family.
    fn unicast(&self, to: SocketAddr) -> io::Result<&UdpSocket> {
        if to.is_ipv4() {
            return Ok(&self.socket);
        }
        let v6 = self.socket_v6.get_or_init(|| {
            let s = UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, 0))
                .and_then(|s| s.set_nonblocking(true).map(|()| s));
            s.map_err(|e| format!("cannot open an IPv6 socket: {e}"))
        });
        v6.as_ref()
            .map_err(|e| io::Error::new(io::ErrorKind::AddrNotAvailable, e.clone()))
    }

    /// The destinations by the addresses they take: the `[osc] targets` every message (every
    /// address begins with ""), each route's destinations those under its prefix.
    fn groups(&self) -> impl Iterator<Item = (&str, &[Arc<Destination>])> {
        std::iter::once(("", self.targets.as_slice())).chain(
            self.routes
                .iter()
                .map(|r| (r.prefix.as_str(), r.destinations.as_slice())),
        )
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Destination>> {
        self.groups().flat_map(|(_, destinations)| destinations)
    }
}

/// Looks host names up, off the senders' threads, until the output is dropped. `first` hears
/// when the first round is done.
fn resolver(shared: Weak<Outputs>, first: std::sync::mpsc::Sender<()>) {
    let mut first = Some(first);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let now = Instant::now();
        let due: Vec<Arc<Destination>> = s.all().filter(|d| d.lookup_due(now)).cloned().collect();
        drop(s);
        for d in due {
            d.lookup();
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OscRoute;
    use crate::osc::decode;
    use rosc::OscType;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s
    }

    /// Every datagram that arrives, as (was it a bundle, addresses inside).
    fn drain(s: &UdpSocket) -> Vec<(bool, Vec<String>)> {
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while let Ok(n) = s.recv(&mut buf) {
            let msgs = decode(&buf[..n]).unwrap();
            let bundle = buf.starts_with(b"#bundle");
            got.push((bundle, msgs.into_iter().map(|m| m.address).collect()));
        }
        got
    }

    fn msg(addr: &str) -> OscMessage {
        OscMessage {
            addr: addr.into(),
            args: vec![OscType::Int(1)],
        }
    }

    #[test]
    fn targets_routes_and_bundles_each_get_what_they_asked_for() {
        let (plain, bundled, karaoke) = (receiver(), receiver(), receiver());
        let addr = |s: &UdpSocket| s.local_addr().unwrap().to_string();
        let out = OscOut::new(&OscConfig {
            targets: vec![
                OscTarget::Plain(addr(&plain)),
                OscTarget::bundled(addr(&bundled)),
            ],
            routes: vec![OscRoute {
                prefix: "/karaoke/".into(),
                targets: vec![OscTarget::Plain(addr(&karaoke))],
            }],
        })
        .unwrap();

        out.send_frame(&[msg("/audio/levels"), msg("/audio/beat")]);
        out.send(&msg("/karaoke/pos"));

        let p = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            drain(&plain),
            [
                (false, p(&["/audio/levels"])),
                (false, p(&["/audio/beat"])),
                (false, p(&["/karaoke/pos"]))
            ]
        );
        assert_eq!(
            drain(&bundled),
            [
                (true, p(&["/audio/levels", "/audio/beat"])),
                (false, p(&["/karaoke/pos"]))
            ]
        );
        assert_eq!(drain(&karaoke), [(false, p(&["/karaoke/pos"]))]);
        assert_eq!(out.stats().packets_sent, 6);
    }

    /// Every datagram that arrives, as sent.
    fn datagrams(s: &UdpSocket) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 4096];
        std::iter::from_fn(|| s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())).collect()
    }

    #[test]
    fn frames_go_out_byte_for_byte_as_rosc_encodes_them() {
        let (plain, bundled, beats) = (receiver(), receiver(), receiver());
        let addr = |s: &UdpSocket| s.local_addr().unwrap().to_string();
        let bundle_to = |s: &UdpSocket| OscTarget::bundled(addr(s));
        let out = OscOut::new(&OscConfig {
            targets: vec![OscTarget::Plain(addr(&plain)), bundle_to(&bundled)],
            routes: vec![OscRoute {
                prefix: "/audio/b".into(),
                targets: vec![bundle_to(&beats)],
            }],
        })
        .unwrap();
        let m = |addr: &str, args: Vec<OscType>| OscMessage {
            addr: addr.into(),
            args,
        };
        // The second frame is shorter and says other things: nothing of the first may remain.
        let frames = [
            vec![
                m("/audio/levels", vec![OscType::Float(0.5); 8]),
                m("/audio/beat", vec![OscType::Int(1), OscType::Float(0.9)]),
                m("/audio/count", vec![OscType::Int(2), OscType::Int(1)]),
                m(
                    "/audio/bpm",
                    vec![OscType::Float(124.0), OscType::Float(0.8)],
                ),
            ],
            vec![
                m("/audio/beat", vec![OscType::Int(0), OscType::Float(0.1)]),
                m("/audio/levels", vec![OscType::Float(0.25); 3]),
                m(
                    "/audio/bpm",
                    vec![OscType::Float(123.5), OscType::Float(0.7)],
                ),
            ],
        ];
        for frame in &frames {
            out.send_frame(frame);
        }

        let encode = |p: OscPacket| encoder::encode(&p).unwrap();
        let expected: Vec<_> = frames
            .iter()
            .flatten()
            .map(|m| encode(OscPacket::Message(m.clone())))
            .collect();
        assert_eq!(datagrams(&plain), expected);
        // A bundle as rosc encodes it, with the timetag it was sent with.
        let as_rosc = |got: &[u8], msgs: Vec<&OscMessage>| {
            let (_, OscPacket::Bundle(b)) = rosc::decoder::decode_udp(got).unwrap() else {
                panic!("not a bundle")
            };
            let content = msgs.into_iter().cloned().map(OscPacket::Message);
            encode(OscPacket::Bundle(OscBundle {
                timetag: b.timetag,
                content: content.collect(),
            }))
        };
        let got = datagrams(&bundled);
        assert_eq!(got.len(), 2);
        for (got, frame) in got.iter().zip(&frames) {
            assert_eq!(got, &as_rosc(got, frame.iter().collect()));
        }
        let got = datagrams(&beats);
        assert_eq!(got.len(), 2);
        for (got, frame) in got.iter().zip(&frames) {
            let under = frame.iter().filter(|m| m.addr.starts_with("/audio/b"));
            assert_eq!(got, &as_rosc(got, under.collect()));
        }
    }

    #[test]
    fn a_worker_never_sends_to_its_own_receive_socket() {
        let (other, own) = (receiver(), receiver());
        let addr = |s: &UdpSocket| s.local_addr().unwrap().to_string();
        let out = OscOut::new(&OscConfig {
            targets: vec![OscTarget::Plain(addr(&other))],
            routes: vec![OscRoute {
                prefix: "/karaoke/".into(),
                targets: vec![OscTarget::Plain(addr(&own))],
            }],
        })
        .unwrap();
        out.exclude_own(own.local_addr().unwrap());
        out.send(&msg("/karaoke/lyrics/line"));
        assert_eq!(drain(&other).len(), 1);
        assert!(drain(&own).is_empty());
    }

    #[test]
    fn a_name_that_does_not_resolve_degrades_only_itself() {
        let (good, by_name) = (receiver(), receiver());
        let port = by_name.local_addr().unwrap().port();
        let out = OscOut::new(&OscConfig {
            targets: vec![
                OscTarget::plain("no-such-host.invalid:9000"),
                OscTarget::plain(good.local_addr().unwrap().to_string()),
                OscTarget::plain(format!("localhost:{port}")),
            ],
            routes: vec![],
        })
        .unwrap();
        out.send(&msg("/audio/bpm"));
        assert_eq!(drain(&good).len(), 1);
        assert_eq!(drain(&by_name).len(), 1, "localhost resolves");
        let stats = out.stats();
        let bad = &stats.targets[0];
        assert_eq!(bad.health, TargetHealth::Unresolved, "{stats:?}");
        assert!(
            bad.error
                .as_deref()
                .unwrap()
                .contains("no-such-host.invalid"),
            "{bad:?}"
        );
        assert!(bad.retry_in_ms.is_some());
        assert_eq!(stats.targets[2].health, TargetHealth::Ok);
        assert_eq!(
            stats.targets[2]
                .resolved
                .as_deref()
                .map(|r| r.ends_with(&format!(":{port}"))),
            Some(true)
        );
        assert_eq!(stats.failing(), 1);
        assert_eq!((bad.sent, bad.dropped), (0, 1));
    }

    #[test]
    fn a_group_gets_its_ttl_and_a_missing_interface_degrades_only_it() {
        let good = receiver();
        let out = OscOut::new(&OscConfig {
            targets: vec![
                OscTarget::Detailed {
                    addr: "239.255.71.1:9000".into(),
                    bundle: false,
                    ttl: Some(3),
                    interface: Some("127.0.0.1".into()),
                },
                OscTarget::Detailed {
                    addr: "239.255.71.2:9000".into(),
                    bundle: false,
                    ttl: None,
                    interface: Some("nosuchif0".into()),
                },
                OscTarget::plain(good.local_addr().unwrap().to_string()),
            ],
            routes: vec![],
        })
        .unwrap();
        let reach = lock(&out.shared.targets[0].reach);
        let socket = reach
            .socket
            .as_ref()
            .expect("a group has a socket of its own");
        assert_eq!(socket.multicast_ttl_v4().unwrap(), 3);
        drop(reach);
        out.send(&msg("/audio/beat"));
        assert_eq!(drain(&good).len(), 1);
        let stats = out.stats();
        assert_eq!(stats.targets[1].health, TargetHealth::Unreachable);
        assert!(
            stats.targets[1]
                .error
                .as_deref()
                .unwrap()
                .contains("nosuchif0"),
            "{stats:?}"
        );
        assert_eq!(stats.targets[2].health, TargetHealth::Ok);
    }

    #[test]
    fn ipv6_targets_receive_beside_ipv4_ones() {
        let v6 = UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
        v6.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let v4 = receiver();
        let port6 = v6.local_addr().unwrap().port();
        let out = OscOut::new(&OscConfig {
            targets: vec![
                OscTarget::plain(format!("[::1]:{port6}")),
                OscTarget::plain(v4.local_addr().unwrap().to_string()),
            ],
            routes: vec![],
        })
        .unwrap();
        out.send(&msg("/audio/bpm"));
        let stats = out.stats();
        assert_eq!(stats.targets[0].health, TargetHealth::Ok, "{stats:?}");
        assert_eq!(drain(&v4).len(), 1);
        assert_eq!(drain(&v6), [(false, vec!["/audio/bpm".to_string()])]);
        assert_eq!(stats.failing(), 0);
    }

    #[test]
    fn a_bad_target_is_named() {
        let err = OscOut::new(&OscConfig {
            targets: vec![OscTarget::Plain("not-an-address".into())],
            routes: vec![],
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"not-an-address\""), "{err}");
    }
}
