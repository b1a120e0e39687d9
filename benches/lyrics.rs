//! Lyrics fetcher speed: LRC parsing and song analysis (criterion), then the real `vj-lyrics`
//! binary end to end — /karaoke/track to the last /karaoke/lyrics/line (cold over HTTP from a
//! local LRCLIB double, warm from the disk cache), the active-line timing error against the LRC
//! stamps with positions once a second (p50/p99), and idle RSS.
//!
//! `cargo bench --bench lyrics` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use rosc::{encoder, OscMessage, OscPacket};
use serde_json::json;
use tokio::net::UdpSocket;
use vj::karaoke::{position_message, track_message, NowPlaying, Position};
use vj::lyrics::{lrc, Entry, Song};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A song of `n` lines at irregular gaps (200–900 ms), with a refrain every fourth line.
fn synthetic_lrc(n: usize) -> (String, Vec<u64>) {
    let mut text = String::from("[ar:Bench]\n[ti:Bench Song]\n");
    let mut stamps = Vec::new();
    let mut ms = 700u64;
    for i in 0..n {
        let line = if i % 4 == 3 {
            "Light up the night, we are the fire".to_string()
        } else {
            format!("Verse line number {i} about dancing in the moonlight")
        };
        text.push_str(&format!(
            "[{:02}:{:02}.{:02}]{line}\n",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000 / 10
        ));
        stamps.push(ms - ms % 10);
        ms += 200 + (i as u64 * 7919 % 700);
    }
    (text, stamps)
}

fn parsing(c: &mut Criterion) {
    let (text, _) = synthetic_lrc(80);
    c.bench_function("lrc_parse_80_lines", |b| {
        b.iter(|| lrc::parse(black_box(&text)))
    });
    let entry = Entry {
        found: true,
        synced: Some(text.clone()),
        ..Entry::miss("Bench", "Bench Song")
    };
    c.bench_function("song_analyse_and_announce_80_lines", |b| {
        b.iter(|| Song::from_entry(black_box(&entry)).announce().len())
    });
}

struct Worker {
    _dir: tempfile::TempDir,
    child: Child,
    listen: SocketAddr,
    receiver: UdpSocket,
    sender: UdpSocket,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    async fn start(lrclib_url: &str) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A burst of ~130 datagrams per song: give the receiver room (root may force it).
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&receiver, 8 << 20);
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        std::fs::write(
            dir.path().join("vj.toml"),
            format!(
                "[osc]\ntargets = [\"{}\"]\n[[osc.routes]]\nprefix = \"/karaoke/track\"\ntargets = [\"{listen}\"]\n[[osc.routes]]\nprefix = \"/karaoke/pos\"\ntargets = [\"{listen}\"]\n\
                 [lyrics]\nlisten = \"{listen}\"\nlrclib_url = \"{lrclib_url}\"\n",
                receiver.local_addr().unwrap()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vj-lyrics"))
            .env("HOME", dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("VJ_BUS_DIR", dir.path().join("bus"))
            .env("VJ_CONFIG", dir.path().join("vj.toml"))
            .env("RUST_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .stderr(
                std::fs::File::create(std::env::temp_dir().join("vj-lyrics-bench.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .unwrap();
        let sock = dir.path().join("bus/lyrics_fetcher.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while vj::bus::client::Client::connect(&sock).await.is_err() {
            assert!(Instant::now() < deadline, "vj-lyrics did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut c = vj::bus::client::Client::connect(&sock).await.unwrap();
        c.request("get_state", Default::default()).await.unwrap();
        Worker {
            _dir: dir,
            child,
            listen,
            receiver,
            sender: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    async fn send(&self, msg: OscMessage) {
        let bytes = encoder::encode(&OscPacket::Message(msg)).unwrap();
        self.sender.send_to(&bytes, self.listen).await.unwrap();
    }

    /// Next message and when it arrived.
    async fn next(&self) -> (Instant, vj::osc::CapturedMessage) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(20), self.receiver.recv_from(&mut buf))
                    .await
                    .expect("vj-lyrics went quiet")
                    .unwrap();
            let at = Instant::now();
            if let Some(m) = vj::osc::decode(&buf[..n]).unwrap().into_iter().next() {
                return (at, m);
            }
        }
    }

    /// Sends a track change; returns the time until its `lines`-th lyrics line arrived.
    async fn track_to_last_line(&self, title: &str, lines: usize) -> Duration {
        let track = NowPlaying {
            source: "bench".into(),
            artist: "Bench".into(),
            title: title.into(),
            album: "Album".into(),
            duration_s: 200.0,
            has_lyrics: false,
        };
        let t0 = Instant::now();
        self.send(track_message(Some(&track))).await;
        let mut seen_reset = false;
        let mut count = 0;
        let mut took = Duration::ZERO;
        loop {
            let (at, m) = self.next().await;
            match m.address.as_str() {
                "/karaoke/lyrics/reset" => seen_reset = true,
                "/karaoke/lyrics/line" if seen_reset => {
                    count += 1;
                    if count == lines {
                        took = at - t0;
                    }
                }
                // Sent after every line: this song is done.
                "/karaoke/track" if seen_reset => {
                    assert_eq!(count, lines, "datagrams lost on the way to the receiver");
                    return took;
                }
                _ => {}
            }
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A local server answering like LRCLIB with one synced song for every lookup.
async fn lrclib_serving(synced: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 1, "trackName": "t", "artistName": "Bench", "albumName": "Album",
            "duration": 200.0, "instrumental": false, "plainLyrics": "x", "syncedLyrics": synced,
        })))
        .mount(&server)
        .await;
    server
}

fn end_to_end(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    const LINES: usize = 60;
    let (text, _) = synthetic_lrc(LINES);
    let server = rt.block_on(lrclib_serving(&text));
    let worker = rt.block_on(Worker::start(&server.uri()));
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = worker.rss_kib();

    let mut group = c.benchmark_group("track_to_last_lyrics_line_60");
    let mut n = 0u64;
    group.bench_function("cold_http", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += worker.track_to_last_line(&format!("Cold {n}"), LINES).await;
                }
                total
            })
        })
    });
    rt.block_on(async {
        worker.track_to_last_line("Warm A", LINES).await;
        worker.track_to_last_line("Warm B", LINES).await;
    });
    // Alternate across calls, not within one: criterion calls with iters = 1 many times, and the
    // same title twice in a row is no track change (the worker rightly stays quiet).
    let mut k = 0u64;
    group.bench_function("warm_cache", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    k += 1;
                    let title = if k % 2 == 0 { "Warm B" } else { "Warm A" };
                    total += worker.track_to_last_line(title, LINES).await;
                }
                total
            })
        })
    });
    group.finish();
    let busy_rss = worker.rss_kib();
    println!(
        "idle RSS after start: {idle_rss} KiB; after {n} cold and many warm songs: {busy_rss} KiB"
    );
}

/// Plays one song with exact positions once a second and measures when each active line
/// arrives against its LRC stamp.
fn active_line_error(rt: &tokio::runtime::Runtime) {
    const LINES: usize = 80;
    let (text, stamps) = synthetic_lrc(LINES);
    rt.block_on(async {
        let server = lrclib_serving(&text).await;
        let worker = Worker::start(&server.uri()).await;
        worker.track_to_last_line("Timing", LINES).await;
        let end = Duration::from_millis(stamps[LINES - 1] + 300);
        let t0 = Instant::now();
        let positions = async {
            let mut s = 0u64;
            while Duration::from_secs(s) < end {
                tokio::time::sleep_until((t0 + Duration::from_secs(s)).into()).await;
                // The position at the moment of sending, as a player reports it.
                let pos = t0.elapsed().as_secs_f32();
                worker.send(position_message(Position { seconds: pos, playing: true })).await;
                s += 1;
            }
        };
        let receive = async {
            let mut errors = Vec::new();
            while errors.len() < LINES {
                let (at, m) = worker.next().await;
                if m.address == "/karaoke/line/active" {
                    let i = m.args[0].as_i64().unwrap();
                    if i >= 0 {
                        let due = t0 + Duration::from_millis(stamps[i as usize]);
                        let err_ms = if at >= due {
                            (at - due).as_secs_f64() * 1000.0
                        } else {
                            -((due - at).as_secs_f64() * 1000.0)
                        };
                        errors.push(err_ms);
                    }
                }
            }
            errors
        };
        let ((), mut errors) = tokio::join!(positions, receive);
        errors.sort_by(f64::total_cmp);
        println!(
            "active-line timing error over {} lines (positions once a second): p50 {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms",
            errors.len(),
            percentile(&errors, 0.5),
            percentile(&errors, 0.99),
            errors[0],
            errors[errors.len() - 1]
        );
        println!("idle RSS after one song: {} KiB", worker.rss_kib());
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    parsing(&mut c);
    active_line_error(&rt);
    end_to_end(&mut c, &rt);
    c.final_summary();
}
