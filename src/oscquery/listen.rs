//! The OSCQuery `LISTEN` extension: a WebSocket on the HTTP port. The client sends text
//! `{"COMMAND":"LISTEN","DATA":"/audio/bpm"}` (or `IGNORE`), and gets every value of the paths it
//! listens to as a binary frame holding the OSC packet, as the suite sent it — without being
//! added to `[osc] targets`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::Shared;
use crate::service::stop::Stop;

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

/// The `101 Switching Protocols` answer to a WebSocket key.
pub fn accept_response(key: &str) -> Vec<u8> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Serves one WebSocket client until it closes, the stop, or a write fails.
pub async fn session(stream: TcpStream, shared: Arc<Shared>, mut stop: Stop) {
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let mut updates = shared.updates.subscribe();
    let mut paths: HashSet<String> = HashSet::new();
    shared.counters.ws_clients.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<ClientCommand>(text.as_str()) {
                        Ok(c) => {
                            let path = c.data.as_str().unwrap_or_default().to_string();
                            match c.command.as_str() {
                                "LISTEN" => { paths.insert(path); }
                                "IGNORE" => { paths.remove(&path); }
                                other => debug!(command = other, "unknown OSCQuery command"),
                            }
                        }
                        Err(e) => debug!(error = %e, "a WebSocket text that is no OSCQuery command"),
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            update = updates.recv() => match update {
                Ok(u) if paths.contains(&u.path) => {
                    if ws.send(Message::binary(u.packet.clone())).await.is_err() {
                        break;
                    }
                    shared.counters.ws_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                // A client too slow for the stream skips what it missed.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    shared.counters.ws_lagged.fetch_add(n, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = stop.wait() => break,
        }
    }
    let _ = ws.close(None).await;
    shared.counters.ws_clients.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455 section 1.3.
        let r = String::from_utf8(accept_response("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(
            r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{r}"
        );
    }

    #[test]
    fn commands_have_oscquerys_shape() {
        let c: ClientCommand =
            serde_json::from_str(r#"{"COMMAND":"LISTEN","DATA":"/audio/bpm"}"#).unwrap();
        assert_eq!(c.command, "LISTEN");
        assert_eq!(c.data, "/audio/bpm");
    }
}
