//! Live input switching (docs/BENCHMARKS.md, "What the machine plays … and live switching"):
//! the release vj-audio, run by hand, a client of a private sound server (PulseAudio, then
//! PipeWire with WirePlumber and pipewire-pulse) whose default output is a null sink; `set_config` on its control socket moves it between the demo loop, the null
//! sink's monitor (named by a substring of its description) and a WAV file. The switch time
//! is from the ack to the first `/audio/*` datagram of the new input at a UDP listener (the
//! kernel's receive timestamp, `common::stamped`). The old input sends a frame every 11.6 ms
//! until the worker leaves it and the new one from its first hop, so the new input's first
//! frame is the first after the longest gap that follows the ack (a switch within two hops
//! shows no gap, and then counts as that first datagram after the ack).
//!
//! `cargo bench --no-default-features --bench switching`; `SWITCH_BENCH_RUNS` (default 5)
//! switches of each kind, alternating.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::pulse::Pulse;
use common::stamped::StampedListener;
use serde_json::{json, Value};

const RATE: u32 = 44_100;

struct Analyzer {
    child: Child,
    dir: PathBuf,
}

impl Drop for Analyzer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Analyzer {
    fn ask(&self, cmd: &str, args: Value) -> Value {
        let mut body = json!({"type": "command", "cmd": cmd, "msg_id": "1"});
        for (k, v) in args.as_object().unwrap() {
            body[k] = v.clone();
        }
        common::request(&self.dir.join("bus/audio_analyzer.sock"), &body)
    }

    fn state(&self) -> Value {
        self.ask("get_state", json!({}))["data"].clone()
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// What one switch took, in ms from the ack: until `get_state` names the new input (the
/// worker has it open), and until its first frame reached the listener (`None`: the switch
/// left no gap in `/audio/*` longer than [`GAP`], its first frame came within a hop).
struct Switch {
    ack: f64,
    opened: f64,
    first: Option<f64>,
}

/// Frames of a source come every 11.6 ms, a little more around a beat held for its send time.
const GAP: Duration = Duration::from_millis(15);

fn switch(a: &Analyzer, l: &StampedListener, settings: Value, shown: &str) -> Switch {
    std::thread::sleep(Duration::from_millis(500));
    l.take();
    let asked = now();
    let ack = a.ask("set_config", settings.clone());
    let acked = now();
    assert_eq!(ack["success"], true, "{ack}");
    let (ask, opened) = loop {
        let s = a.state();
        let at = now();
        if s["capturing"].as_str().is_some_and(|c| c.contains(shown)) {
            break (acked - asked, at - acked);
        }
        assert!(at - acked < Duration::from_secs(5), "never {shown}: {s}");
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<Duration> = l
        .take()
        .iter()
        .map(|d| d.at)
        .filter(|at| *at > acked)
        .collect();
    assert!(
        after.len() > 100,
        "{} datagrams after the switch",
        after.len()
    );
    // The old input stops within a hop of the ack (a beat's frame held for its send time may
    // come up to a hop later): the first gap longer than GAP that begins by then is the
    // switch, and the datagram after it the new input's first.
    let by = acked + Duration::from_millis(40);
    let first = after
        .windows(2)
        .take_while(|w| w[0] <= by)
        .find(|w| w[1] - w[0] > GAP)
        .map(|w| w[1] - acked);
    if std::env::var_os("SWITCH_BENCH_GAPS").is_some() {
        let gaps: Vec<String> = after
            .windows(2)
            .filter(|w| w[1] - w[0] > GAP)
            .map(|w| format!("{:.0}+{:.0}", ms(w[0] - acked), ms(w[1] - w[0])))
            .collect();
        println!("gaps (at+length ms) after {settings}: {gaps:?}");
    }
    Switch {
        ack: ms(ask),
        opened: ms(opened),
        first: first.map(ms),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts a sound server in a directory.
type Start = fn(&Path) -> Pulse;

fn main() {
    let runs: usize = std::env::var("SWITCH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let servers: [(&str, Start); 2] = [
        ("PulseAudio", |d| {
            Pulse::with_null_sink(d, "vjtest", "VJ Test Output")
        }),
        ("PipeWire", |d| {
            Pulse::pipewire_with_null_sink(d, "vjtest", "VJ Test Output")
        }),
    ];
    for (server, start) in servers {
        switches_on(server, start, runs);
    }
}

/// Every switch `runs` times, vj-audio a client of the sound server `start` starts.
fn switches_on(server: &str, start: Start, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["bus", "state", "cache", "config", "pulse"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let pulse = start(&d.join("pulse"));
    let wav = d.join("demo.wav");
    common::write_wav(&wav, &vj::audio::synth::demo_loop(RATE), RATE);
    // What a desktop's output carries while music plays: a tone, from a player asking for
    // 20 ms (as paplay --latency-msec=20).
    let playing = d.join("tone.wav");
    let tone: Vec<f32> = (0..150 * RATE as usize)
        .map(|n| 0.25 * (std::f64::consts::TAU * 220.0 * n as f64 / RATE as f64).sin() as f32)
        .collect();
    common::write_wav(&playing, &tone, RATE);
    let l = StampedListener::bind();
    std::fs::write(
        d.join("vj.toml"),
        format!(
            "[osc]\ntargets = [\"{}\"]\nroutes = []\n[audio]\nsource = \"demo\"\n",
            l.addr
        ),
    )
    .unwrap();
    let child = common::worker_command(env!("CARGO_BIN_EXE_vj-audio"), d)
        .env("PULSE_SERVER", pulse.server())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let a = Analyzer {
        child,
        dir: d.to_path_buf(),
    };
    assert!(common::wait_until(Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(d.join("bus/audio_analyzer.sock")).is_ok()
            && a.state()["fps"].as_f64() > Some(0.0)
    }));

    let mut figures: Vec<(String, Vec<Switch>)> = Vec::new();
    let mut add = |what: &str, s: Switch| match figures.iter_mut().find(|f| f.0 == what) {
        Some(f) => f.1.push(s),
        None => figures.push((what.into(), vec![s])),
    };
    let file = json!({ "source": format!("file:{}", wav.display()) });
    let demo = json!({ "source": "demo" });
    // By a substring of the output's description, as a user would.
    let monitor = json!({ "source": "device", "device": "vj test out" });
    // Nothing plays: the null sink idles with its longest block.
    for _ in 0..runs {
        add(
            "demo -> the null sink's monitor, nothing playing",
            switch(&a, &l, monitor.clone(), "VJ Test Output"),
        );
        add(
            "the monitor -> demo",
            switch(&a, &l, demo.clone(), "demo loop"),
        );
    }
    // The source is `device` from here on only while the monitor is captured.
    let mut player = Command::new("paplay")
        .arg("--server")
        .arg(pulse.server())
        .args(["--device", "vjtest", "--latency-msec=20"])
        .arg(&playing)
        .spawn()
        .expect("paplay (pulseaudio-utils)");
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..runs {
        add(
            "demo -> the null sink's monitor, a player at 20 ms on it",
            switch(&a, &l, monitor.clone(), "VJ Test Output"),
        );
        let s = a.state();
        assert_eq!(s["device"], "vjtest.monitor", "{s}");
        add(
            "the monitor -> demo",
            switch(&a, &l, demo.clone(), "demo loop"),
        );
        add(
            "demo -> a WAV file",
            switch(&a, &l, file.clone(), "demo.wav"),
        );
        add(
            "a WAV file -> demo",
            switch(&a, &l, demo.clone(), "demo loop"),
        );
    }
    let _ = player.kill();
    let _ = player.wait();
    let list = |v: Vec<f64>| {
        let v: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        v.join(" ")
    };
    for (what, runs) in &figures {
        let first: Vec<String> = runs
            .iter()
            .map(|s| s.first.map_or("-".into(), |f| format!("{f:.0}")))
            .collect();
        println!(
            "report: {server}: switching {what}: ack to the new input open (get_state) {} ms; to its first frame {} ms ('-': no gap over 15 ms); request to ack {} ms",
            list(runs.iter().map(|s| s.opened).collect()),
            first.join(" "),
            list(runs.iter().map(|s| s.ack).collect()),
        );
    }
}
