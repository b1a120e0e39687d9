//! Show recordings (docs/BENCHMARKS.md, "Record and replay"), live on the release binaries run
//! by hand: vj-audio on its demo loop sending every /audio address to vj-oscdebug, and
//! `vj-status record` subscribed to it for RECORD_BENCH_SECS (default 60). Prints `report:`
//! lines: the recorder's CPU and the debugger's with and without it (/proc/PID/stat ticks),
//! bytes an hour and for a 3-hour show; how long a recorder may stall (SIGSTOP) before the
//! debugger's ring loses messages; how fast a recording decodes; and the replay's timing on
//! loopback — each bundle's arrival at a UDP listener against its timetag — with the sleep
//! alone and with the last stretch spun (side by side), and through the `vj-status replay` CLI.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vj::osc::recording::{self, Entry, Header, Reader};
use vj::status::replay::{self, ReplayPlan};

/// CPU seconds (utime + stime) of a process so far.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / ticks
}

fn pid(c: &Child) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(c.id() as i32).unwrap()
}

/// The recording's entries, notes and header left out.
fn entries(path: &Path) -> Vec<Entry> {
    Reader::new(std::fs::File::open(path).unwrap())
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| !e.is_note())
        .collect()
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Arrival times of every datagram at a UDP socket until stopped (one per message).
struct Listener {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Instant>>,
}

impl Listener {
    fn bind() -> Listener {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(8 << 20)
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut got = Vec::with_capacity(1 << 20);
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    got.push(Instant::now());
                }
            }
            got
        });
        Listener { addr, stop, thread }
    }

    fn finish(self) -> Vec<Instant> {
        std::thread::sleep(Duration::from_millis(100));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Each bundle's error on arrival (ms): its first message's arrival after the first bundle's,
/// less its timetag's offset from the first bundle's (divided by the speed).
fn timing(entries: &[Entry], got: &[Instant], speed: f64) -> Vec<f64> {
    assert_eq!(
        got.len(),
        entries.iter().map(|e| e.messages.len()).sum::<usize>(),
        "every message arrived"
    );
    let (t0, a0) = (entries[0].time, got[0]);
    let mut i = 0;
    let mut errors = Vec::with_capacity(entries.len());
    for e in entries {
        let want = recording::offset(e.time, t0).unwrap().as_secs_f64() / speed;
        let was = (got[i] - a0).as_secs_f64();
        errors.push((was - want) * 1000.0);
        i += e.messages.len();
    }
    errors
}

fn say_timing(what: &str, errors: &[f64]) {
    let abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    println!(
        "report: replay timing, {what}: error on arrival over {} bundles p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        errors.len(),
        quantile(abs.clone(), 0.5),
        quantile(abs.clone(), 0.99),
        quantile(abs, 1.0)
    );
}

fn main() {
    let secs: u64 = std::env::var("RECORD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["bus", "state", "cache", "config"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let port = common::free_udp_port();
    std::fs::write(
        d.join("vj.toml"),
        format!(
            "[osc]\ntargets = [\"127.0.0.1:{port}\"]\nroutes = []\n\
             [osc_debugger]\nlisten = \"127.0.0.1:{port}\"\n[audio]\nsource = \"demo\"\n"
        ),
    )
    .unwrap();
    let spawn = |bin: &str| {
        common::worker_command(bin, d)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut debugger = spawn(env!("CARGO_BIN_EXE_vj-oscdebug"));
    let mut audio = spawn(env!("CARGO_BIN_EXE_vj-audio"));
    let socket = d.join("bus/osc_debugger.sock");
    assert!(common::wait_until(Duration::from_secs(20), || {
        common::try_request(
            &socket,
            &serde_json::json!({"type": "command", "cmd": "get_stats"}),
        )
        .is_ok_and(|r| r["data"]["messages"].as_u64() > Some(1000))
    }));

    // The debugger alone, then with the recorder subscribed.
    let window = Duration::from_secs(10);
    let c0 = cpu_of(debugger.id());
    std::thread::sleep(window);
    let alone = (cpu_of(debugger.id()) - c0) / window.as_secs_f64() * 100.0;

    let file = d.join("bench.osc.zst");
    let recorder = common::worker_command(env!("CARGO_BIN_EXE_vj-status"), d)
        .args(["record", "--json"])
        .arg(&file)
        .args(["--for", &format!("{secs}s")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (r0, d0, t0) = (cpu_of(recorder.id()), cpu_of(debugger.id()), Instant::now());
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_secs(1)));
    let (r1, d1, t1) = (cpu_of(recorder.id()), cpu_of(debugger.id()), Instant::now());
    let out = recorder.wait_with_output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let span = (t1 - t0).as_secs_f64();
    let (bytes, slip, seconds) = (
        summary["file_bytes"].as_f64().unwrap(),
        summary["slip_bytes"].as_f64().unwrap(),
        summary["seconds"].as_f64().unwrap(),
    );
    let rate = summary["messages"].as_f64().unwrap() / seconds;
    println!(
        "report: recorder over {seconds:.0} s of the demo loop ({rate:.0} messages/s, every /audio address): {:.2} % of a core; the debugger {alone:.2} % alone, {:.2} % with the recorder subscribed; missed {}",
        (r1 - r0) / span * 100.0,
        (d1 - d0) / span * 100.0,
        summary["missed"],
    );
    let per_hour = bytes / seconds * 3600.0;
    println!(
        "report: file {:.0} bytes/s = {:.1} MB an hour, {:.0} MB for 3 h (SLIP inside: {:.1} MB an hour, {:.0} MB for 3 h; zstd {:.1}x)",
        bytes / seconds,
        per_hour / 1e6,
        3.0 * per_hour / 1e6,
        slip / seconds * 3600.0 / 1e6,
        3.0 * slip / seconds * 3600.0 / 1e6,
        slip / bytes
    );

    // How long a recorder may stall before messages are lost (default capacity 1000).
    for stall in [500u64, 1000, 2000, 4000] {
        let f = d.join(format!("stall-{stall}.osc.zst"));
        let r = common::worker_command(env!("CARGO_BIN_EXE_vj-status"), d)
            .args(["record", "--json"])
            .arg(&f)
            .args(["--for", &format!("{}s", stall as f64 / 1000.0 + 3.0)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(1));
        rustix::process::kill_process(pid(&r), rustix::process::Signal::STOP).unwrap();
        std::thread::sleep(Duration::from_millis(stall));
        rustix::process::kill_process(pid(&r), rustix::process::Signal::CONT).unwrap();
        let out = r.wait_with_output().unwrap();
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        println!(
            "report: recorder stopped (SIGSTOP) for {stall} ms: {} messages missed",
            s["missed"]
        );
    }
    for child in [&mut audio, &mut debugger] {
        let _ = child.kill();
        let _ = child.wait();
    }

    // Decoding: how fast a recording is read (what --from skips through).
    let t = Instant::now();
    let all = entries(&file);
    let took = t.elapsed().as_secs_f64();
    println!(
        "report: decoding: {:.0} MB/s of SLIP ({:.2} s for the {seconds:.0} s recording; {:.1} s to skip through 3 h)",
        slip / took / 1e6,
        took,
        took / seconds * 3.0 * 3600.0
    );
    let header = Reader::new(std::fs::File::open(&file).unwrap())
        .unwrap()
        .next()
        .and_then(|e| Header::from_entry(&e.unwrap()));
    assert!(header.is_some());

    // Replay timing on loopback, in process: the sleep alone, then with the last stretch spun.
    for (what, spin) in [
        ("sleep only", Duration::ZERO),
        ("sleep, then spin the last 300 us", replay::SPIN),
    ] {
        let l = Listener::bind();
        let out = vj::osc::OscOut::new(&vj::config::OscConfig {
            targets: vec![vj::config::OscTarget::plain(l.addr.clone())],
            routes: vec![],
        })
        .unwrap();
        let mut plan = ReplayPlan::new(file.clone());
        plan.spin = spin;
        let stop = AtomicBool::new(false);
        let t = (cpu_now(), Instant::now());
        let s = replay::replay(&plan, &out, &stop, |_| {}).unwrap();
        let cpu = (cpu_now() - t.0) / t.1.elapsed().as_secs_f64() * 100.0;
        let got = l.finish();
        say_timing(what, &timing(&all, &got, 1.0));
        println!(
            "report: replay timing, {what}: sender's own lateness p50 {:.3} ms, p99 {:.3} ms; this process {cpu:.1} % of a core",
            s.late_p50_ms, s.late_p99_ms
        );
    }
    // The CLI, as a user runs it, at 1× and 2×.
    for speed in ["1", "2"] {
        let l = Listener::bind();
        let out = common::worker_command(env!("CARGO_BIN_EXE_vj-status"), d)
            .args(["replay", "--json"])
            .arg(&file)
            .args(["--to", &l.addr, "--speed", speed])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let got = l.finish();
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        say_timing(
            &format!("vj-status replay --speed {speed}"),
            &timing(&all, &got, speed.parse().unwrap()),
        );
        println!(
            "report: replay timing, vj-status replay --speed {speed}: sender's own lateness p50 {} ms, p99 {} ms",
            s["late_p50_ms"], s["late_p99_ms"]
        );
    }
}

/// This process's CPU seconds so far.
fn cpu_now() -> f64 {
    cpu_of(std::process::id())
}
