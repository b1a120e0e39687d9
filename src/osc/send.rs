//! Fans each message out to every `[osc] targets` entry plus the routes whose prefix matches.
//!
//! Sending is a non-blocking `send_to` on one UDP socket: a full socket buffer drops the packet
//! (and counts it) rather than stalling the caller, which may be the audio analysis thread.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime};
use serde::Serialize;

use crate::config::{OscConfig, OscTarget};

#[derive(Debug)]
struct Destination {
    addr: SocketAddr,
    /// Wants one bundle per frame instead of plain messages.
    bundle: bool,
}

#[derive(Debug)]
struct Route {
    prefix: String,
    destinations: Vec<Destination>,
}

/// Counters for `get_state` and heartbeats.
#[derive(Debug, Default, Serialize, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    pub packets_sent: u64,
    pub packets_dropped: u64,
}

/// The suite's OSC output: one socket, every target and route from the config.
#[derive(Debug)]
pub struct OscOut {
    socket: UdpSocket,
    targets: Vec<Destination>,
    routes: Vec<Route>,
    sent: AtomicU64,
    dropped: AtomicU64,
}

/// A target or route that does not name a reachable `host:port`.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("osc target {target:?} is not a host:port address: {source}")]
    Resolve { target: String, source: io::Error },
    #[error("osc target {0:?} resolves to no address")]
    Empty(String),
    #[error("cannot open a UDP socket for OSC output: {0}")]
    Socket(io::Error),
}

fn resolve(target: &OscTarget) -> Result<Destination, TargetError> {
    let text = target.addr();
    let addr = text
        .to_socket_addrs()
        .map_err(|source| TargetError::Resolve {
            target: text.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| TargetError::Empty(text.to_string()))?;
    Ok(Destination {
        addr,
        bundle: target.bundle(),
    })
}

impl OscOut {
    pub fn new(config: &OscConfig) -> Result<Self, TargetError> {
        let targets = config
            .targets
            .iter()
            .map(resolve)
            .collect::<Result<Vec<_>, _>>()?;
        let routes = config
            .routes
            .iter()
            .map(|r| {
                Ok(Route {
                    prefix: r.prefix.clone(),
                    destinations: r.targets.iter().map(resolve).collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, TargetError>>()?;
        let socket = UdpSocket::bind("0.0.0.0:0").map_err(TargetError::Socket)?;
        socket.set_nonblocking(true).map_err(TargetError::Socket)?;
        Ok(OscOut {
            socket,
            targets,
            routes,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Every destination a message with this address goes to.
    fn destinations<'a>(&'a self, addr: &'a str) -> impl Iterator<Item = &'a Destination> + 'a {
        self.targets.iter().chain(
            self.routes
                .iter()
                .filter(move |r| addr.starts_with(&r.prefix))
                .flat_map(|r| r.destinations.iter()),
        )
    }

    fn send_bytes(&self, bytes: &[u8], to: SocketAddr) {
        match self.socket.send_to(bytes, to) {
            Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
            // Nobody listening (ICMP refused), a full buffer, or an unroutable target: the
            // next frame comes 11 ms later, so count it and move on.
            Err(_) => self.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Sends one message as a plain packet to each destination (bundle targets included:
    /// a lone message needs no bundle).
    pub fn send(&self, msg: &OscMessage) {
        let Ok(bytes) = encoder::encode(&OscPacket::Message(msg.clone())) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        for d in self.destinations(&msg.addr) {
            self.send_bytes(&bytes, d.addr);
        }
    }

    /// Sends the messages of one analysis frame: plain messages to ordinary targets, one
    /// timetagged bundle to targets that asked for bundles.
    pub fn send_frame(&self, msgs: &[OscMessage]) {
        for msg in msgs {
            let Ok(bytes) = encoder::encode(&OscPacket::Message(msg.clone())) else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            for d in self.destinations(&msg.addr).filter(|d| !d.bundle) {
                self.send_bytes(&bytes, d.addr);
            }
        }
        let bundle_targets: Vec<SocketAddr> = self
            .targets
            .iter()
            .filter(|d| d.bundle)
            .map(|d| d.addr)
            .collect();
        if bundle_targets.is_empty() {
            return;
        }
        let time = OscTime::try_from(std::time::SystemTime::now()).unwrap_or(OscTime {
            seconds: 0,
            fractional: 1,
        });
        let bundle = OscPacket::Bundle(OscBundle {
            timetag: time,
            content: msgs.iter().cloned().map(OscPacket::Message).collect(),
        });
        if let Ok(bytes) = encoder::encode(&bundle) {
            for to in bundle_targets {
                self.send_bytes(&bytes, to);
            }
        }
    }

    pub fn stats(&self) -> SendStats {
        SendStats {
            packets_sent: self.sent.load(Ordering::Relaxed),
            packets_dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
