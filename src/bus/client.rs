//! A control-plane client: `vj-status` and the tests talk to workers through it.

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::frame;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("connection to the worker failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the worker closed the connection")]
    Closed,
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the worker sent a bad frame: {0}")]
    Protocol(String),
    #[error("the worker refused the request: {0}")]
    Refused(String),
}

/// A reply to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub success: bool,
    pub message: Option<String>,
    pub data: Value,
}

pub struct Client {
    stream: UnixStream,
    buf: BytesMut,
    next_id: u64,
    pub timeout: Duration,
}

/// One command on a connection of its own, the whole exchange (connecting included) within
/// `within`.
pub async fn ask(
    path: &Path,
    cmd: &str,
    args: Map<String, Value>,
    within: Duration,
) -> Result<Ack, ClientError> {
    let once = async {
        let mut c = Client::connect(path).await?;
        c.timeout = within;
        c.request(cmd, args).await
    };
    tokio::time::timeout(within, once)
        .await
        .unwrap_or(Err(ClientError::Timeout(within)))
}

impl Client {
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Client {
            stream,
            buf: BytesMut::with_capacity(4096),
            next_id: 1,
            timeout: Duration::from_secs(10),
        })
    }

    /// Sends a frame with this body as it is (tests use it to send bad input).
    pub async fn send_raw(&mut self, body: &[u8]) -> Result<(), ClientError> {
        let mut out = BytesMut::new();
        frame::encode(body, &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next message the worker sends, heartbeats included.
    pub async fn next_message(&mut self) -> Result<Value, ClientError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.read_one())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn read_one(&mut self) -> Result<Value, ClientError> {
        loop {
            if let Some(body) =
                frame::parse(&mut self.buf).map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return serde_json::from_slice(&body)
                    .map_err(|e| ClientError::Protocol(format!("invalid JSON: {e}")));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next value of a subscription this connection made (its ack came from
    /// [`Client::request`]); `None` once the worker ended it. Heartbeats are skipped.
    pub async fn next_push(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            let mut msg = self.next_message().await?;
            if msg.get("type").and_then(Value::as_str) != Some("push") {
                continue;
            }
            if msg.get("done").and_then(Value::as_bool) == Some(true) {
                return Ok(None);
            }
            return Ok(Some(
                msg.get_mut("data").map(Value::take).unwrap_or_default(),
            ));
        }
    }

    /// Sends a command and waits for its ack, skipping heartbeats and replies to other ids.
    pub async fn request(
        &mut self,
        cmd: &str,
        args: Map<String, Value>,
    ) -> Result<Ack, ClientError> {
        let id = self.next_id.to_string();
        self.next_id += 1;
        let mut body = args;
        body.insert("type".into(), "command".into());
        body.insert("cmd".into(), cmd.into());
        body.insert("msg_id".into(), Value::String(id.clone()));
        self.send_raw(&serde_json::to_vec(&body).expect("a JSON map serializes"))
            .await?;
        loop {
            let msg = self.next_message().await?;
            if msg.get("msg_id").and_then(Value::as_str) != Some(id.as_str()) {
                continue;
            }
            return match msg.get("type").and_then(Value::as_str) {
                Some("ack") => Ok(Ack {
                    success: msg.get("success").and_then(Value::as_bool).unwrap_or(false),
                    message: msg
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    data: msg.get("data").cloned().unwrap_or(Value::Null),
                }),
                Some("error") => Err(ClientError::Refused(
                    msg.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )),
                _ => Err(ClientError::Protocol(format!("unexpected reply: {msg}"))),
            };
        }
    }
}
