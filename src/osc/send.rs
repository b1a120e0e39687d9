//! Fans each message out to every `[osc] targets` entry plus the routes whose prefix matches.
//!
//! Sending is a non-blocking `send_to` on one UDP socket: a full socket buffer drops the packet
//! (and counts it) rather than stalling the caller, which may be the audio analysis thread.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime};
use serde::Serialize;

use crate::config::{OscConfig, OscTarget};

#[derive(Debug)]
struct Destination {
    addr: SocketAddr,
    /// Wants one bundle per frame instead of plain messages.
    bundle: bool,
    /// The worker's own receive socket: never sent to (the default `/karaoke/` route would
    /// otherwise pour the lyrics fetcher's own burst back into its input and crowd out the
    /// next track change). Set once, when the worker binds the socket.
    own: AtomicBool,
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
        own: AtomicBool::new(false),
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

    /// Marks every destination that is `local`, the worker's own receive socket (bound to
    /// `local`, or to the unspecified address and reached over loopback): nothing goes there.
    pub fn exclude_own(&self, local: SocketAddr) {
        let all = self
            .targets
            .iter()
            .chain(self.routes.iter().flat_map(|r| r.destinations.iter()));
        for d in all {
            let to = d.addr;
            if to.port() == local.port()
                && (to.ip() == local.ip() || (local.ip().is_unspecified() && to.ip().is_loopback()))
            {
                d.own.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Every destination a message with this address goes to.
    fn destinations<'a>(&'a self, addr: &'a str) -> impl Iterator<Item = &'a Destination> + 'a {
        self.targets
            .iter()
            .chain(
                self.routes
                    .iter()
                    .filter(move |r| addr.starts_with(&r.prefix))
                    .flat_map(|r| r.destinations.iter()),
            )
            .filter(|d| !d.own.load(Ordering::Relaxed))
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

    /// Sends the messages of one analysis frame: plain messages to ordinary destinations, one
    /// timetagged bundle (of the messages meant for it) to each destination that asked for bundles.
    pub fn send_frame(&self, msgs: &[OscMessage]) {
        let mut bundles: Vec<(SocketAddr, Vec<OscPacket>)> = Vec::new();
        for msg in msgs {
            let Ok(bytes) = encoder::encode(&OscPacket::Message(msg.clone())) else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            for d in self.destinations(&msg.addr) {
                if !d.bundle {
                    self.send_bytes(&bytes, d.addr);
                    continue;
                }
                let packet = OscPacket::Message(msg.clone());
                match bundles.iter_mut().find(|(to, _)| *to == d.addr) {
                    Some((_, content)) => content.push(packet),
                    None => bundles.push((d.addr, vec![packet])),
                }
            }
        }
        if bundles.is_empty() {
            return;
        }
        let timetag = OscTime::try_from(std::time::SystemTime::now()).unwrap_or(OscTime {
            seconds: 0,
            fractional: 1,
        });
        for (to, content) in bundles {
            match encoder::encode(&OscPacket::Bundle(OscBundle { timetag, content })) {
                Ok(bytes) => self.send_bytes(&bytes, to),
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
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
                OscTarget::Detailed {
                    addr: addr(&bundled),
                    bundle: true,
                },
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
    fn a_bad_target_is_named() {
        let err = OscOut::new(&OscConfig {
            targets: vec![OscTarget::Plain("not-an-address".into())],
            routes: vec![],
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"not-an-address\""), "{err}");
    }
}
