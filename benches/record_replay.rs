//! Show recordings (docs/BENCHMARKS.md, "Record and replay"), live on the release binaries run
//! by hand: vj-audio on its demo loop sending every /audio address to vj-oscdebug, and
//! `vj-status record` subscribed to it for RECORD_BENCH_SECS (default 60). Prints `report:`
//! lines: the recorder's CPU and the debugger's with and without it (/proc/PID/stat ticks),
//! bytes an hour and for a 3-hour show; how long a recorder may stall (SIGSTOP) before the
//! debugger's ring loses messages; how fast a recording decodes; and the replay's timing on
//! loopback — each bundle's send time (the kernel's receive timestamp at a UDP listener)
//! against its timetag — from an ordinary and a real-time thread, sleeping alone and spinning
//! the last stretch (side by side), and through the `vj-status replay` CLI.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::stamped::{Datagram, StampedListener};

use vj::osc::recording::{self, Entry, Header, Reader};
use vj::status::replay::{self, ReplayPlan};

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

/// Each bundle's send-time error (ms): when its first message reached the listener (`stamp`
/// of the datagram) after the first bundle's, less its timetag's offset from the first
/// bundle's (divided by the speed), less the median of that over the replay (when a replay
/// begins is no error; the first bundle's own error is printed apart as the start delay).
fn timing(
    entries: &[Entry],
    got: &[Datagram],
    speed: f64,
    stamp: impl Fn(&Datagram) -> f64,
) -> Timing {
    assert_eq!(
        got.len(),
        entries.iter().map(|e| e.messages.len()).sum::<usize>(),
        "every message arrived"
    );
    let (t0, a0) = (entries[0].time, stamp(&got[0]));
    let mut i = 0;
    let mut offsets = Vec::with_capacity(entries.len());
    for e in entries {
        let want = recording::offset(e.time, t0).unwrap().as_secs_f64() / speed;
        offsets.push((stamp(&got[i]) - a0 - want) * 1000.0);
        i += e.messages.len();
    }
    let median = quantile(offsets.clone(), 0.5);
    Timing {
        errors: offsets.iter().map(|o| (o - median).abs()).collect(),
        start: -median,
    }
}

struct Timing {
    /// |error| of each bundle, ms.
    errors: Vec<f64>,
    /// How much later than the rest the first bundle went out, ms.
    start: f64,
}

/// The kernel's receive timestamp: when the sender's `send` delivered it, on loopback.
fn kernel(d: &Datagram) -> f64 {
    d.at.as_secs_f64()
}

fn say_timing(what: &str, t: &Timing) {
    let e = &t.errors;
    println!(
        "report: replay timing, {what}: send-time error over {} bundles p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; start {:.2} ms late",
        e.len(),
        quantile(e.clone(), 0.5),
        quantile(e.clone(), 0.99),
        quantile(e.clone(), 1.0),
        t.start
    );
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
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
    let c0 = common::cpu_secs(debugger.id());
    std::thread::sleep(window);
    let alone = (common::cpu_secs(debugger.id()) - c0) / window.as_secs_f64() * 100.0;

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
    let (r0, d0, t0) = (
        common::cpu_secs(recorder.id()),
        common::cpu_secs(debugger.id()),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_secs(1)));
    let (r1, d1, t1) = (
        common::cpu_secs(recorder.id()),
        common::cpu_secs(debugger.id()),
        Instant::now(),
    );
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

    // Replay timing on loopback, in process, side by side: an ordinary thread and a real-time
    // one, each sleeping alone and sleeping then spinning the last stretch.
    let woke_base = Instant::now();
    for (what, realtime, spin) in [
        ("ordinary thread, sleep only", false, Duration::ZERO),
        (
            "ordinary thread, sleep then spin 300 us (before)",
            false,
            Duration::from_micros(300),
        ),
        ("real-time thread, sleep only", true, Duration::ZERO),
        (
            "real-time thread, sleep then spin 100 us (now)",
            true,
            replay::SPIN,
        ),
    ] {
        let l = StampedListener::bind();
        let out = vj::osc::OscOut::new(&vj::config::OscConfig {
            targets: vec![vj::config::OscTarget::plain(l.addr.clone())],
            routes: vec![],
        })
        .unwrap();
        let mut plan = ReplayPlan::new(file.clone());
        plan.spin = spin;
        plan.realtime = realtime;
        let stop = AtomicBool::new(false);
        let (t, l0) = ((cpu_now(), Instant::now()), load());
        let s = replay::replay(&plan, &out, &stop, |n| println!("note: {n}")).unwrap();
        let cpu = (cpu_now() - t.0) / t.1.elapsed().as_secs_f64() * 100.0;
        let got = l.finish(Duration::from_millis(100));
        say_timing(what, &timing(&all, &got, 1.0, kernel));
        println!(
            "report: replay timing, {what}: real-time {}; sender's own lateness p50 {:.3} ms, p99 {:.3} ms; this process {cpu:.1} % of a core; load {l0} -> {}",
            s.realtime, s.late_p50_ms, s.late_p99_ms, load()
        );
        if what.ends_with("(now)") {
            // The same datagrams dated by when the listening thread (ordinary) got them: what
            // the figures before 2026-12-08 measured.
            say_timing(
                &format!("{what}, dated by the listening thread"),
                &timing(&all, &got, 1.0, |d| {
                    d.woke.duration_since(woke_base).as_secs_f64()
                }),
            );
        }
    }
    // The CLI, as a user runs it, at 1× and 2×.
    for speed in ["1", "2"] {
        let l = StampedListener::bind();
        let l0 = load();
        let out = common::worker_command(env!("CARGO_BIN_EXE_vj-status"), d)
            .args(["replay", "--json"])
            .arg(&file)
            .args(["--to", &l.addr, "--speed", speed])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let got = l.finish(Duration::from_millis(100));
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let what = format!("vj-status replay --speed {speed}");
        say_timing(&what, &timing(&all, &got, speed.parse().unwrap(), kernel));
        println!(
            "report: replay timing, {what}: real-time {}; sender's own lateness p50 {} ms, p99 {} ms; load {l0} -> {}",
            s["realtime"], s["late_p50_ms"], s["late_p99_ms"], load()
        );
    }
}

/// This process's CPU seconds so far.
fn cpu_now() -> f64 {
    common::cpu_secs(std::process::id())
}
