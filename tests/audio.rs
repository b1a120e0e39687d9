//! End-to-end tests of `vj-audio`: the real binary, capturing through cpal from ALSA's `file`
//! plugin (a temp HOME's .asoundrc), sending OSC to a real UDP receiver, driven over the bus.

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{alsa_file_pcm, alsa_raw};
use serde_json::{json, Map, Value};
use vj::audio::synth::{self, Genre};
use vj::bus::client::Client;

struct Worker {
    child: Child,
    dir: tempfile::TempDir,
    osc: UdpSocket,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(audio: &str, setup: impl FnOnce(&Path)) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for d in ["home", "bus", "state", "cache", "config"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    setup(&home);
    let osc = UdpSocket::bind("127.0.0.1:0").unwrap();
    osc.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let config = dir.path().join("vj.toml");
    std::fs::write(
        &config,
        format!(
            "[osc]\ntargets = [\"{}\"]\nroutes = []\n[audio]\n{audio}\n",
            osc.local_addr().unwrap()
        ),
    )
    .unwrap();
    // HOME apart from the rest of the dir: it holds the test's .asoundrc.
    let child = common::worker_command(env!("CARGO_BIN_EXE_vj-audio"), dir.path())
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker { child, dir, osc }
}

impl Worker {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("bus/audio_analyzer.sock")
    }

    async fn client(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(c) = Client::connect(&self.socket()).await {
                return c;
            }
            assert!(Instant::now() < deadline, "the worker never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every OSC message received during `window`: (address, type tags, args).
    fn receive(&self, window: Duration) -> Vec<vj::osc::CapturedMessage> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        let until = Instant::now() + window;
        while Instant::now() < until {
            if let Ok(n) = self.osc.recv(&mut buf) {
                out.extend(vj::osc::decode(&buf[..n]).unwrap());
            }
        }
        out
    }
}

async fn get(c: &mut Client, cmd: &str, args: Value) -> vj::bus::client::Ack {
    let Value::Object(args) = args else { panic!() };
    c.request(cmd, args).await.unwrap()
}

async fn wait_for(c: &mut Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = get(c, "get_state", json!({})).await.data;
        if ok(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "never {what}: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const TYPES: [(&str, &str); 6] = [
    ("/audio/levels", "ffffffff"),
    ("/audio/spectrum", "ffffffffffffffffffffffffffffffff"),
    ("/audio/beat", "if"),
    ("/audio/bpm", "ff"),
    ("/audio/pitch", "ff"),
    ("/audio/structure", "iiff"),
];

#[tokio::test]
async fn capture_through_alsa_sends_every_address_with_exact_types() {
    let w = start("source = \"device\"\ndevice = \"default\"", |home| {
        let raw = home.join("clip.raw");
        std::fs::write(&raw, alsa_raw(Genre::House, 11, 40.0)).unwrap();
        alsa_file_pcm(home, &raw);
    });
    let mut c = w.client().await;
    let state = wait_for(&mut c, "capturing", |s| {
        s["source"] == "device" && s["fps"].as_f64() > Some(0.0)
    })
    .await;
    assert_eq!(state["device"], "default");
    assert_eq!(state["rate"], 44_100);
    let msgs = w.receive(Duration::from_secs(2));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &msgs {
        let want = TYPES
            .iter()
            .find(|(a, _)| *a == m.address)
            .unwrap_or_else(|| panic!("unexpected address {}", m.address));
        assert_eq!(m.types, want.1, "type tags of {}", m.address);
        *seen.entry(want.0).or_default() += 1;
    }
    for (addr, _) in TYPES {
        assert!(
            seen.get(addr).copied().unwrap_or(0) > 0,
            "never saw {addr}: {seen:?}"
        );
    }
    // ≥ 80 analysis frames per second of audio (44.1 kHz / 512 = 86).
    assert!(seen["/audio/levels"] >= 160, "{seen:?} in 2 s");
    assert!(msgs
        .iter()
        .any(|m| m.address == "/audio/beat" && m.args[0] == json!(1)));
    let health = get(&mut c, "health", json!({})).await.data;
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn a_vanished_device_degrades_and_the_worker_recovers() {
    let w = start("source = \"device\"\ndevice = \"default\"", |home| {
        let raw = home.join("clip.raw");
        std::fs::write(&raw, alsa_raw(Genre::Techno, 11, 30.0)).unwrap();
        alsa_file_pcm(home, &raw);
    });
    let home = w.dir.path().join("home");
    let mut c = w.client().await;
    wait_for(&mut c, "capturing", |s| s["fps"].as_f64() > Some(0.0)).await;
    // The device goes away: its backing file disappears and the input is reopened (the
    // file plugin itself never reports a read error mid-stream, see docs/BENCHMARKS.md).
    std::fs::rename(home.join("clip.raw"), home.join("gone.raw")).unwrap();
    let ack = get(&mut c, "set_config", json!({"device": "defaul"})).await;
    assert!(ack.success, "{ack:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let h = get(&mut c, "health", json!({})).await.data;
        if h["status"] == "degraded" {
            break h;
        }
        assert!(Instant::now() < deadline, "never degraded: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        health["detail"].as_str().unwrap().contains("degraded"),
        "{health}"
    );
    let state = get(&mut c, "get_state", json!({})).await.data;
    assert!(state["reopen_attempts"].as_u64() >= Some(1), "{state}");
    // It comes back: the worker reopens with back-off and analyses again.
    std::fs::rename(home.join("gone.raw"), home.join("clip.raw")).unwrap();
    let before = state["frames"].as_u64().unwrap();
    wait_for(&mut c, "recovered", |s| {
        s["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("analyzing"))
            && s["frames"].as_u64() > Some(before + 100)
    })
    .await;
    assert!(!w.receive(Duration::from_millis(500)).is_empty());
}

#[tokio::test]
async fn a_device_that_stops_delivering_mid_stream_degrades_without_hanging_the_worker() {
    // The device is a FIFO: 2 s of audio, then its writer holds it open and goes quiet, so
    // the stream's read blocks in alsa-lib: a wedged device, not one that reports an error.
    let w = start("source = \"device\"\ndevice = \"default\"", |home| {
        std::fs::create_dir_all(home).unwrap();
        let fifo = home.join("wedged.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        alsa_file_pcm(home, &fifo);
    });
    let fifo = w.dir.path().join("home/wedged.fifo");
    let (quit, quit_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let raw = alsa_raw(Genre::House, 11, 2.0);
        let _ = f.write_all(&raw);
        let _ = quit_rx.recv();
    });
    let mut c = w.client().await;
    wait_for(&mut c, "capturing", |s| s["frames"].as_u64() > Some(50)).await;
    let state = wait_for(&mut c, "degraded", |s| s["status"] == "degraded").await;
    assert!(
        state["last_error"]
            .as_str()
            .unwrap()
            .contains("delivered no audio for 3 s"),
        "{state}"
    );
    // Still serving, still trying to reopen (each attempt finds the same wedged device).
    let state = wait_for(&mut c, "reopening", |s| {
        s["reopen_attempts"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(state["status"], "degraded", "{state}");
    // And a stop is still a clean exit, quickly, whatever the device threads are stuck in.
    let mut w = w;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(w.child.id() as i32).expect("a pid"),
        rustix::process::Signal::TERM,
    )
    .expect("kill");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = w.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    drop(quit);
    let _ = writer.join();
}

/// A private PulseAudio server whose default source is a sine, on a socket in `dir`: the
/// sound server most Linux desktops route ALSA through (PipeWire answers the same protocol).
struct Pulse {
    child: Child,
}

impl Pulse {
    fn start(dir: &Path) -> Pulse {
        let socket = dir.join("native");
        let _ = std::fs::remove_file(&socket);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let script = dir.join("default.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
                 load-module module-sine-source rate=44100 frequency=440\n\
                 set-default-source sine_input\n",
                socket.display()
            ),
        )
        .unwrap();
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=false",
            ])
            .arg("-F")
            .arg(&script)
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (scripts/deps.sh --test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "pulseaudio never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pulse { child }
    }

    /// The server dies, as when the desktop's sound server crashes or restarts.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_sound_server_that_dies_mid_stream_degrades_and_the_worker_recovers() {
    // Capture through ALSA's pulse plugin from a real PulseAudio server, which is then killed
    // mid-stream. The worker must say so, keep serving, and capture again once the server is
    // back. (cpal waits on the plugin's poll descriptors without a timeout, and a dead server
    // never wakes them: the stream stalls rather than reporting an error, and the worker's
    // stall check is what notices.)
    let pulse_dir = tempfile::tempdir().unwrap();
    let pulse = Pulse::start(pulse_dir.path());
    let w = start("source = \"device\"\ndevice = \"default\"", |home| {
        std::fs::create_dir_all(home).unwrap();
        let server = pulse_dir.path().join("native");
        std::fs::write(
            home.join(".asoundrc"),
            format!(
                "pcm.!default {{ type pulse; server \"unix:{0}\" }}\n\
                 ctl.!default {{ type pulse; server \"unix:{0}\" }}\n",
                server.display()
            ),
        )
        .unwrap();
    });
    let mut c = w.client().await;
    wait_for(&mut c, "capturing", |s| s["frames"].as_u64() > Some(100)).await;
    pulse.kill();
    let state = wait_for(&mut c, "degraded", |s| s["status"] == "degraded").await;
    let error = state["last_error"].as_str().unwrap();
    assert!(
        error == "device 'default' delivered no audio for 3 s"
            || error.starts_with("device 'default' reported an error: "),
        "{state}"
    );
    let health = get(&mut c, "health", json!({})).await.data;
    assert!(
        health["detail"].as_str().unwrap().contains(error),
        "{health}"
    );
    // The server comes back; the worker, reopening with back-off, captures again.
    let _pulse = Pulse::start(pulse_dir.path());
    let before = state["frames"].as_u64().unwrap();
    wait_for(&mut c, "recovered", |s| {
        s["status"] == "ok" && s["frames"].as_u64() > Some(before + 100)
    })
    .await;
    assert!(!w.receive(Duration::from_millis(500)).is_empty());
}

#[tokio::test]
async fn no_device_plays_the_demo_and_set_config_toggles_features_live() {
    // `auto` and no input that opens (the only PCM reads a file that is not there): the demo.
    let w = start("source = \"auto\"", |home| {
        alsa_file_pcm(home, &home.join("missing.raw"))
    });
    let mut c = w.client().await;
    let state = wait_for(&mut c, "on the demo", |s| s["fps"].as_f64() > Some(0.0)).await;
    assert_eq!(state["source"], "demo");
    assert!(
        state["detail"].as_str().unwrap().contains("demo"),
        "{state}"
    );
    let before = w.receive(Duration::from_millis(500));
    assert!(before.iter().any(|m| m.address == "/audio/spectrum"));

    let ack = get(
        &mut c,
        "set_config",
        json!({"spectrum": false, "pitch": false}),
    )
    .await;
    assert!(ack.success, "{ack:?}");
    assert_eq!(ack.data["config"]["spectrum"], false);
    w.receive(Duration::from_millis(300));
    let after = w.receive(Duration::from_secs(1));
    assert!(after.iter().any(|m| m.address == "/audio/levels"));
    assert!(!after
        .iter()
        .any(|m| m.address == "/audio/spectrum" || m.address == "/audio/pitch"));
    let state = get(&mut c, "get_state", json!({})).await.data;
    assert_eq!(state["config"]["spectrum"], false);

    let bad = get(&mut c, "set_config", json!({"bpm_min": 200.0})).await;
    assert!(!bad.success);
    assert!(bad.message.unwrap().contains("audio.bpm_min"));
    let unknown = get(&mut c, "set_config", json!({"bpmm": 1})).await;
    assert!(unknown.message.unwrap().contains("audio.bpmm"));
    // The only PCM leads nowhere, so cpal lists no input; ALSA's own names are still there.
    let listed = get(&mut c, "list_devices", json!({})).await;
    assert!(listed.success, "{listed:?}");
    assert_eq!(listed.data["devices"], json!([]), "{listed:?}");
    let pcms = listed.data["alsa_pcms"].as_array().unwrap();
    assert!(pcms.iter().any(|p| p == "default"), "{pcms:?}");
}

/// A PCM of the user's own (~/.asoundrc), which cpal does not list, chosen by its name.
fn named_pcm(home: &Path, name: &str, infile: &Path) {
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.{name} {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{}\"; format \"raw\" }}\n",
            infile.display()
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn a_pcm_only_asoundrc_names_is_captured_and_a_missing_one_is_named() {
    let w = start("source = \"device\"\ndevice = \"vjmic\"", |home| {
        let raw = home.join("clip.raw");
        std::fs::write(&raw, alsa_raw(Genre::House, 12, 40.0)).unwrap();
        named_pcm(home, "vjmic", &raw);
    });
    let mut c = w.client().await;
    let state = wait_for(&mut c, "capturing vjmic", |s| {
        s["source"] == "device" && s["fps"].as_f64() > Some(0.0)
    })
    .await;
    assert_eq!(state["device"], "vjmic", "{state}");
    assert_eq!(
        (state["rate"].as_u64(), state["channels"].as_u64()),
        (Some(44_100), Some(2))
    );
    let msgs = w.receive(Duration::from_secs(1));
    let loud = msgs
        .iter()
        .filter(|m| m.address == "/audio/levels")
        .any(|m| m.args[7].as_f64().unwrap_or(0.0) > 0.05);
    assert!(loud, "the clip's audio arrives: {:?}", msgs.first());
    let listed = get(&mut c, "list_devices", json!({})).await;
    assert!(
        listed.data["alsa_pcms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "vjmic"),
        "{listed:?}"
    );

    // A name nothing answers to: degraded, saying what was asked and what exists.
    let ack = get(&mut c, "set_config", json!({"device": "nosuchmic"})).await;
    assert!(ack.success, "{ack:?}");
    let state = wait_for(&mut c, "degraded", |s| s["status"] == "degraded").await;
    let detail = state["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"nosuchmic\"")
            && detail.contains("ALSA cannot open")
            && detail.contains("vjmic"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_96_khz_file_source_plays_at_real_time_with_beats_on_its_tempo() {
    // `source = "file:…"` plays a WAV in a loop at real time; at 96 kHz it is analysed at
    // 48 kHz (93.75 frames a second), and /audio/beat pulses at the song's tempo.
    let clip = synth::generate(Genre::House, 5, 96_000, 20.0);
    let music = tempfile::tempdir().unwrap();
    synth::write_clip(music.path(), &clip).unwrap();
    let wav = music.path().join(format!("{}.wav", clip.name));
    let w = start(&format!("source = \"file:{}\"", wav.display()), |_| {});
    let mut c = w.client().await;
    let state = wait_for(&mut c, "locked on the tempo", |s| {
        s["fps"].as_f64() > Some(0.0)
            && s["bpm"]
                .as_f64()
                .is_some_and(|b| (b / clip.tempo - 1.0).abs() < 0.04)
    })
    .await;
    assert_eq!(state["source"], "file", "{state}");
    assert_eq!(state["rate"], 96_000, "{state}");
    assert_eq!(state["analysis_rate"], 48_000, "{state}");
    let fps = state["fps"].as_f64().unwrap();
    assert!((fps - 93.75).abs() < 5.0, "{fps} frames a second");
    // What queued up while it locked, then 4 s of what it sends now.
    w.receive(Duration::from_millis(500));
    let secs = 4.0;
    let msgs = w.receive(Duration::from_secs_f64(secs));
    let frames = msgs.iter().filter(|m| m.address == "/audio/levels").count();
    let beats = msgs
        .iter()
        .filter(|m| m.address == "/audio/beat" && m.args[0] == json!(1))
        .count();
    let want = secs * clip.tempo / 60.0;
    assert!(
        (frames as f64 / secs - 93.75).abs() < 8.0,
        "{frames} frames in {secs} s"
    );
    assert!(
        (beats as f64 - want).abs() <= 1.5,
        "{beats} beats in {secs} s at {} BPM",
        clip.tempo
    );
}

#[test]
fn analyze_prints_beats_then_the_tempo() {
    let dir = tempfile::tempdir().unwrap();
    let clip = synth::generate(Genre::House, 5, 44_100, 15.0);
    synth::write_clip(dir.path(), &clip).unwrap();
    let wav = dir.path().join(format!("{}.wav", clip.name));
    let out = Command::new(env!("CARGO_BIN_EXE_vj-audio"))
        .args(["analyze", "--beats"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (beats, tempo) = vj::audio::eval::parse_beats(&text);
    assert!(text
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .starts_with("tempo "));
    assert!(
        (tempo / clip.tempo - 1.0).abs() < 0.04,
        "{tempo} vs {}",
        clip.tempo
    );
    assert!(vj::audio::eval::f_measure(&clip.beats, &beats) > 0.9);

    let out = Command::new(env!("CARGO_BIN_EXE_vj-audio"))
        .args(["analyze", "--json"])
        .arg(&wav)
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One frame per 512-sample hop.
    assert_eq!(lines.len(), clip.samples.len() / 512);
    let last: &Map<String, Value> = lines.last().unwrap().as_object().unwrap();
    assert_eq!(last["levels"].as_array().unwrap().len(), 8);
    assert_eq!(last["spectrum"].as_array().unwrap().len(), 32);

    let bad = Command::new(env!("CARGO_BIN_EXE_vj-audio"))
        .args(["analyze", "/nonexistent.wav"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.wav"));
}
