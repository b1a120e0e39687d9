//! `vj-status record`: every OSC message the suite sends, as the OSC debugger captures it, into
//! a show recording (`osc::recording`: zstd over SLIP-framed, timetagged bundles).
//!
//! The debugger's `subscribe` pushes what it captured every 20 ms; it keeps the last `capacity`
//! messages (1000 by default: 0.8 s of every /audio address), so a subscriber that stops reading
//! longer than that (plus what the socket buffers hold) loses messages, which the push counts as
//! `missed`. So the subscription is read on its own task and never waits for the disk or the
//! compressor: they run on a thread of their own behind a queue of a minute's pushes (bounded:
//! a disk that stalls for longer costs messages, not memory). Lost messages are still possible
//! (a recorder stopped with SIGSTOP, a stalled disk); they are said at once, marked in the file
//! (`/vj/recording/missed`) and counted in the summary.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rosc::{OscMessage, OscTime, OscType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::bus::client::{Client, ClientError};
use crate::config::{self, ConfigError};
use crate::osc::args_from_json;
use crate::osc::recording::{self, Entry, Header, Writer};
use crate::registry::{OSC_DEBUGGER, WORKERS};

/// Pushes the writer may fall behind by before messages are dropped (and marked as missed): a
/// minute of the suite's output at one push every PUSH_EVERY_MS (about 50 MB at 863 messages/s).
const BACKLOG_PUSHES: usize = 3000;
/// How often the debugger pushes to the recorder: well inside its ring's 0.8 s, and a push of
/// one frame's worth of messages at most every other frame.
const PUSH_EVERY_MS: u64 = 20;
/// The file is made readable up to now this often, so a recorder killed (or a machine that
/// loses power) loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Between attempts to subscribe again after losing the debugger.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    pub file: PathBuf,
    /// Only addresses starting with one of these; empty: every address.
    pub prefixes: Vec<String>,
    /// Stop after this long; `None`: until Ctrl-C (or SIGTERM).
    pub duration: Option<Duration>,
}

/// What a recording holds, told when it ends.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RecordSummary {
    pub file: PathBuf,
    pub messages: u64,
    pub bundles: u64,
    /// Messages the debugger lost before the recorder read them.
    pub missed: u64,
    pub seconds: f64,
    /// The file's size, and the SLIP stream's inside it.
    pub file_bytes: u64,
    pub slip_bytes: u64,
    /// Times the subscription was lost and made again (the debugger restarted).
    pub resubscribed: u32,
}

impl std::fmt::Display for RecordSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recorded {} messages ({} bundles) in {:.1} s into {}: {} bytes ({} uncompressed), \
             {} missed",
            self.messages,
            self.bundles,
            self.seconds,
            self.file.display(),
            self.file_bytes,
            self.slip_bytes,
            self.missed
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{} already exists: record into a new file (a recording is never overwritten)", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the suite's config cannot be read: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Debugger(String),
}

/// The header of a recording made now: this build's version, the prefixes, and the config in
/// effect — the config files over the defaults, with each worker's saved `set_config` changes.
pub fn header(prefixes: &[String]) -> Result<Header, ConfigError> {
    let (mut table, _) = config::suite(&crate::registry::owners())?;
    for w in WORKERS {
        if let Some(saved) = crate::worker::load_overrides(w.bus_name) {
            // A saved change that no longer fits is one the worker ignores too.
            let mut with = table.clone();
            if config::merge_section(&mut with, w.config_section, saved).is_ok() {
                table = with;
            }
        }
    }
    Ok(Header {
        suite: format!("vj-suite {}", env!("CARGO_PKG_VERSION")),
        prefixes: prefixes.to_vec(),
        config: toml::to_string(&table).unwrap_or_default(),
        started: recording::osc_time(SystemTime::now()),
    })
}

/// One message as a subscription pushes it.
#[derive(Debug, Deserialize)]
struct Pushed {
    time: f64,
    address: String,
    types: String,
    args: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct Push {
    messages: Vec<Pushed>,
    last_seq: u64,
    #[serde(default)]
    missed: u64,
}

/// A push turned into entries of the recording: messages that arrived at the same instant
/// (one datagram) share a bundle, in arrival order; what the debugger missed is marked before
/// them. Messages outside `prefixes` are left out; a message whose arguments cannot be rebuilt
/// (never one the suite sends) is counted in `unreadable`.
fn entries(push: &Push, prefixes: &[String], unreadable: &mut u64) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    if push.missed > 0 {
        let at = push.messages.first().map_or_else(
            || recording::osc_time(SystemTime::now()),
            |m| time_of(m.time),
        );
        out.push(missed_entry(at, push.missed));
    }
    for m in &push.messages {
        if !prefixes.is_empty() && !prefixes.iter().any(|p| m.address.starts_with(p.as_str())) {
            continue;
        }
        let Ok(args) = args_from_json(&m.types, &m.args) else {
            *unreadable += 1;
            continue;
        };
        let message = OscMessage {
            addr: m.address.clone(),
            args,
        };
        let time = time_of(m.time);
        match out.last_mut() {
            Some(e) if e.time == time && !e.is_note() => e.messages.push(message),
            _ => out.push(Entry {
                time,
                messages: vec![message],
            }),
        }
    }
    out
}

/// The file's mark that `n` messages were lost at `at`.
fn missed_entry(at: OscTime, n: u64) -> Entry {
    Entry {
        time: at,
        messages: vec![OscMessage {
            addr: recording::MISSED_ADDRESS.into(),
            args: vec![OscType::Int(i32::try_from(n).unwrap_or(i32::MAX))],
        }],
    }
}

/// The debugger's arrival time (seconds since 1970) as a timetag.
fn time_of(unix: f64) -> OscTime {
    let at = Duration::try_from_secs_f64(unix).map_or(SystemTime::now(), |d| UNIX_EPOCH + d);
    recording::osc_time(at)
}

/// Writes what arrives on `rx` until it closes, flushing every second; the file's size and the
/// SLIP bytes in it.
fn write_loop(
    file: File,
    header: &Header,
    rx: mpsc::Receiver<Vec<Entry>>,
) -> std::io::Result<(u64, u64)> {
    let mut w = Writer::new(file, header)?;
    let mut flushed = Instant::now();
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(batch) => {
                for e in batch {
                    w.write(e.time, e.messages)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if flushed.elapsed() >= FLUSH_EVERY {
            w.flush()?;
            flushed = Instant::now();
        }
    }
    let raw = w.raw_bytes();
    let file = w.finish()?;
    file.sync_all()?;
    Ok((file.metadata()?.len(), raw))
}

/// Subscribes to the debugger (after `since`, or from now), and says where it listens.
async fn subscribe(
    socket: &Path,
    prefixes: &[String],
    since: Option<u64>,
) -> Result<(Client, Option<String>), String> {
    let bus = OSC_DEBUGGER.bus_name;
    let mut client = Client::connect(socket).await.map_err(|e| {
        format!(
            "{bus} is not reachable ({e}); is vj-oscdebug.socket started? `vj-status start oscdebug`"
        )
    })?;
    let listen = match client.request("get_state", Map::new()).await {
        Ok(ack) => ack.data["listen"].as_str().map(str::to_string),
        Err(e) => return Err(format!("{bus} did not answer: {e}")),
    };
    // One prefix is the debugger's to filter; several are filtered here.
    let mut args = json!({ "every_ms": PUSH_EVERY_MS });
    if let [one] = prefixes {
        args["prefix"] = one.as_str().into();
    }
    if let Some(s) = since {
        args["since"] = s.into();
    }
    let ack = client
        .request("subscribe", args.as_object().cloned().unwrap_or_default())
        .await
        .map_err(|e| format!("{bus} did not answer subscribe: {e}"))?;
    if !ack.success {
        return Err(format!(
            "{bus} refused to subscribe: {}",
            ack.message.unwrap_or_default()
        ));
    }
    // Heartbeats come every 5 s; a push only when something was captured.
    client.timeout = Duration::from_secs(3600);
    Ok((client, listen))
}

/// Whether `[osc] targets` sends to the debugger at `listen` (a loopback or the same address).
fn targets_reach(targets: &[config::OscTarget], listen: &str) -> bool {
    let Ok(listen) = listen.parse::<std::net::SocketAddr>() else {
        return true;
    };
    targets.iter().any(|t| {
        let addr = t.addr();
        let Some((host, port)) = addr.rsplit_once(':') else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        port.parse() == Ok(listen.port())
            && (host == "localhost"
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                    ip == listen.ip()
                        || listen.ip().is_unspecified()
                        || (ip.is_loopback() && listen.ip().is_loopback())
                }))
    })
}

/// What the recording keeps between the subscription's pushes.
struct Recorder {
    tx: mpsc::SyncSender<Vec<Entry>>,
    /// Messages dropped because the writer is a minute behind, not yet marked in the file.
    dropped: u64,
    /// Messages whose arguments could not be rebuilt.
    unreadable: u64,
    /// The debugger's sequence number of the last push: where a new subscription goes on.
    cursor: Option<u64>,
    summary: RecordSummary,
}

impl Recorder {
    /// One push: its entries to the writer, or counted as missed while the writer is behind.
    /// False once the writer has stopped (its error is told by the caller).
    fn take(&mut self, data: Value, prefixes: &[String], note: &mut impl FnMut(String)) -> bool {
        let Ok(push) = serde_json::from_value::<Push>(data) else {
            return true;
        };
        self.cursor = Some(push.last_seq);
        if push.missed > 0 {
            self.summary.missed += push.missed;
            note(format!(
                "{} messages were lost before they were recorded (the debugger keeps \
                 [osc_debugger] capacity of them; raise it, or keep this process running freely)",
                push.missed
            ));
        }
        let mut batch = entries(&push, prefixes, &mut self.unreadable);
        if self.dropped > 0 {
            if let Some(at) = batch.first().map(|e| e.time) {
                batch.insert(0, missed_entry(at, self.dropped));
            }
        }
        let (bundles, messages) = batch
            .iter()
            .filter(|e| !e.is_note())
            .fold((0, 0), |(b, m), e| (b + 1, m + e.messages.len() as u64));
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.dropped = 0;
                self.summary.bundles += bundles;
                self.summary.messages += messages;
                true
            }
            Err(mpsc::TrySendError::Full(_)) => {
                if self.dropped == 0 {
                    note(format!(
                        "the file is written {} s behind: messages are dropped (and marked as \
                         missed) until the disk catches up",
                        BACKLOG_PUSHES as u64 * PUSH_EVERY_MS / 1000
                    ));
                }
                self.dropped += messages;
                self.summary.missed += messages;
                true
            }
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The recording's file, new (an existing one is never overwritten).
fn create(path: &Path) -> Result<File, RecordError> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => RecordError::Exists(path.to_path_buf()),
            _ => RecordError::Write {
                path: path.to_path_buf(),
                error: e,
            },
        })
}

/// Records until `stop` resolves or the plan's duration passes; `note` hears what a person
/// should know meanwhile (messages missed, the debugger lost and found again).
pub async fn record(
    plan: &RecordPlan,
    socket: &Path,
    header: Header,
    targets: &[config::OscTarget],
    stop: impl std::future::Future<Output = ()>,
    mut note: impl FnMut(String),
) -> Result<RecordSummary, RecordError> {
    let path = plan.file.clone();
    let write_err = |error| RecordError::Write {
        path: path.clone(),
        error,
    };
    let (client, listen) = subscribe(socket, &plan.prefixes, None)
        .await
        .map_err(RecordError::Debugger)?;
    if let Some(listen) = listen.filter(|l| !targets_reach(targets, l)) {
        note(format!(
            "the debugger listens on udp://{listen}, which is not among [osc] targets: the \
             recording holds only what is sent there"
        ));
    }
    let file = create(&plan.file)?;
    let until = plan.duration.map_or("Ctrl-C".to_string(), |d| {
        format!("{} s or Ctrl-C", d.as_secs_f64())
    });
    note(format!(
        "recording {} into {} until {until}",
        if plan.prefixes.is_empty() {
            "every address".to_string()
        } else {
            plan.prefixes.join(" ")
        },
        plan.file.display()
    ));
    let (tx, rx) = mpsc::sync_channel::<Vec<Entry>>(BACKLOG_PUSHES);
    let writer = std::thread::Builder::new()
        .name("vj-record-write".into())
        .spawn(move || write_loop(file, &header, rx))
        .map_err(write_err)?;

    let started = Instant::now();
    let mut r = Recorder {
        tx,
        dropped: 0,
        unreadable: 0,
        cursor: None,
        summary: RecordSummary {
            file: plan.file.clone(),
            ..RecordSummary::default()
        },
    };
    let mut client = Some(client);
    let deadline = async {
        match plan.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, deadline);
    'recording: loop {
        let mut c = match client.take() {
            Some(c) => c,
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT_EVERY) => {}
                    _ = &mut stop => break 'recording,
                    _ = &mut deadline => break 'recording,
                }
                match subscribe(socket, &plan.prefixes, r.cursor).await {
                    Ok((c, _)) => {
                        r.summary.resubscribed += 1;
                        note(format!("subscribed to {} again", OSC_DEBUGGER.bus_name));
                        c
                    }
                    Err(_) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                push = c.next_push() => match push {
                    Ok(Some(data)) => {
                        if !r.take(data, &plan.prefixes, &mut note) {
                            break 'recording;
                        }
                    }
                    Ok(None) => {
                        note(format!("{} restarted its capture; subscribing again", OSC_DEBUGGER.bus_name));
                        break;
                    }
                    Err(ClientError::Timeout(_)) => {}
                    Err(e) => {
                        note(format!("lost {} ({e}); subscribing again", OSC_DEBUGGER.bus_name));
                        break;
                    }
                },
                _ = &mut stop => break 'recording,
                _ = &mut deadline => break 'recording,
            }
        }
    }
    let Recorder {
        tx,
        unreadable,
        mut summary,
        ..
    } = r;
    summary.seconds = started.elapsed().as_secs_f64();
    drop(tx);
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| RecordError::Debugger(format!("the writer thread: {e}")))?
        .map_err(|_| RecordError::Debugger("the writer thread panicked".into()))?;
    let (file_bytes, slip_bytes) = written.map_err(write_err)?;
    summary.file_bytes = file_bytes;
    summary.slip_bytes = slip_bytes;
    if unreadable > 0 {
        note(format!(
            "{unreadable} messages were left out: their arguments could not be rebuilt"
        ));
    }
    Ok(summary)
}

/// A duration as people write it: `90s`, `10m`, `1h30m`, `2h`, or seconds (`45`, `2.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (10m, 90s, 1h30m)");
    let text = text.trim();
    if let Ok(s) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(s).map_err(|_| bad());
    }
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' if !number.is_empty() => {
                let n: f64 = number.parse().map_err(|_| bad())?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(time: f64, address: &str, types: &str, args: Value) -> Value {
        json!({"seq": 1, "time": time, "address": address, "types": types, "args": args})
    }

    fn push(messages: Vec<Value>, missed: u64) -> Push {
        serde_json::from_value(json!({"messages": messages, "last_seq": 9, "missed": missed}))
            .unwrap()
    }

    #[test]
    fn a_push_becomes_bundles_of_what_arrived_together() {
        let p = push(
            vec![
                pushed(
                    1_765_000_000.000_1,
                    "/audio/levels",
                    "ff",
                    json!([0.5, 0.25]),
                ),
                pushed(1_765_000_000.000_1, "/audio/beat", "if", json!([1, 0.75])),
                pushed(
                    1_765_000_000.011_7,
                    "/audio/levels",
                    "ff",
                    json!([0.5, 0.125]),
                ),
                pushed(1_765_000_000.011_9, "/karaoke/pos", "fi", json!([12.5, 1])),
            ],
            0,
        );
        let mut unreadable = 0;
        let got = entries(&p, &[], &mut unreadable);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].messages.len(), 2);
        assert_eq!(
            got[0].messages[1].args,
            [OscType::Int(1), OscType::Float(0.75)]
        );
        let gap = recording::offset(got[1].time, got[0].time).unwrap();
        assert!((gap.as_secs_f64() - 0.0116).abs() < 2e-6, "{gap:?}");
        // Two prefixes are filtered here.
        let only = entries(
            &p,
            &["/karaoke/".into(), "/audio/beat".into()],
            &mut unreadable,
        );
        let addrs: Vec<_> = only
            .iter()
            .flat_map(|e| &e.messages)
            .map(|m| m.addr.as_str())
            .collect();
        assert_eq!(addrs, ["/audio/beat", "/karaoke/pos"]);
        assert_eq!(unreadable, 0);
    }

    #[test]
    fn what_the_debugger_missed_is_marked_and_bad_arguments_counted() {
        let p = push(
            vec![
                pushed(1_765_000_000.5, "/a", "i", json!(["not an int"])),
                pushed(1_765_000_000.5, "/b", "i", json!([2])),
            ],
            40,
        );
        let mut unreadable = 0;
        let got = entries(&p, &[], &mut unreadable);
        assert_eq!(unreadable, 1);
        assert!(got[0].is_note());
        assert_eq!(got[0].messages[0].addr, recording::MISSED_ADDRESS);
        assert_eq!(got[0].messages[0].args, [OscType::Int(40)]);
        assert_eq!(got[1].messages[0].addr, "/b", "not merged into the note");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let d = |s: &str| parse_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(d("10m"), Ok(600.0));
        assert_eq!(d("1h30m"), Ok(5400.0));
        assert_eq!(d("90s"), Ok(90.0));
        assert_eq!(d("2.5"), Ok(2.5));
        for bad in ["", "m", "10x", "10m5", "-3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_debugger_is_reached_through_loopback_targets() {
        let t = |a: &str| config::OscTarget::plain(a);
        assert!(targets_reach(&[t("127.0.0.1:9001")], "127.0.0.1:9001"));
        assert!(targets_reach(&[t("localhost:9001")], "127.0.0.1:9001"));
        assert!(!targets_reach(&[t("127.0.0.1:9000")], "127.0.0.1:9001"));
        assert!(!targets_reach(&[], "127.0.0.1:9001"));
    }
}
