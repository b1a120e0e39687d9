//! vj-console's figures (docs/BENCHMARKS.md): the cost of one redraw and of one push of
//! telemetry (criterion), and — live, the release binary in tmux against the whole suite under
//! a private systemd user manager — its redraw rate and CPU, the CPU its subscription costs
//! the debugger, and how soon it reads the debugger again after a restart (a `report:` block).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;
use vj::console::app::App;
use vj::console::feed::Update;
use vj::console::telemetry::{Arrival, OscMsg};

fn msg(addr: &str, args: serde_json::Value) -> OscMsg {
    OscMsg::new(addr, args.as_array().cloned().unwrap_or_default())
}

/// One analysis frame of `/audio/*`, as the debugger pushes it.
fn audio_frame(i: usize) -> Vec<OscMsg> {
    let x = (i % 17) as f32 / 17.0;
    let spectrum: Vec<f32> = (0..32).map(|b| (b as f32 * 0.3 + x) % 1.0).collect();
    vec![
        msg(
            "/audio/levels",
            json!([x, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.6]),
        ),
        msg("/audio/spectrum", json!(spectrum)),
        msg("/audio/beat", json!([i32::from(i % 40 == 0), 0.3])),
        msg("/audio/bpm", json!([124.0, 0.82])),
        msg("/audio/pitch", json!([220.0, 0.5])),
        msg("/audio/structure", json!([0, 0, 0.1, 0.3])),
    ]
}

fn busy_app() -> App {
    let mut app = App::new(vec!["127.0.0.1:9000 127.0.0.1:9001".into()]);
    app.apply(Update::Subscribed(json!({"addresses": {}, "malformed": 0})));
    let mut msgs = vec![
        msg(
            "/karaoke/track",
            json!([1, "virtualdj", "Daft Punk", "One More Time", "", 320.0, 1]),
        ),
        msg("/karaoke/pos", json!([83.0, 1])),
        msg("/karaoke/lyrics/line", json!([0, 1.0, "One more time"])),
        msg("/karaoke/line/active", json!([0])),
    ];
    msgs.extend(audio_frame(0));
    app.apply_osc(&msgs, &Arrival::now());
    app
}

fn bench(c: &mut Criterion) {
    let mut app = busy_app();
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut i = 0;
        c.bench_function(
            &format!("console draw {w}x{h} (a new audio frame each time)"),
            |b| {
                b.iter(|| {
                    i += 1;
                    app.apply_osc(&audio_frame(i), &Arrival::now());
                    app.now = Instant::now();
                    t.draw(|f| app.draw(f)).unwrap();
                })
            },
        );
    }
    // What a 33 ms push carries at 86 frames a second: 3 frames, as JSON.
    let push = json!({
        "messages": (0..3).flat_map(audio_frame).map(|m| json!({
            "seq": 1, "time": 0.0, "address": m.address, "types": "f", "args": m.args
        })).collect::<Vec<_>>(),
        "last_seq": 18, "missed": 0, "malformed": 0
    })
    .to_string();
    c.bench_function("console push of 3 audio frames: parse + apply", |b| {
        b.iter(|| {
            #[derive(serde::Deserialize)]
            struct Push {
                messages: Vec<OscMsg>,
            }
            let p: Push = serde_json::from_str(&push).unwrap();
            app.apply_osc(&p.messages, &Arrival::now());
        })
    });
    live();
}

fn tmux(sock: &Path) -> Command {
    let mut c = Command::new("tmux");
    c.arg("-S").arg(sock).env_remove("TMUX");
    c
}

/// The release console in tmux against the suite (analyzer on its demo loop).
/// `CONSOLE_BENCH_BIN` runs another vj-console binary the same way (an older build, side by
/// side), `CONSOLE_BENCH_SECS` sets the time per case (default 30).
fn live() {
    let release = std::env::var_os("CONSOLE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/release/vj-console"));
    if !release.exists() || Command::new("tmux").arg("-V").output().is_err() {
        println!("report: console live figures skipped (needs target/release/vj-console and tmux)");
        return;
    }
    let m = common::UserManager::start();
    let (dport, lport) = (common::free_udp_port(), common::free_udp_port());
    m.move_udp_port("vj-oscdebug-osc.socket", dport);
    m.move_udp_port("vj-lyrics-osc.socket", lport);
    m.write_config(&format!(
        "[osc]\ntargets = [\"127.0.0.1:{dport}\"]\n[[osc.routes]]\nprefix = \"/karaoke/\"\ntargets = [\"127.0.0.1:{lport}\"]\n[audio]\nsource = \"demo\"\n"
    ));
    m.ok(&["start", "vj.target"]);
    let debugger = "vj-oscdebug.service";
    assert!(common::wait_until(Duration::from_secs(20), || m
        .main_pid(debugger)
        != 0));
    std::thread::sleep(Duration::from_secs(3));
    let secs: f64 = std::env::var("CONSOLE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0);
    // The debugger alone, fed by the analyzer, for the same time.
    let pid = m.main_pid(debugger);
    let c0 = common::cpu_secs(pid);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let alone = common::cpu_secs(pid) - c0;

    let sock: PathBuf = m.root.join("bench-tmux.sock");
    // The last runs have no session bus to ask the manager on: the `systemctl` fallback; the
    // very last one with the debugger stopped (its sockets too, or the analyzer's OSC would
    // start it again), so the console has no subscription and only the look says why.
    for (w, h, bus, debugger_up) in [
        (80, 24, true, true),
        (120, 40, true, true),
        (200, 60, true, true),
        (120, 40, false, true),
        (120, 40, false, false),
    ] {
        if !debugger_up {
            m.ok(&[
                "stop",
                "vj-oscdebug.socket",
                "vj-oscdebug-osc.socket",
                debugger,
            ]);
        }
        let err = m
            .root
            .join(format!("console-{w}x{h}-{bus}-{debugger_up}.err"));
        let mut env = vec!["env".to_string()];
        env.extend(m.env().iter().map(|(k, v)| format!("{k}={}", v.display())));
        if !bus {
            env.push("DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus".into());
        }
        let size = format!(
            "{w}x{h}{}{}",
            if bus { "" } else { " without a session bus" },
            if debugger_up {
                ""
            } else {
                ", the debugger stopped"
            }
        );
        env.extend(["sh".into(), "-c".into()]);
        env.push(format!(
            "{} --quit-after {} 2>{}",
            release.display(),
            secs,
            err.display()
        ));
        let ok = tmux(&sock)
            .args(["new-session", "-d", "-s", "B", "-x", &w.to_string()])
            .args(["-y", &h.to_string()])
            .args(&env)
            .status()
            .unwrap();
        assert!(ok.success());
        let c0 = common::cpu_secs(pid);
        std::thread::sleep(Duration::from_secs_f64(secs + 2.0));
        let with = common::cpu_secs(pid) - c0;
        let console = std::fs::read_to_string(&err).unwrap_or_default();
        println!("report: {size}: {}", console.trim());
        if debugger_up {
            println!(
                "report: {size}: vj-oscdebug CPU over {secs} s: {:.1} % of a core alone (before), {:.1} % with the console subscribed",
                100.0 * alone / secs,
                100.0 * with / secs
            );
        }
        let _ = tmux(&sock).arg("kill-server").status();
    }
    m.ok(&[
        "start",
        "vj-oscdebug.socket",
        "vj-oscdebug-osc.socket",
        debugger,
    ]);
    assert!(common::wait_until(Duration::from_secs(20), || m
        .main_pid(debugger)
        != 0));
    if std::env::var_os("CONSOLE_BENCH_BIN").is_some() {
        return;
    }

    // Reconnection: the console's own feed in this process, the debugger restarted under it;
    // from the restart to the subscription's first push from the new debugger.
    for (k, v) in m.env() {
        std::env::set_var(k, v);
    }
    let feed = vj::console::feed::Feed::start(m.runtime.join("vj-bus")).unwrap();
    let next = |timeout: Duration| feed.updates.recv_timeout(timeout).ok();
    let wait_push = |timeout: Duration| {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(Update::Osc { messages, .. }) = next(Duration::from_millis(100)) {
                if !messages.is_empty() {
                    return true;
                }
            }
        }
        false
    };
    assert!(
        wait_push(Duration::from_secs(10)),
        "no telemetry from the debugger"
    );
    let mut gaps = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        m.ok(&["restart", debugger]);
        // What arrived before the old debugger went is not the new one's.
        let lost = {
            let end = Instant::now() + Duration::from_secs(5);
            let mut lost = false;
            while !lost && Instant::now() < end {
                lost = matches!(
                    next(Duration::from_millis(100)),
                    Some(Update::NoTelemetry(_))
                );
            }
            lost
        };
        if lost && wait_push(Duration::from_secs(10)) {
            gaps.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    gaps.sort_by(f64::total_cmp);
    println!(
        "report: telemetry again after `systemctl --user restart vj-oscdebug` (5 runs, from the restart to the new debugger's first push): {:?} ms",
        gaps.iter().map(|g| g.round()).collect::<Vec<_>>()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
