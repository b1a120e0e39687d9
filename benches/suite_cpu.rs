//! The suite's CPU while it analyses: vj-audio on its demo loop sending to a visuals listener,
//! the OSC debugger and the OSCQuery server — the three that cost anything while music plays
//! (docs/BENCHMARKS.md). Two configs side by side in one run, alternating: the suite's own two
//! targets (debugger, OSCQuery) getting plain messages, one datagram each, or one bundle per
//! analysis frame (`bundle = true`, the default since 2026-12-07). The visuals target gets plain
//! messages in both. Binaries from `VJ_BIN_DIR` (default target/release), started by hand on
//! free loopback ports. Prints a `report:` block; nothing is asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Settling after the start (the demo loop is synthesised, caches warm).
const WARM: Duration = Duration::from_secs(6);
/// Measured per config and round.
const MEASURE: Duration = Duration::from_secs(20);
const ROUNDS: usize = 2;
const WORKERS: [&str; 3] = ["vj-audio", "vj-oscdebug", "vj-oscquery"];

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Suite {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Suite {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(bins: &std::path::Path, visuals: u16, bundled: bool) -> Suite {
    let dir = tempfile::tempdir().unwrap();
    let (debugger, oscquery, http) = (free_udp(), free_udp(), free_tcp());
    std::fs::write(
        dir.path().join("vj.toml"),
        format!(
            "[osc]\ntargets = [\"127.0.0.1:{visuals}\", \
             {{ addr = \"127.0.0.1:{debugger}\", bundle = {bundled} }}, \
             {{ addr = \"127.0.0.1:{oscquery}\", bundle = {bundled} }}]\nroutes = []\n\
             [audio]\nsource = \"demo\"\n\
             [osc_debugger]\nlisten = \"127.0.0.1:{debugger}\"\n\
             [oscquery]\nlisten = \"127.0.0.1:{http}\"\nosc_listen = \"127.0.0.1:{oscquery}\"\n"
        ),
    )
    .unwrap();
    let children = WORKERS
        .iter()
        .map(|bin| {
            Command::new(bins.join(bin))
                .env("HOME", dir.path())
                .env("VJ_CONFIG", dir.path().join("vj.toml"))
                .env("VJ_BUS_DIR", dir.path().join("bus"))
                .env("XDG_STATE_HOME", dir.path().join("state"))
                .env("XDG_CACHE_HOME", dir.path().join("cache"))
                .env("XDG_RUNTIME_DIR", dir.path())
                .env("RUST_LOG", "warn")
                .env_remove("NOTIFY_SOCKET")
                .env_remove("LISTEN_FDS")
                .env_remove("LISTEN_PID")
                .env_remove("WATCHDOG_USEC")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{bin}: {e}"))
        })
        .collect();
    Suite {
        children,
        _dir: dir,
    }
}

/// A visuals program: reads every datagram on `socket` until `stop`, counting them.
fn visuals(socket: UdpSocket, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if socket.recv(&mut buf).is_ok() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bins: PathBuf = std::env::var_os("VJ_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let mut report = Vec::new();
    for round in 0..ROUNDS {
        for bundled in [false, true] {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = socket.local_addr().unwrap().port();
            let (stop, count) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicU64::new(0)),
            );
            let reader = {
                let (stop, count) = (stop.clone(), count.clone());
                std::thread::spawn(move || visuals(socket, stop, count))
            };
            let suite = start(&bins, port, bundled);
            std::thread::sleep(WARM);
            let pids: Vec<u32> = suite.children.iter().map(Child::id).collect();
            let before: Vec<f64> = pids.iter().map(|&p| common::cpu_secs(p)).collect();
            let got = count.load(Ordering::Relaxed);
            std::thread::sleep(MEASURE);
            let after: Vec<f64> = pids.iter().map(|&p| common::cpu_secs(p)).collect();
            let got = count.load(Ordering::Relaxed) - got;
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap();
            drop(suite);
            let pct: Vec<f64> = before
                .iter()
                .zip(&after)
                .map(|(b, a)| 100.0 * (a - b) / MEASURE.as_secs_f64())
                .collect();
            let line = format!(
                "round {round} {:<8} vj-audio {:5.2} %  vj-oscdebug {:5.2} %  vj-oscquery {:5.2} %  \
                 suite {:5.2} %  visuals got {:.0} datagrams/s",
                if bundled { "bundled" } else { "plain" },
                pct[0],
                pct[1],
                pct[2],
                pct.iter().sum::<f64>(),
                got as f64 / MEASURE.as_secs_f64()
            );
            println!("{line}");
            report.push(line);
        }
    }
    println!("report:\n{}", report.join("\n"));
}
