//! OSCQuery's figures (docs/BENCHMARKS.md): HTTP GET latency (p50/p99 over N requests on one
//! kept-alive connection, and on a fresh connection each) and `LISTEN` values per second over a
//! WebSocket, against the real `vj-oscquery` binary, started by hand on free loopback ports.
//!
//! Several builds side by side in one run: `VJ_OSCQUERY_BINS="old=/path/a,new=/path/b"`
//! (default: this build's `vj-oscquery`). Prints a `report:` block; nothing is asserted.

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// GETs per figure.
const REQUESTS: usize = 2000;
/// How long the value stream is fed and counted.
const STREAM: Duration = Duration::from_secs(3);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    http: u16,
    osc: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (http, osc) = (free_port(), free_port());
    let config = dir.path().join("vj.toml");
    std::fs::write(
        &config,
        format!(
            "[osc]\ntargets = []\nroutes = []\n[oscquery]\nlisten = \"127.0.0.1:{http}\"\nosc_listen = \"127.0.0.1:{osc}\"\n"
        ),
    )
    .unwrap();
    let bus = dir.path().join("bus");
    let child = Command::new(bin)
        .env("VJ_CONFIG", &config)
        .env("VJ_BUS_DIR", &bus)
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let server = Server {
        child,
        http,
        osc,
        _dir: dir,
    };
    let end = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < end, "{bin} did not listen on {http}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn bpm_packet(bpm: f32) -> Vec<u8> {
    rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/audio/bpm".into(),
        args: vec![rosc::OscType::Float(bpm), rosc::OscType::Float(0.9)],
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// p50 and p99 of `REQUESTS` GETs of `path`; `fresh`: a new connection for each.
async fn get_latency(port: u16, path: &str, fresh: bool) -> (Duration, Duration) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let keep = reqwest::Client::new();
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let client = if fresh {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        } else {
            keep.clone()
        };
        let t = Instant::now();
        let r = client.get(&url).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let _ = r.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// Values per second a `LISTEN` client receives while `/audio/bpm` is fed as fast as UDP goes,
/// and how many were fed per second.
async fn listen_rate(server: &Server) -> (f64, f64) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.http))
        .await
        .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://127.0.0.1:{}/", server.http), tcp)
            .await
            .unwrap();
    ws.send(Message::text(
        r#"{"COMMAND":"LISTEN","DATA":"/audio/bpm"}"#.to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let osc = server.osc;
    let feeder = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (end, mut sent) = (Instant::now() + STREAM, 0u64);
        let packets: Vec<Vec<u8>> = (0..100).map(|i| bpm_packet(100.0 + i as f32)).collect();
        while Instant::now() < end {
            for p in &packets {
                if s.send_to(p, ("127.0.0.1", osc)).is_ok() {
                    sent += 1;
                }
            }
            // Let the server's single thread breathe: a flood the kernel drops measures nothing.
            std::thread::sleep(Duration::from_micros(200));
        }
        sent
    });
    let (start, mut got) = (Instant::now(), 0u64);
    let end = start + STREAM + Duration::from_millis(300);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(end.into(), ws.next()).await {
        if matches!(m, Message::Binary(_)) {
            got += 1;
        }
    }
    let sent = feeder.join().unwrap();
    let secs = STREAM.as_secs_f64();
    (got as f64 / secs, sent as f64 / secs)
}

fn main() {
    let bins = std::env::var("VJ_OSCQUERY_BINS")
        .unwrap_or_else(|_| format!("this={}", env!("CARGO_BIN_EXE_vj-oscquery")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("report: OSCQuery, {REQUESTS} GETs per figure, LISTEN fed for {STREAM:?}");
    for entry in bins.split(',').filter(|e| !e.is_empty()) {
        let (label, bin) = entry.split_once('=').unwrap_or(("this", entry));
        let server = start(bin);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(&bpm_packet(120.0), ("127.0.0.1", server.osc))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        rt.block_on(async {
            let (v50, v99) = get_latency(server.http, "/audio/bpm?VALUE", false).await;
            let (r50, r99) = get_latency(server.http, "/", false).await;
            let (f50, f99) = get_latency(server.http, "/audio/bpm?VALUE", true).await;
            let (got, fed) = listen_rate(&server).await;
            println!(
                "  {label:>5}: GET ?VALUE kept-alive p50 {v50:?} p99 {v99:?} | GET / (whole namespace) p50 {r50:?} p99 {r99:?} | GET ?VALUE new connection p50 {f50:?} p99 {f99:?} | LISTEN {got:.0} values/s received of {fed:.0}/s fed"
            );
        });
    }
}
