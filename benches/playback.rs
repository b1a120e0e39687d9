//! Playback monitors: VirtualDJ parsing (criterion), then, with the real release binaries,
//! the time from a file write to the `/karaoke/track` packet (p50/p99) and idle CPU / RSS of
//! vj-virtualdj and vj-spotify while nothing changes. Figures go to docs/BENCHMARKS.md.

use std::fmt::Write as _;
use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use vj::playback::virtualdj::parse_played;

fn tracklist(lines: usize) -> String {
    let mut s = String::from("VirtualDJ History 2024/01/15\n------------------------------\n");
    for i in 0..lines {
        let _ = writeln!(
            s,
            "{:02}:{:02} : Artist {i} - Title {i}",
            (i / 60) % 24,
            i % 60
        );
    }
    s
}

fn m3u(entries: usize) -> String {
    let mut s = String::from("#EXTM3U\r\n");
    for i in 0..entries {
        let _ = write!(s, "#EXTVDJ:<time>21:03</time><lastplaytime>1705350180</lastplaytime><artist>Artist {i}</artist><title>Title {i}</title><remix>Extended Mix</remix><songlength>244.5</songlength>\r\nC:\\Music\\track{i}.mp3\r\n");
    }
    s
}

fn parsers(c: &mut Criterion) {
    let tail = tracklist(2000);
    let tail = &tail.as_bytes()[tail.len().saturating_sub(64 * 1024)..];
    c.bench_function("parse tracklist 64 KiB tail", |b| {
        b.iter(|| parse_played(black_box(tail)))
    });
    let hist = m3u(300);
    c.bench_function("parse m3u history (300 entries)", |b| {
        b.iter(|| parse_played(black_box(hist.as_bytes())))
    });
    c.bench_function("parse now_playing line", |b| {
        b.iter(|| parse_played(black_box(b"Daft Punk - One More Time".as_slice())))
    });
}

struct Worker(Child, tempfile::TempDir);
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, receiver: &UdpSocket, extra: &str) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vj.toml"),
        format!(
            "[osc]\ntargets = [\"{}\"]\nroutes = []\n{extra}",
            receiver.local_addr().unwrap()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("VJ_BUS_DIR", dir.path().join("bus"))
        .env("VJ_CONFIG", dir.path().join("vj.toml"))
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Worker(child, dir)
}

/// The binary built next to this bench (release when run by `cargo bench`).
fn binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join(name).display().to_string()
}

fn recv_track(rx: &UdpSocket, title: &str, deadline: Instant) -> Option<Instant> {
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok(n) = rx.recv(&mut buf) {
            let at = Instant::now();
            if let Ok(msgs) = vj::osc::decode(&buf[..n]) {
                if msgs.iter().any(|m| {
                    m.address == "/karaoke/track"
                        && m.args.get(3).and_then(|v| v.as_str()) == Some(title)
                }) {
                    return Some(at);
                }
            }
        }
    }
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Write → packet latency for `n` history appends.
fn write_to_packet(n: usize) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let log = files.path().join("tracklist.txt");
    std::fs::write(&log, "VirtualDJ History 2024/01/15\n------\n").unwrap();
    let _w = spawn(
        &binary("vj-virtualdj"),
        &rx,
        &format!("[virtualdj]\npath = \"{}\"\n", log.display()),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut lat = Vec::new();
    for i in 0..n {
        let title = format!("Title {i}");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let t0 = Instant::now();
        writeln!(f, "12:00 : Artist - {title}").unwrap();
        drop(f);
        if let Some(at) = recv_track(&rx, &title, t0 + Duration::from_secs(2)) {
            lat.push((at - t0).as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "virtualdj write -> /karaoke/track: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms (lost {})",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap(),
        n - lat.len()
    );
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn idle(name: &str, extra: &str, setup: impl FnOnce(&Path)) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let w = spawn(&binary(name), &rx, extra);
    setup(w.1.path());
    std::thread::sleep(Duration::from_secs(2));
    let pid = w.0.id();
    let window = Duration::from_secs(20);
    let t0 = cpu_ticks(pid);
    std::thread::sleep(window);
    let ticks = cpu_ticks(pid) - t0;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    println!(
        "{name} idle over {}s: CPU {:.3}% ({} ticks), RSS {:.1} MB",
        window.as_secs(),
        ticks as f64 / hz / window.as_secs_f64() * 100.0,
        ticks,
        rss_kib(pid) as f64 / 1024.0
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    parsers(&mut c);
    c.final_summary();
    if !Path::new(&binary("vj-virtualdj")).exists() {
        println!("build the binaries first (cargo build --release --bins) for the process figures");
        return;
    }
    write_to_packet(300);
    let files = tempfile::tempdir().unwrap();
    let np = files.path().join("now_playing.txt");
    std::fs::write(&np, "").unwrap();
    idle(
        "vj-virtualdj",
        &format!("[virtualdj]\npath = \"{}\"\n", np.display()),
        |_| {},
    );
    idle("vj-spotify", "[spotify]\nsource = \"web_api\"\n", |_| {});
    idle("vj-spotify", "[spotify]\nsource = \"mpris\"\n", |_| {});
}
