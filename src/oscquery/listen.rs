//! The OSCQuery `LISTEN` extension: a WebSocket on the HTTP port. The client sends text
//! `{"COMMAND":"LISTEN","DATA":"/audio/bpm"}` (or `IGNORE`), and gets every value of the paths it
//! listens to as a binary frame holding the OSC packet, as the suite sent it — without being
//! added to `[osc] targets`.
//!
//! Bounded: messages and frames at most [`MAX_MESSAGE`] (tungstenite refuses a larger one from
//! its header, before reading it), `LISTEN` only for addresses of the namespace, a client that
//! answers no ping for [`DEAD`] or takes longer than [`SEND_TIMEOUT`] to take a value is closed.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::Served;
use crate::service::lock;

/// The largest WebSocket message or frame read (a client only sends short JSON commands).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// A ping goes out this often…
pub const PING: Duration = Duration::from_secs(5);
/// …and a client from which nothing (not even a pong) came for this long is gone.
pub const DEAD: Duration = Duration::from_secs(15);
/// A client that cannot take one value in this long is too slow to keep.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// One value the suite sent: its address and the OSC packet.
#[derive(Debug)]
pub struct Update {
    pub path: String,
    pub packet: Vec<u8>,
}

/// A client's command, OSCQuery's shape.
#[derive(Debug, Deserialize, PartialEq)]
pub struct ClientCommand {
    #[serde(rename = "COMMAND")]
    pub command: String,
    #[serde(rename = "DATA", default)]
    pub data: serde_json::Value,
}

/// The limits every session runs with.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(4 * MAX_MESSAGE)
}

/// Applies one text message to the paths a client listens to.
fn apply(shared: &Served, paths: &mut HashSet<String>, text: &str) {
    let c = match serde_json::from_str::<ClientCommand>(text) {
        Ok(c) => c,
        Err(e) => {
            debug!(error = %e, "a WebSocket text that is no OSCQuery command");
            return;
        }
    };
    let path = c.data.as_str().unwrap_or_default();
    match c.command.as_str() {
        // Only what the namespace has: a client cannot make the server keep names for it.
        "LISTEN" if lock(&shared.namespace).has_address(path) => {
            paths.insert(path.to_string());
        }
        "LISTEN" => debug!(path, "LISTEN for an address the namespace does not have"),
        "IGNORE" => {
            paths.remove(path);
        }
        other => debug!(command = other, "unknown OSCQuery command"),
    }
}

/// Serves one upgraded WebSocket client until it closes, goes quiet, or a write fails.
pub async fn session<S>(stream: S, shared: Arc<Served>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config())).await;
    let mut stop = shared.stop.clone();
    let mut updates = shared.updates.subscribe();
    let mut paths: HashSet<String> = HashSet::new();
    let mut ping = tokio::time::interval(PING);
    let mut heard = Instant::now();
    shared.counters.ws_clients.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            incoming = ws.next() => {
                heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => apply(&shared, &mut paths, text.as_str()),
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        shared.counters.ws_refused.fetch_add(1, Ordering::Relaxed);
                        debug!(error = %e, "WebSocket closed");
                        break;
                    }
                    Some(Ok(_)) => {}
                }
            }
            update = updates.recv() => {
                // This value and whatever else is already queued (up to BATCH) go out in one
                // write: one flush and one timer per batch, not per value.
                let mut batch = Vec::new();
                let mut next = Some(update.map_err(Missed::from));
                while let Some(u) = next.take() {
                    match u {
                        Ok(u) if paths.contains(&u.path) => batch.push(u),
                        Ok(_) => {}
                        // A client too slow for the stream skips what it missed.
                        Err(Missed::Lagged(n)) => {
                            shared.counters.ws_lagged.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(Missed::Closed) => return end(ws, &shared).await,
                        Err(Missed::Empty) => break,
                    }
                    if batch.len() < BATCH {
                        next = Some(updates.try_recv().map_err(Missed::from));
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let n = batch.len() as u64;
                let sent = tokio::time::timeout(SEND_TIMEOUT, async {
                    for u in batch {
                        ws.feed(Message::binary(u.packet.clone())).await?;
                    }
                    ws.flush().await
                })
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
                shared.counters.ws_sent.fetch_add(n, Ordering::Relaxed);
            }
            _ = ping.tick() => {
                if heard.elapsed() >= DEAD {
                    shared.counters.ws_dead.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                let sent = tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            _ = stop.wait() => break,
        }
    }
    end(ws, &shared).await;
}

/// Closes a session's WebSocket (briefly: a dead client gets no more time).
async fn end<S>(mut ws: WebSocketStream<S>, shared: &Served)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
    shared.counters.ws_clients.fetch_sub(1, Ordering::Relaxed);
}

/// Values sent in one write at most.
const BATCH: usize = 64;

/// Why no value came off the stream.
enum Missed {
    Lagged(u64),
    Closed,
    Empty,
}

impl From<broadcast::error::RecvError> for Missed {
    fn from(e: broadcast::error::RecvError) -> Missed {
        match e {
            broadcast::error::RecvError::Lagged(n) => Missed::Lagged(n),
            broadcast::error::RecvError::Closed => Missed::Closed,
        }
    }
}

impl From<broadcast::error::TryRecvError> for Missed {
    fn from(e: broadcast::error::TryRecvError) -> Missed {
        match e {
            broadcast::error::TryRecvError::Lagged(n) => Missed::Lagged(n),
            broadcast::error::TryRecvError::Closed => Missed::Closed,
            broadcast::error::TryRecvError::Empty => Missed::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_oscquerys_shape() {
        let c: ClientCommand =
            serde_json::from_str(r#"{"COMMAND":"LISTEN","DATA":"/audio/bpm"}"#).unwrap();
        assert_eq!(c.command, "LISTEN");
        assert_eq!(c.data, "/audio/bpm");
    }
}
