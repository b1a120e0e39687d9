//! `vj-status record` and `replay` end to end, against the real workers run by hand (vj-audio
//! on its demo loop, vj-oscdebug) on this test's own ports: the recording holds what the
//! visuals received live, in order, with a header; a replay sends the same messages in the
//! same order with the recorded gaps (halved at 2×), loops, starts at `--from`, and replays a
//! cut or corrupt file up to the damage, naming its byte offset. Send times are the kernel's
//! receive timestamps on loopback (`common::stamped`); the 1× replay's timing error is held to
//! a bound a loaded machine keeps (its figure is measured by benches/record_replay.rs), gap
//! ratios at 2× are compared statistically.
//!
//! One recording of 20 s (the length) is made once and shared; replays run one at a
//! time so they do not disturb each other's timing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::stamped::StampedListener;

use rosc::{OscMessage, OscTime};
use vj::osc::recording::{self, Entry, Header, Reader};

const RECORD_SECS: u64 = 20;

/// Every OSC message that reaches a UDP socket, with when the kernel received it (on loopback,
/// when it was sent; `common::stamped`), until stopped.
struct Listener {
    addr: String,
    inner: StampedListener,
}

impl Listener {
    fn bind() -> Listener {
        let inner = StampedListener::bind();
        Listener {
            addr: inner.addr.clone(),
            inner,
        }
    }

    fn finish(self) -> Vec<(Duration, OscMessage)> {
        let mut got = Vec::new();
        for d in self.inner.finish(Duration::ZERO) {
            for m in vj::osc::decode_messages(&d.bytes).unwrap() {
                got.push((d.at, m));
            }
        }
        got
    }
}

/// vj-status with the test dir's config and bus dir.
fn vj_status(dir: &Path) -> Command {
    let mut c = common::worker_command(env!("CARGO_BIN_EXE_vj-status"), dir);
    c.stdin(Stdio::null());
    c
}

fn interrupt(child: &Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
}

/// What every test reads: the recording and what the visuals got while it was made.
struct Show {
    dir: PathBuf,
    file: PathBuf,
    out: Output,
    /// Everything the visuals' target received while the recorder ran.
    live: Vec<OscMessage>,
    /// A second recorder, of two prefixes, ended by Ctrl-C after 3 s.
    interrupted: (PathBuf, Output),
    /// A third, stopped (SIGSTOP) for 6 s in the middle.
    stalled: (PathBuf, Output),
}

fn show() -> &'static Show {
    static SHOW: OnceLock<Show> = OnceLock::new();
    SHOW.get_or_init(record_the_demo)
}

fn record_the_demo() -> Show {
    // Kept to the end of the test process: every test reads the files.
    let dir = tempfile::tempdir().unwrap().keep();
    for d in ["bus", "state", "cache", "config"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let debugger = common::free_udp_port();
    let visuals = Listener::bind();
    std::fs::write(
        dir.join("vj.toml"),
        format!(
            "[osc]\ntargets = [\"127.0.0.1:{debugger}\", \"{}\"]\nroutes = []\n\
             [osc_debugger]\nlisten = \"127.0.0.1:{debugger}\"\n[audio]\nsource = \"demo\"\n",
            visuals.addr
        ),
    )
    .unwrap();
    let spawn = |bin: &str| {
        common::worker_command(bin, &dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut oscdebug = spawn(env!("CARGO_BIN_EXE_vj-oscdebug"));
    let mut audio = spawn(env!("CARGO_BIN_EXE_vj-audio"));
    let up = common::wait_until(Duration::from_secs(20), || {
        let r = common::try_request(
            &dir.join("bus/osc_debugger.sock"),
            &serde_json::json!({"type": "command", "cmd": "get_stats"}),
        );
        r.is_ok_and(|r| r["data"]["messages"].as_u64() > Some(500))
    });
    assert!(up, "the demo loop never reached the debugger");

    let file = dir.join("show.osc.zst");
    let main = vj_status(&dir)
        .args(["record", file.to_str().unwrap(), "--for"])
        .arg(format!("{RECORD_SECS}s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let two = dir.join("two.osc.zst");
    let second = vj_status(&dir)
        .args(["record", two.to_str().unwrap()])
        .args(["--prefix", "/audio/beat", "--prefix", "/audio/bpm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let slow = dir.join("slow.osc.zst");
    let third = vj_status(&dir)
        .args(["record", slow.to_str().unwrap(), "--for", "9s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = |c: &Child| rustix::process::Pid::from_raw(c.id() as i32).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    rustix::process::kill_process(pid(&third), rustix::process::Signal::STOP).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    interrupt(&second);
    std::thread::sleep(Duration::from_secs(5));
    rustix::process::kill_process(pid(&third), rustix::process::Signal::CONT).unwrap();
    let second = second.wait_with_output().unwrap();
    let third = third.wait_with_output().unwrap();
    let out = main.wait_with_output().unwrap();
    for child in [&mut audio, &mut oscdebug] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let live = visuals.finish().into_iter().map(|(_, m)| m).collect();
    Show {
        dir,
        file,
        out,
        live,
        interrupted: (two, second),
        stalled: (slow, third),
    }
}

/// The recording's header and entries (notes left out), and its damage if any.
fn read(path: &Path) -> (Option<Header>, Vec<Entry>, Option<recording::Damage>) {
    let reader = Reader::new(std::fs::File::open(path).unwrap()).unwrap();
    let (mut header, mut entries, mut damage) = (None, Vec::new(), None);
    for e in reader {
        match e {
            Ok(e) if header.is_none() && entries.is_empty() && Header::from_entry(&e).is_some() => {
                header = Header::from_entry(&e)
            }
            Ok(e) if e.is_note() => {}
            Ok(e) => entries.push(e),
            Err(d) => damage = Some(d),
        }
    }
    (header, entries, damage)
}

fn messages(entries: &[Entry]) -> Vec<OscMessage> {
    entries.iter().flat_map(|e| e.messages.clone()).collect()
}

/// Replays run one at a time: two at once would disturb each other's timing.
static REPLAYS: Mutex<()> = Mutex::new(());

/// Runs `vj-status replay FILE --to <a listener> args…` to its end; its output and what arrived.
fn replay(file: &Path, args: &[&str]) -> (Output, Vec<(Duration, OscMessage)>) {
    let _one = REPLAYS.lock().unwrap_or_else(|e| e.into_inner());
    let l = Listener::bind();
    let out = vj_status(&show().dir)
        .arg("replay")
        .arg(file)
        .args(["--to", &l.addr])
        .args(args)
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    (out, l.finish())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Seconds from `t0` to `t`.
fn secs(t: OscTime, t0: OscTime) -> f64 {
    recording::offset(t, t0).unwrap().as_secs_f64()
}

/// Where `part` sits inside `whole` as one contiguous run.
fn find_run(whole: &[OscMessage], part: &[OscMessage]) -> Option<usize> {
    (0..=whole.len().checked_sub(part.len())?).find(|&i| whole[i..i + part.len()] == *part)
}

/// Each bundle's timetag and when its first message arrived (arrivals matched to bundles by
/// position: the replay sent the same messages in the same order).
fn arrivals(entries: &[Entry], got: &[(Duration, OscMessage)]) -> Vec<(OscTime, Duration)> {
    let mut out = Vec::new();
    let mut i = 0;
    for e in entries {
        if i >= got.len() {
            break;
        }
        out.push((e.time, got[i].0));
        i += e.messages.len();
    }
    out
}

/// (recorded, on arrival) lengths of the gaps between consecutive bundles at least `min` s
/// apart when recorded (the analysis frames).
fn gaps(times: &[(OscTime, Duration)], min: f64) -> Vec<(f64, f64)> {
    times
        .windows(2)
        .map(|w| (secs(w[1].0, w[0].0), (w[1].1 - w[0].1).as_secs_f64()))
        .filter(|(rec, _)| *rec >= min)
        .collect()
}

/// The same for stretches of at least `len` s of the recording, one after the other.
fn stretches(times: &[(OscTime, Duration)], len: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut from = times[0];
    for &t in &times[1..] {
        let rec = secs(t.0, from.0);
        if rec >= len {
            out.push((rec, (t.1 - from.1).as_secs_f64()));
            from = t;
        }
    }
    out
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn the_recording_holds_what_the_visuals_got_live_with_a_header() {
    let s = show();
    assert!(s.out.status.success(), "{}", text(&s.out.stderr));
    let summary = text(&s.out.stdout);
    assert!(summary.contains(", 0 missed"), "{summary}");
    let (header, entries, damage) = read(&s.file);
    assert_eq!(damage, None);
    let header = header.expect("a header first");
    assert_eq!(
        header.suite,
        format!("vj-suite {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(header.prefixes.is_empty());
    // The config in effect, as TOML: this test's targets, and the defaults beside them.
    let config: toml::Table = header.config.parse().unwrap();
    assert_eq!(config["audio"]["source"].as_str(), Some("demo"));
    assert!(config["lyrics"]["lrclib_url"].is_str());

    let recorded = messages(&entries);
    // 87 frames a second of up to eleven messages: thousands, every /audio address there.
    assert!(
        recorded.len() > RECORD_SECS as usize * 80 * 5,
        "{}",
        recorded.len()
    );
    for addr in [
        "/audio/levels",
        "/audio/spectrum",
        "/audio/beat",
        "/audio/bpm",
        "/audio/phase",
    ] {
        assert!(recorded.iter().any(|m| m.addr == addr), "no {addr}");
    }
    // Exactly what the visuals received, in the same order, nothing lost or added.
    assert!(
        find_run(&s.live, &recorded).is_some(),
        "the recording ({} messages) is not a run of what the visuals got ({})",
        recorded.len(),
        s.live.len()
    );
    // Timetags: in order, spanning the recording's length.
    assert!(entries
        .windows(2)
        .all(|w| secs(w[1].time, w[0].time) >= 0.0));
    let span = secs(entries.last().unwrap().time, header.started);
    assert!(
        (RECORD_SECS as f64 - 1.0..RECORD_SECS as f64 + 1.0).contains(&span),
        "{span}"
    );
}

#[test]
fn other_tools_read_it_with_zstd_and_slip() {
    let s = show();
    // `zstd -d`, then split on SLIP END bytes and unescape: OSC bundles, the first the header.
    let out = Command::new("zstd")
        .args(["-d", "-c"])
        .arg(&s.file)
        .output()
        .expect("zstd (scripts/deps.sh --test installs it)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut packets = Vec::new();
    for raw in out.stdout.split(|&b| b == 0xC0).filter(|p| !p.is_empty()) {
        let mut p = Vec::with_capacity(raw.len());
        let mut esc = false;
        for &b in raw {
            match (esc, b) {
                (false, 0xDB) => esc = true,
                (true, 0xDC) => (p.push(0xC0), esc = false).1,
                (true, 0xDD) => (p.push(0xDB), esc = false).1,
                (_, b) => p.push(b),
            }
        }
        packets.push(rosc::decoder::decode_udp(&p).unwrap().1);
    }
    let rosc::OscPacket::Bundle(first) = &packets[0] else {
        panic!("not a bundle: {:?}", packets[0])
    };
    let rosc::OscPacket::Message(m) = &first.content[0] else {
        panic!()
    };
    assert_eq!(m.addr, "/vj/recording");
    let (_, entries, _) = read(&s.file);
    assert_eq!(packets.len(), entries.len() + 1);
    assert!(packets
        .iter()
        .all(|p| matches!(p, rosc::OscPacket::Bundle(b) if b.timetag.seconds > 3_900_000_000)));
}

#[test]
fn a_replay_sends_the_same_messages_in_the_same_order_with_their_timing() {
    let s = show();
    let (_, entries, _) = read(&s.file);
    let (out, got) = replay(&s.file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent: Vec<OscMessage> = got.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(sent.len(), messages(&entries).len());
    assert!(
        sent == messages(&entries),
        "not the same messages in the same order"
    );
    // Timing: each bundle's first message, as the kernel received it, against its timetag,
    // less the median offset (when the replay began is no error).
    let (t0, a0) = (entries[0].time, got[0].0);
    let mut i = 0;
    let mut offsets = Vec::new();
    for e in &entries {
        let want = secs(e.time, t0);
        let was = got[i].0.as_secs_f64() - a0.as_secs_f64();
        offsets.push((was - want) * 1000.0);
        i += e.messages.len();
    }
    let median = quantile(offsets.clone(), 0.5);
    let errors: Vec<f64> = offsets.iter().map(|o| (o - median).abs()).collect();
    let p99 = quantile(errors.clone(), 0.99);
    let err = text(&out.stderr);
    let realtime = !err.contains("without real-time priority");
    eprintln!(
        "replay timing error over {} bundles (real-time: {realtime}): p50 {:.3} ms, p99 {p99:.3} \
         ms, max {:.3} ms",
        errors.len(),
        quantile(errors.clone(), 0.5),
        quantile(errors, 1.0)
    );
    // The aim is p99 ≤ 1 ms; benches/record_replay.rs measures it (docs/BENCHMARKS.md:
    // 0.1-0.6 ms from a real-time sender on this shared machine, up to 2.6 ms while the
    // other engineers' linkers ran). Held here to what a loaded machine keeps: with a
    // real-time sender (root, or an rtprio limit) 3 ms; without one, where a scheduler tick
    // (4 ms at HZ=250) is the usual delay under load, one analysis frame (11.6 ms), past which
    // visuals would show frames out of step.
    let bound = if realtime { 3.0 } else { 11.6 };
    assert!(p99 <= bound, "p99 {p99:.3} ms > {bound} ms; {err}");
    assert!(
        text(&out.stdout).contains("replayed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn double_speed_halves_every_gap() {
    let s = show();
    let (_, entries, _) = read(&s.file);
    let (out, got) = replay(&s.file, &["--speed", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(got.len(), messages(&entries).len());
    // The analysis frames, 11.6 ms apart when recorded: each gap on arrival over the recorded.
    let times = arrivals(&entries, &got);
    let frames = gaps(&times, 0.005);
    assert!(frames.len() > 500, "{}", frames.len());
    let ratios: Vec<f64> = frames.iter().map(|(rec, arr)| arr / rec).collect();
    let median = quantile(ratios.clone(), 0.5);
    eprintln!(
        "2x: frame gap ratio median {median:.3}, quartiles {:.3} {:.3}",
        quantile(ratios.clone(), 0.25),
        quantile(ratios, 0.75)
    );
    assert!((0.45..0.55).contains(&median), "median gap ratio {median}");
    // Single gaps move by a scheduler's milliseconds on a busy machine; every stretch of a
    // second of the recording is halved all the same (at 1× they would all be near 1).
    let seconds = stretches(&times, 1.0);
    let ratios: Vec<f64> = seconds.iter().map(|(rec, arr)| arr / rec).collect();
    eprintln!("2x: one-second stretches {ratios:.3?}");
    assert!(ratios.len() >= 8, "{ratios:?}");
    let off = ratios.iter().filter(|r| (*r - 0.5).abs() > 0.05).count();
    assert!(off <= ratios.len() / 10, "{ratios:?}");
    // And the whole: half the recorded span.
    let rec = secs(entries.last().unwrap().time, entries[0].time);
    let arr = (got.last().unwrap().0 - got[0].0).as_secs_f64();
    assert!((arr / rec - 0.5).abs() < 0.05, "{arr} s for {rec} s");
}

#[test]
fn from_starts_that_far_into_the_recording() {
    let s = show();
    let (header, entries, _) = read(&s.file);
    let start = header.unwrap().started;
    let after: Vec<&Entry> = entries
        .iter()
        .filter(|e| secs(e.time, start) >= 7.0)
        .collect();
    let (out, got) = replay(&s.file, &["--from", "0:07", "--speed", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want: Vec<OscMessage> = after.iter().flat_map(|e| e.messages.clone()).collect();
    let sent: Vec<OscMessage> = got.into_iter().map(|(_, m)| m).collect();
    assert!(!want.is_empty());
    assert!(
        sent == want,
        "{} sent, {} after 0:07",
        sent.len(),
        want.len()
    );
}

#[test]
fn loop_starts_again_at_the_end_until_ctrl_c() {
    let s = show();
    let (header, entries, _) = read(&s.file);
    let start = header.unwrap().started;
    // The last two seconds at 4×: a pass every half second.
    let from = RECORD_SECS as f64 - 2.0;
    let pass: Vec<OscMessage> = entries
        .iter()
        .filter(|e| secs(e.time, start) >= from)
        .flat_map(|e| e.messages.clone())
        .collect();
    let _one = REPLAYS.lock().unwrap_or_else(|e| e.into_inner());
    let l = Listener::bind();
    let child = vj_status(&s.dir)
        .arg("replay")
        .arg(&s.file)
        .args(["--to", &l.addr, "--loop", "--speed", "4", "--from"])
        .arg(format!("{from}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2200));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let sent: Vec<OscMessage> = l.finish().into_iter().map(|(_, m)| m).collect();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("(stopped)"), "{summary}");
    // Whole passes, each the same from its first message, then the one Ctrl-C cut.
    let whole = sent.len() / pass.len();
    assert!(whole >= 2, "{} messages, {} a pass", sent.len(), pass.len());
    for k in 0..whole {
        assert!(
            sent[k * pass.len()..(k + 1) * pass.len()] == pass[..],
            "pass {k}"
        );
    }
    let rest = &sent[whole * pass.len()..];
    assert!(rest == &pass[..rest.len()]);
}

#[test]
fn a_cut_file_replays_up_to_the_cut_and_names_the_offset() {
    let s = show();
    let (_, entries, _) = read(&s.file);
    let all = messages(&entries);
    let bytes = std::fs::read(&s.file).unwrap();
    let cut_at = bytes.len() / 2;
    let cut = s.dir.join("cut.osc.zst");
    std::fs::write(&cut, &bytes[..cut_at]).unwrap();
    let (out, got) = replay(&cut, &["--speed", "4"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Where the last whole zstd frame ends, and where the file does.
    assert!(err.contains("stopped at byte "), "{err}");
    assert!(
        err.contains(&format!("the file ends at byte {cut_at} ")),
        "{err}"
    );
    let sent: Vec<OscMessage> = got.into_iter().map(|(_, m)| m).collect();
    // Everything up to the cut: a good share of the file, in order, and nothing after it.
    assert!(
        sent.len() > all.len() / 4,
        "{} of {}",
        sent.len(),
        all.len()
    );
    assert!(sent.len() < all.len());
    assert!(sent[..] == all[..sent.len()]);

    // Bytes changed in the middle: replayed up to the frame they are in (a second at most),
    // whose start is named.
    let mut bad = bytes.clone();
    let at = bytes.len() / 2;
    for b in &mut bad[at..at + 200] {
        *b = !*b;
    }
    let corrupt = s.dir.join("corrupt.osc.zst");
    std::fs::write(&corrupt, &bad).unwrap();
    let (out, got) = replay(&corrupt, &["--speed", "4"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let offset: u64 = err
        .split("stopped at byte ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {err}"));
    assert!(
        offset <= at as u64 && offset + 256 * 1024 > at as u64,
        "{err}"
    );
    let sent: Vec<OscMessage> = got.into_iter().map(|(_, m)| m).collect();
    assert!(!sent.is_empty() && sent.len() < all.len());
    assert!(sent[..] == all[..sent.len()]);
}

#[test]
fn ctrl_c_ends_a_recording_cleanly_with_only_its_prefixes() {
    let s = show();
    let (file, out) = &s.interrupted;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (header, entries, damage) = read(file);
    assert_eq!(
        damage, None,
        "a complete file: the last frame and zstd's end"
    );
    assert_eq!(header.unwrap().prefixes, ["/audio/beat", "/audio/bpm"]);
    let recorded = messages(&entries);
    assert!(recorded.len() > 300, "{}", recorded.len());
    assert!(recorded
        .iter()
        .all(|m| m.addr == "/audio/beat" || m.addr == "/audio/bpm"));
    assert!(recorded.iter().any(|m| m.addr == "/audio/bpm"));
}

#[test]
fn a_recorder_that_falls_behind_says_what_it_lost_and_marks_it() {
    let s = show();
    let (file, out) = &s.stalled;
    // Stopped for 5 s, the debugger's 1000 messages (0.8 s) and the socket's buffer ran out.
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("were lost before they were recorded"), "{err}");
    let reader = Reader::new(std::fs::File::open(file).unwrap()).unwrap();
    let marks: Vec<Entry> = reader
        .map(Result::unwrap)
        .filter(|e| {
            e.messages
                .iter()
                .any(|m| m.addr == recording::MISSED_ADDRESS)
        })
        .collect();
    assert_eq!(marks.len(), 1, "{marks:?}");
    let summary = text(&out.stdout);
    assert!(!summary.contains(", 0 missed"), "{summary}");
    // The replay tells where the gap is.
    let (out, _) = replay(file, &["--speed", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the recording lacks"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn liblo_reads_a_replay_as_the_suite_sent_it() {
    let s = show();
    let (header, entries, _) = read(&s.file);
    let start = header.unwrap().started;
    let from = RECORD_SECS as f64 - 1.0;
    let want: Vec<String> = entries
        .iter()
        .filter(|e| secs(e.time, start) >= from)
        .flat_map(|e| &e.messages)
        .map(|m| format!("{} {}", m.addr, vj::osc::type_tags(&m.args)))
        .collect();
    let _one = REPLAYS.lock().unwrap_or_else(|e| e.into_inner());
    let port = common::free_udp_port();
    let mut dump = Command::new("oscdump")
        .args(["-L", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oscdump (Debian package liblo-tools; make test installs it)");
    let lines = dump.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(lines)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    // oscdump binds, then the replay starts.
    std::thread::sleep(Duration::from_millis(500));
    let out = vj_status(&s.dir)
        .arg("replay")
        .arg(&s.file)
        .args(["--to", &format!("127.0.0.1:{port}"), "--from"])
        .arg(format!("{from}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let _ = dump.kill();
    let _ = dump.wait();
    // oscdump prints `<address> <types> <args…>`, possibly after a timestamp.
    let got: Vec<String> = reader
        .join()
        .unwrap()
        .iter()
        .map(|l| {
            let l = &l[l.find('/').unwrap_or(0)..];
            l.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ")
        })
        .collect();
    assert!(!want.is_empty());
    assert!(
        got == want,
        "{} lines from oscdump, {} messages sent",
        got.len(),
        want.len()
    );
}
