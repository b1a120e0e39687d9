//! The foundation's figures (docs/BENCHMARKS.md): control-plane round trip and throughput against
//! the real vj-oscdebug, socket-activated cold start under a real systemd user manager, idle RSS
//! and CPU, and OSC sent and received on loopback without loss.
//!
//! Criterion measures the round trip; the other figures need percentiles, several clients or a
//! process's own counters, so they are measured here too and printed as a `report:` block.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

/// One connection making blocking requests, as a simple client does.
struct Conn {
    s: UnixStream,
    frame: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    fn open(path: &Path, cmd: &str) -> Conn {
        let body =
            serde_json::to_vec(&json!({"type": "command", "cmd": cmd, "msg_id": 1})).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        Conn {
            s: UnixStream::connect(path).unwrap(),
            frame,
            buf: Vec::with_capacity(4096),
        }
    }

    fn round_trip(&mut self) {
        self.s.write_all(&self.frame).unwrap();
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).unwrap();
        self.buf.resize(u32::from_be_bytes(len) as usize, 0);
        self.s.read_exact(&mut self.buf).unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn throughput(socket: &Path, clients: usize, per_client: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let socket = socket.to_path_buf();
            std::thread::spawn(move || {
                let mut c = Conn::open(&socket, "health");
                for _ in 0..per_client {
                    c.round_trip();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; after the ')' they are 12th and 13th.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss_kb, ticks)
}

fn osc_loopback(w: &common::ByHand, n: usize) -> (f64, u64) {
    use vj::config::{OscConfig, OscTarget};
    let out = vj::osc::OscOut::new(&OscConfig {
        targets: vec![OscTarget::Plain(format!("127.0.0.1:{}", w.osc_port()))],
        routes: vec![],
    })
    .unwrap();
    let mut c = Conn::open(&w.socket(), "clear");
    c.round_trip();
    let msg = rosc::OscMessage {
        addr: "/audio/levels".into(),
        args: (0..8)
            .map(|i| rosc::OscType::Float(i as f32 / 8.0))
            .collect(),
    };
    // Batches of 500, each sent as fast as the socket takes them; the next batch waits until
    // the debugger has counted the last one, so the rate is what it receives without loss.
    let received = || {
        common::request(&w.socket(), &json!({"type": "command", "cmd": "get_stats"}))["data"]
            ["messages"]
            .as_u64()
            .unwrap_or(0)
    };
    let base = received();
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < n as u64 {
        for _ in 0..500 {
            out.send(&msg);
        }
        sent += 500;
        let deadline = Instant::now() + Duration::from_secs(1);
        while received() - base < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    (rate, received() - base)
}

/// The shipped unit's sandbox switched off: every directive that makes systemd build a
/// namespace (mount, user, IPC, UTS) before `main` runs.
const NO_SANDBOX: &str = "[Service]\nPrivateUsers=no\nProtectSystem=no\nProtectHome=no\n\
    PrivateTmp=no\nPrivateDevices=no\nPrivateIPC=no\nProtectKernelTunables=no\n\
    ProtectKernelModules=no\nProtectKernelLogs=no\nProtectControlGroups=no\nProtectClock=no\n\
    ProtectHostname=no\nProtectProc=default\nProcSubset=all\nReadWritePaths=\n";

/// Starting to first reply, 20 runs each, side by side: socket-activated by systemd with the
/// shipped unit, the same with the sandbox off, and the binary started by hand (exec to first
/// reply: what is ours alone).
fn cold_start() -> Vec<(&'static str, Duration, Duration)> {
    let mut out = Vec::new();
    if Path::new("/lib/systemd/systemd").exists() {
        let m = common::UserManager::start();
        m.move_udp_port("vj-oscdebug-osc.socket", common::free_udp_port());
        m.ok(&["start", "vj-oscdebug.socket", "vj-oscdebug-osc.socket"]);
        let socket = m.bus_socket("osc_debugger");
        // 20 starts in a row would hit the shipped start limit (6 a minute).
        let no_limit = "[Unit]\nStartLimitIntervalSec=0\n";
        for (label, drop_in) in [
            ("socket-activated, shipped unit", no_limit.to_string()),
            (
                "socket-activated, sandbox off",
                format!("{no_limit}{NO_SANDBOX}"),
            ),
        ] {
            m.drop_in("vj-oscdebug.service", &drop_in);
            let samples = (0..20)
                .map(|_| {
                    m.ok(&["stop", "vj-oscdebug.service"]);
                    let t = Instant::now();
                    common::request(&socket, &json!({"type": "command", "cmd": "health"}));
                    t.elapsed()
                })
                .collect();
            out.push(p50_p95(label, samples));
        }
    }
    // A worker dir with its config, as `ByHand` makes it; each run below starts a fresh process.
    let (_, _, dir) = common::ByHand::start("").terminate();
    let socket = dir.path().join("bus/osc_debugger.sock");
    let samples = (0..20)
        .map(|_| {
            let _ = std::fs::remove_file(&socket);
            let t = Instant::now();
            let mut child = common::worker_command(env!("CARGO_BIN_EXE_vj-oscdebug"), dir.path())
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            while common::try_request(&socket, &json!({"type": "command", "cmd": "health"}))
                .is_err()
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            let elapsed = t.elapsed();
            child.kill().unwrap();
            child.wait().unwrap();
            elapsed
        })
        .collect();
    out.push(p50_p95("started by hand (exec to reply)", samples));
    out
}

fn p50_p95(label: &'static str, mut samples: Vec<Duration>) -> (&'static str, Duration, Duration) {
    samples.sort();
    (label, percentile(&samples, 0.5), percentile(&samples, 0.95))
}

fn report() {
    let w = common::ByHand::start("capacity = 100000");
    let mut c = Conn::open(&w.socket(), "get_state");
    for _ in 0..1000 {
        c.round_trip();
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            c.round_trip();
            t.elapsed()
        })
        .collect();
    samples.sort();
    println!("report: get_state round trip, one connection, 20000 requests");
    println!(
        "report:   p50 {:?}  p99 {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
    println!(
        "report: health requests/s, 1 client:   {:.0}",
        throughput(&w.socket(), 1, 20_000)
    );
    println!(
        "report: health requests/s, 16 clients: {:.0}",
        throughput(&w.socket(), 16, 5_000)
    );

    let (n, _) = (100_000, ());
    let (rate, received) = osc_loopback(&w, n);
    println!("report: OSC /audio/levels: {n} sent in batches of 500, received by vj-oscdebug at {rate:.0} msg/s, {received} received ({} lost)", n as u64 - received.min(n as u64));

    let fresh = common::ByHand::start("capacity = 100000");
    std::thread::sleep(Duration::from_secs(1));
    let (rss0, ticks0) = proc_stat(fresh.child.id());
    std::thread::sleep(Duration::from_secs(10));
    let (rss1, ticks1) = proc_stat(fresh.child.id());
    let hz = rustix::param::clock_ticks_per_second() as f64;
    println!(
        "report: idle vj-oscdebug: RSS {rss0} kB -> {rss1} kB, CPU {:.3} % over 10 s",
        (ticks1 - ticks0) as f64 / hz / 10.0 * 100.0
    );
    let (rss_busy, _) = proc_stat(w.child.id());
    println!(
        "report: vj-oscdebug after the load above (100000 messages buffered): RSS {rss_busy} kB"
    );

    for (label, p50, p95) in cold_start() {
        println!("report: cold start to first reply, {label} (20 runs): p50 {p50:?} p95 {p95:?}");
    }
}

fn bench(c: &mut Criterion) {
    report();
    let w = common::ByHand::start("capacity = 100000");
    let mut conn = Conn::open(&w.socket(), "get_state");
    c.bench_function("get_state round trip (one connection)", |b| {
        b.iter(|| conn.round_trip())
    });
    let mut conn = Conn::open(&w.socket(), "health");
    c.bench_function("health round trip (one connection)", |b| {
        b.iter(|| conn.round_trip())
    });

    let frame = {
        let body = br#"{"type":"command","cmd":"get_messages","msg_id":"42","count":10,"prefix":"/audio/"}"#;
        let mut f = bytes::BytesMut::new();
        vj::bus::frame::encode(body, &mut f);
        f
    };
    c.bench_function("parse one request frame", |b| {
        b.iter(|| {
            let mut buf = frame.clone();
            let body = vj::bus::frame::parse(&mut buf).unwrap().unwrap();
            vj::bus::message::Command::parse(&body).unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
