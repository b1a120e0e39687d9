//! A second Ableton Link peer for the tests (tests/link.rs), on the same binding vj-audio uses,
//! run inside the test's network namespace. It joins the session, then either leads it at a
//! tempo (`lead BPM`) or only watches it (`watch`), and meanwhile listens for vj-audio's OSC
//! on `PORT` and measures each message against its own view of the session's timeline, on
//! Link's clock: where in the beat each `/audio/beat` arrived, whether `/audio/count`'s beat
//! in bar is the session's, where in the quantum each downbeat arrived. After `SECS` it
//! leaves the session and prints one JSON object.
//!
//!   link_peer lead BPM|watch --port PORT --secs SECS [--quantum Q] [--wait-peer]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use rusty_link::{AblLink, SessionState};
use serde_json::json;

struct Args {
    lead: Option<f64>,
    port: u16,
    secs: f64,
    quantum: f64,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let lead = match it.next().as_deref() {
        Some("lead") => Some(it.next().and_then(|b| b.parse().ok()).expect("lead BPM")),
        Some("watch") => None,
        _ => panic!("usage: link_peer lead BPM|watch --port PORT --secs SECS [--quantum Q]"),
    };
    let mut a = Args {
        lead,
        port: 0,
        secs: 10.0,
        quantum: 4.0,
    };
    while let Some(flag) = it.next() {
        let v = it.next().expect("a value after each flag");
        match flag.as_str() {
            "--port" => a.port = v.parse().expect("--port"),
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--quantum" => a.quantum = v.parse().expect("--quantum"),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// The signed distance from `x` to the nearest multiple of `m`.
fn off_grid(x: f64, m: f64) -> f64 {
    x - (x / m).round() * m
}

fn main() {
    let a = args();
    let q = a.quantum;
    let socket = UdpSocket::bind(("127.0.0.1", a.port)).expect("bind the OSC port");
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let link = AblLink::new(a.lead.unwrap_or(100.0));
    link.enable(true);
    let mut state = SessionState::new();
    let start = Instant::now();
    let (mut max_peers, mut first_peer) = (0, None);
    // (seconds since start, session tempo), every 100 ms.
    let mut tempos: Vec<(f64, f64)> = Vec::new();
    // (seconds since start, ms from the session's beat / quantum's beat 0) per arrival; a
    // downbeat also with how many beats before it vj-audio counted in order (1, 2, 3, 4, 1…):
    // its bar has been steady that long.
    let mut beat_ms: Vec<(f64, f64)> = Vec::new();
    // The same for each `/audio/kick` hit, with its strength: the drum detector's, not the
    // beat tracker's — the music's own beats (on a four-on-the-floor clip) against the session's.
    let mut kick_ms: Vec<(f64, f64, f64)> = Vec::new();
    let mut downbeat_ms: Vec<(f64, f64, u64)> = Vec::new();
    let (mut last_count, mut in_order) = (0i64, 0u64);
    let (mut counts, mut counts_right) = (0, 0);
    let mut bpms: Vec<(f64, f64)> = Vec::new();
    let mut buf = [0u8; 2048];
    let mut last_sample = 0.0;
    while start.elapsed().as_secs_f64() < a.secs {
        if let Ok(n) = socket.recv(&mut buf) {
            let host = link.clock_micros();
            link.capture_app_session_state(&mut state);
            let period_ms = 60_000.0 / state.tempo();
            let at = start.elapsed().as_secs_f64();
            for m in vj::osc::decode(&buf[..n]).unwrap_or_default() {
                let int = |i: usize| m.args.get(i).and_then(|v| v.as_i64()).unwrap_or(0);
                let beat = state.beat_at_time(host, q);
                match m.address.as_str() {
                    "/audio/beat" if int(0) == 1 => {
                        beat_ms.push((at, off_grid(beat, 1.0) * period_ms));
                    }
                    "/audio/kick" if int(0) == 1 => {
                        let strength = m.args.get(1).and_then(|v| v.as_f64()).unwrap_or(0.0);
                        kick_ms.push((at, off_grid(beat, 1.0) * period_ms, strength));
                    }
                    "/audio/count" => {
                        counts += 1;
                        let want = (beat.round() as i64).rem_euclid(q as i64) + 1;
                        if int(0) == want {
                            counts_right += 1;
                        }
                        let c = int(0);
                        in_order = if c == last_count % q as i64 + 1 {
                            in_order + 1
                        } else {
                            0
                        };
                        last_count = c;
                        if c == 1 {
                            downbeat_ms.push((at, off_grid(beat, q) * period_ms, in_order));
                        }
                    }
                    "/audio/bpm" => {
                        if let Some(b) = m.args.first().and_then(|v| v.as_f64()) {
                            if bpms.last().is_none_or(|l| (l.1 - b).abs() > 0.05) {
                                bpms.push((at, b));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let t = start.elapsed().as_secs_f64();
        if t - last_sample >= 0.1 {
            last_sample = t;
            link.capture_app_session_state(&mut state);
            let peers = link.num_peers();
            max_peers = max_peers.max(peers);
            if peers > 0 && first_peer.is_none() {
                first_peer = Some(t);
            }
            if let Some(bpm) = a.lead {
                // The DJ's tempo: whatever the session had when we joined, ours wins.
                if (state.tempo() - bpm).abs() > 1e-6 {
                    state.set_tempo(bpm, link.clock_micros());
                    link.commit_app_session_state(&state);
                }
            }
            tempos.push((t, state.tempo()));
        }
    }
    link.enable(false);
    println!(
        "{}",
        json!({
            "max_peers": max_peers,
            "first_peer": first_peer,
            "tempos": tempos,
            "bpms": bpms,
            "beat_ms": beat_ms,
            "kick_ms": kick_ms,
            "downbeat_ms": downbeat_ms,
            "counts": counts,
            "counts_right": counts_right,
        })
    );
}
