//! The OSCQuery transport: HTTP/1.1 on hyper and the `LISTEN` WebSocket through
//! tokio-tungstenite, on one port, with the limits a hostile neighbour meets — a header read
//! timeout, at most [`MAX_CONNECTIONS`] connections where a new one evicts the longest idle
//! (so idle sockets a web page opens never lock a real client out), idle ones closed after
//! [`IDLE`], at most [`MAX_WEBSOCKETS`] WebSockets, `Host`/`Origin` checked by [`Gate`].
//! The worker's run loop only sees values; this task answers requests from the namespace.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tracing::{debug, warn};

use super::gate::{Gate, Refused};
use super::http::{self, Query};
use super::listen;
use super::Served;
use crate::service::lock;
use crate::service::stop::Stop;

/// HTTP connections and WebSockets open at once. At the cap a new connection evicts the one
/// idle the longest; only when every one is busy is it refused.
pub const MAX_CONNECTIONS: usize = 64;
/// WebSockets open at once (they count towards [`MAX_CONNECTIONS`] only until upgraded).
pub const MAX_WEBSOCKETS: usize = 32;
/// A connection with no request in flight is closed after this (also one that never sends).
pub const IDLE: Duration = Duration::from_secs(10);
/// A request head must arrive within this.
pub const HEADER_READ: Duration = Duration::from_secs(5);
/// The largest request head read (hyper's buffer; its minimum is 8 KiB).
pub const MAX_HEAD: usize = 16 * 1024;

/// One open HTTP connection: idle since when (`None` while a request is served), and how to
/// close it.
struct Slot {
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

/// The open connections, for eviction and the idle reaper.
#[derive(Default)]
pub struct Connections {
    next: u64,
    slots: HashMap<u64, Slot>,
}

impl Connections {
    /// Admits a connection: its id and close signal, after evicting the longest-idle one at
    /// the cap; `None` when all are busy.
    fn admit(&mut self, now: Instant) -> Option<(u64, Arc<Notify>)> {
        if self.slots.len() >= MAX_CONNECTIONS {
            let oldest = self
                .slots
                .iter()
                .filter_map(|(id, s)| s.idle_since.map(|t| (t, *id)))
                .min()?;
            if let Some(s) = self.slots.remove(&oldest.1) {
                s.close.notify_one();
            }
        }
        self.next += 1;
        let close = Arc::new(Notify::new());
        self.slots.insert(
            self.next,
            Slot {
                idle_since: Some(now),
                close: close.clone(),
            },
        );
        Some((self.next, close))
    }

    fn set_idle(&mut self, id: u64, since: Option<Instant>) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.idle_since = since;
        }
    }

    fn remove(&mut self, id: u64) {
        self.slots.remove(&id);
    }

    /// Closes every connection idle longer than `idle`; how many.
    fn reap(&mut self, now: Instant, idle: Duration) -> usize {
        let old: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.idle_since.is_some_and(|t| now.duration_since(t) >= idle))
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            if let Some(s) = self.slots.remove(id) {
                s.close.notify_one();
            }
        }
        old.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What every connection shares.
pub struct Site {
    pub shared: Arc<Served>,
    pub gate: Gate,
    pub connections: Mutex<Connections>,
    pub websockets: Arc<Semaphore>,
}

type Body = Full<Bytes>;

fn reply(status: u16, body: Option<&serde_json::Value>, cors: Option<&str>) -> Response<Body> {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if body.is_some() {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(origin) = cors.and_then(|o| HeaderValue::from_str(o).ok()) {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

fn refusal(r: &Refused) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{}\n", r.reason))));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Does the request ask for a WebSocket (RFC 6455 section 4.2.1)?
fn wants_websocket(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Answers one request.
async fn handle(
    site: Arc<Site>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let shared = &site.shared;
    shared
        .counters
        .http_requests
        .fetch_add(1, Ordering::Relaxed);
    let host = header_str(&req, header::HOST)
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let cors = match site
        .gate
        .check(host.as_deref(), header_str(&req, header::ORIGIN))
    {
        Ok(cors) => cors,
        Err(refused) => {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            if shared.refused.count(peer.ip()) {
                warn!(source = %peer.ip(), status = refused.status, "OSCQuery request refused: {} (logged once per source)", refused.reason);
            }
            return Ok(refusal(&refused));
        }
    };
    if wants_websocket(&req) {
        return Ok(upgrade(&site, &mut req));
    }
    let method = req.method().as_str();
    if method == "OPTIONS" {
        // A CORS preflight from an allowed origin (others were refused above).
        let mut r = reply(204, None, cors.as_deref());
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD"),
        );
        return Ok(r);
    }
    let path = percent_decode_str(req.uri().path()).decode_utf8();
    let query = req
        .uri()
        .query()
        .map(|q| percent_decode_str(q).decode_utf8());
    let answer = match (path, query.transpose()) {
        (Ok(path), Ok(query)) => {
            let q = Query {
                method,
                path: &path,
                query: query.as_deref(),
            };
            http::answer(&q, &lock(&shared.namespace), &shared.host_info)
        }
        _ => http::Response::error(
            400,
            format!("{}: not UTF-8 after percent-decoding", req.uri()),
        ),
    };
    let mut r = reply(answer.status, answer.body.as_ref(), cors.as_deref());
    if method != "GET" && method != "HEAD" {
        // A body is not read: the connection is not reused after it.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(r)
}

/// The `101 Switching Protocols` answer; the session starts once hyper hands the stream over.
fn upgrade(site: &Arc<Site>, req: &mut Request<Incoming>) -> Response<Body> {
    let version_ok = header_str(req, header::SEC_WEBSOCKET_VERSION) == Some("13");
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| version_ok && req.method() == hyper::Method::GET)
        .cloned()
    else {
        let mut r = reply(
            400,
            Some(
                &serde_json::json!({"error": "a WebSocket needs GET, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key"}),
            ),
            None,
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    };
    let Ok(permit) = site.websockets.clone().try_acquire_owned() else {
        return reply(
            503,
            Some(
                &serde_json::json!({"error": format!("{MAX_WEBSOCKETS} WebSocket clients already listen")}),
            ),
            None,
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    let shared = site.shared.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => listen::session(TokioIo::new(upgraded), shared).await,
            Err(e) => debug!(error = %e, "WebSocket upgrade failed"),
        }
        drop(permit);
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Serves one connection until it closes, idles out, is evicted, or the stop.
async fn connection(
    site: Arc<Site>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    close: Arc<Notify>,
    mut stop: Stop,
) {
    let _ = stream.set_nodelay(true);
    let service_site = site.clone();
    let service = hyper::service::service_fn(move |req| {
        let site = service_site.clone();
        async move {
            lock(&site.connections).set_idle(id, None);
            let r = handle(site.clone(), peer, req).await;
            lock(&site.connections).set_idle(id, Some(Instant::now()));
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .max_buf_size(MAX_HEAD);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { debug!(error = %e, "HTTP connection") },
        // Evicted for a newer connection, or idle too long: dropped, the socket closes.
        _ = close.notified() => {}
        _ = stop.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_millis(500), conn).await;
        }
    }
    lock(&site.connections).remove(id);
}

/// Accepts connections until the stop.
pub async fn serve(listener: TcpListener, site: Arc<Site>, mut stop: Stop) {
    let mut reap = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admitted = lock(&site.connections).admit(Instant::now());
                    match admitted {
                        Some((id, close)) => {
                            tokio::spawn(connection(site.clone(), stream, peer, id, close, stop.clone()));
                        }
                        None => {
                            site.shared.counters.http_turned_away.fetch_add(1, Ordering::Relaxed);
                            debug!("{MAX_CONNECTIONS} connections busy; one turned away");
                        }
                    }
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    debug!(error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = reap.tick() => {
                let n = lock(&site.connections).reap(Instant::now(), IDLE);
                site.shared.counters.http_idle_closed.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ = stop.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let mut c = Connections::default();
        let t0 = Instant::now();
        let mut ids = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let (id, _) = c.admit(t0 + Duration::from_millis(i as u64)).unwrap();
            ids.push(id);
        }
        c.set_idle(ids[0], None);
        let (_, first_close) = (ids[1], c.slots[&ids[1]].close.clone());
        let later = t0 + Duration::from_secs(1);
        assert!(c.admit(later).is_some(), "a new connection gets in");
        assert_eq!(c.len(), MAX_CONNECTIONS);
        assert!(!c.slots.contains_key(&ids[1]), "the longest idle went");
        assert!(c.slots.contains_key(&ids[0]), "a busy one stays");
        // The evicted one was told (a stored permit wakes its next wait at once).
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let notified = std::pin::pin!(first_close.notified());
        assert!(std::future::Future::poll(notified, &mut cx).is_ready());
        for id in c.slots.keys().copied().collect::<Vec<_>>() {
            c.set_idle(id, None);
        }
        assert!(c.admit(later).is_none(), "all busy: turned away");
    }

    #[test]
    fn idle_connections_are_reaped_and_busy_ones_kept() {
        let mut c = Connections::default();
        let t0 = Instant::now();
        let (a, _) = c.admit(t0).unwrap();
        let (b, _) = c.admit(t0).unwrap();
        c.set_idle(b, None);
        assert_eq!(c.reap(t0 + IDLE / 2, IDLE), 0);
        assert_eq!(c.reap(t0 + IDLE, IDLE), 1);
        assert!(!c.slots.contains_key(&a) && c.slots.contains_key(&b));
    }
}
