//! Accepts control connections and runs each: frames in, replies out, a heartbeat every 5 s.
//!
//! Each request runs as its own task, so a slow command (a lyrics fetch) never holds up a
//! `get_state` behind it on the same connection; replies are matched by `msg_id`. A
//! subscription's task goes on after its ack, pushing its values one written frame at a time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

use super::frame::{self, FrameError};
use super::message::{self, Command, Outcome, Pushes};
use crate::service::stop::Stop;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// More than any operator needs; bounds memory if a client leaks connections.
pub const MAX_CONNECTIONS: usize = 256;

pub type Reply = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What the server asks of the worker runtime.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, cmd: Command) -> Reply;
    /// The body of the next heartbeat.
    fn heartbeat(&self) -> Vec<u8>;
}

/// Serves `listener` until `stop`.
pub async fn serve<H: Handler>(listener: UnixListener, handler: Arc<H>, mut stop: Stop) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let own_uid = rustix::process::geteuid().as_raw();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = stop.wait() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(error = %e, "accepting a control connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == own_uid => {}
            Ok(cred) => {
                let (uid, pid) = (cred.uid(), cred.pid());
                warn!(
                    peer_uid = uid,
                    peer_pid = pid,
                    "refused a control connection from uid {uid} (pid {}): only the worker's own user may connect",
                    pid.map_or("unknown".to_string(), |p| p.to_string())
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "refused a control connection: cannot read its credentials ({e})");
                continue;
            }
        }
        let handler = handler.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(stream, handler, stop).await;
            drop(permit);
        });
    }
}

/// A frame for the writer, and who waits to hear it was written (a subscription).
struct Outgoing {
    body: Vec<u8>,
    written: Option<oneshot::Sender<()>>,
}

impl From<Vec<u8>> for Outgoing {
    fn from(body: Vec<u8>) -> Outgoing {
        Outgoing {
            body,
            written: None,
        }
    }
}

type Replies = mpsc::UnboundedSender<Outgoing>;

/// Sends a subscription's values after its ack, each once the one before is on the socket,
/// until the subscription ends (then a last `done` push) or the connection closes.
async fn push_subscription(
    Pushes(mut pushes): Pushes,
    msg_id: Value,
    tx: Replies,
    mut closed: Stop,
) {
    loop {
        let next = tokio::select! {
            next = pushes.recv() => next,
            _ = closed.wait() => return,
        };
        let Some(data) = next else {
            let _ = tx.send(message::push_json(None, &msg_id).into());
            return;
        };
        let (written, on_socket) = oneshot::channel();
        let frame = Outgoing {
            body: message::push_json(Some(&data), &msg_id),
            written: Some(written),
        };
        if tx.send(frame).is_err() {
            return;
        }
        tokio::select! {
            w = on_socket => if w.is_err() { return },
            _ = closed.wait() => return,
        }
    }
}

async fn connection<H: Handler>(stream: UnixStream, handler: Arc<H>, mut stop: Stop) {
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
    // Told when this connection ends, so its subscriptions end too.
    let (closing, closed) = Stop::channel();
    let writing = tokio::spawn(write_replies(writer, rx));
    let mut buf = BytesMut::with_capacity(4096);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + HEARTBEAT_EVERY,
        HEARTBEAT_EVERY,
    );
    'conn: loop {
        // Everything already buffered first, then wait for more.
        loop {
            match frame::parse(&mut buf) {
                Ok(Some(body)) => match Command::parse(&body) {
                    Ok(cmd) => {
                        let tx = tx.clone();
                        let closed = closed.clone();
                        let msg_id = cmd.msg_id.clone();
                        let reply = handler.clone().handle(cmd);
                        tokio::spawn(async move {
                            let mut outcome = reply.await;
                            let pushes = outcome.pushes.take();
                            let _ = tx.send(message::ack_json(&outcome, &msg_id).into());
                            if let Some(pushes) = pushes {
                                push_subscription(pushes, msg_id, tx, closed).await;
                            }
                        });
                    }
                    Err(bad) => {
                        debug!(error = %bad.error, "bad request");
                        let _ = tx.send(message::error_json(&bad.error, &bad.msg_id).into());
                    }
                },
                Ok(None) => break,
                Err(e @ FrameError::Empty) => {
                    let _ = tx.send(message::error_json(&e.to_string(), &Value::Null).into());
                }
                Err(e @ FrameError::TooLarge(_)) => {
                    // The rest of the stream cannot be framed: say why, then hang up.
                    let _ = tx.send(message::error_json(&e.to_string(), &Value::Null).into());
                    break 'conn;
                }
            }
        }
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = heartbeat.tick() => {
                let _ = tx.send(handler.heartbeat().into());
            }
            _ = stop.wait() => break,
        }
    }
    drop(closing);
    drop(tx);
    // Replies still running hold senders; the writer ends when the last one is done.
    let _ = writing.await;
}

async fn write_replies(
    writer: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut out = BufWriter::new(writer);
    let mut framed = BytesMut::new();
    let mut written = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Batch whatever else is ready into the same write.
        while let Some(o) = next.take().or_else(|| rx.try_recv().ok()) {
            framed.clear();
            frame::encode(&o.body, &mut framed);
            if out.write_all(&framed).await.is_err() {
                return;
            }
            written.extend(o.written);
        }
        if out.flush().await.is_err() {
            return;
        }
        for w in written.drain(..) {
            let _ = w.send(());
        }
    }
    let _ = out.shutdown().await;
}
