//! vj-oscquery against a hostile neighbour on the same machine (SPEC section 9, TESTING.md "A
//! hostile neighbour"): what a web page the VJ opens, or any local process, can throw at its
//! HTTP port and OSC input — foreign Host and Origin, hundreds of idle connections, a 16 MiB
//! WebSocket message, thousands of junk addresses — and what a real client still gets. The
//! clients include ones nobody here wrote (Python's requests and websockets). Loopback only,
//! bounded in count and time; no root.

#[path = "oscquery_common/client.rs"]
mod oscquery_client;
mod oscquery_common;

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use oscquery_common::{wait_until, Rig};
use rosc::OscType;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const GET: &str = r#"
import json, sys, requests
url, host, origin = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {}
if host:
    headers["Host"] = host
if origin:
    headers["Origin"] = origin
r = requests.get(url, headers=headers, timeout=3)
print(json.dumps({"status": r.status_code, "body": r.text, "acao": r.headers.get("Access-Control-Allow-Origin")}))
"#;

fn get(rig: &Rig, path: &str, host: &str, origin: &str) -> Value {
    rig.python(GET, &[&format!("{}{path}", rig.base()), host, origin])
}

/// What tests/rig.rs checks from another host, on loopback for everyone: the namespace with its
/// exact type strings, HOST_INFO, a value, a 404, and LISTEN then IGNORE of `/audio/bpm`.
#[test]
fn a_real_client_reads_the_namespace_and_listens_then_ignores() {
    let rig = Rig::oscquery("", "");
    let feed = feed_for(&rig, 4.5, 99.0);
    let r = rig.python(oscquery_client::SCRIPT, &[&rig.base()]);
    feed.join().unwrap();
    oscquery_client::check(&r, "vj-suite", rig.control);
}

#[test]
fn a_foreign_host_is_refused_and_our_own_names_are_served() {
    let rig = Rig::oscquery("", "");
    let ok = get(&rig, "/?HOST_INFO", "", "");
    assert_eq!(ok["status"], 200, "{ok}");
    let local = get(&rig, "/audio/bpm", &format!("localhost:{}", rig.http), "");
    assert_eq!(local["status"], 200, "{local}");
    for _ in 0..3 {
        let evil = get(
            &rig,
            "/?HOST_INFO",
            &format!("evil.example:{}", rig.http),
            "",
        );
        assert_eq!(evil["status"], 421, "DNS rebinding: {evil}");
        let body = evil["body"].as_str().unwrap();
        assert_eq!(body.lines().count(), 1, "one line: {body}");
        assert!(
            body.contains("evil.example") && body.contains("allowed_hosts"),
            "{body}"
        );
    }
    let raw = rig.raw("GET / HTTP/1.1\r\nHost: attacker.test\r\nConnection: close\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    assert_eq!(rig.state()["refused_http"]["by_source"]["127.0.0.1"], 4);
    let log = rig.log("vj-oscquery");
    assert_eq!(
        log.matches("OSCQuery request refused").count(),
        1,
        "logged once per source:\n{log}"
    );
}

#[test]
fn allowed_hosts_widen_the_names_served() {
    let rig = Rig::oscquery_with("allowed_hosts = [\"visuals.lan\"]", "", "");
    assert_eq!(get(&rig, "/", "visuals.lan:9010", "")["status"], 200);
    assert_eq!(get(&rig, "/", "other.lan:9010", "")["status"], 421);
}

const WS: &str = r#"
import asyncio, json, sys, time, websockets
url, origin, secs = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
async def main():
    try:
        async with websockets.connect(url, origin=origin, open_timeout=5) as ws:
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/audio/bpm"}))
            await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/audio/not_yet"}))
            got = []
            end = time.time() + secs
            while time.time() < end:
                try:
                    m = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
                except asyncio.TimeoutError:
                    break
                if isinstance(m, bytes):
                    got.append(m.hex())
            return {"status": 101, "values": got}
    except websockets.exceptions.InvalidStatusCode as e:
        return {"status": e.status_code, "values": []}
print(json.dumps(asyncio.run(main())))
"#;

/// Feeds `/audio/bpm` for `secs`, and from `later` on `/audio/not_yet` too (an address the
/// namespace learns only then).
fn feed_for(rig: &Rig, secs: f64, later: f64) -> std::thread::JoinHandle<()> {
    let osc = rig.osc;
    std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < secs {
            let both = start.elapsed().as_secs_f64() >= later;
            for (addr, v) in [("/audio/bpm", 120.0f32), ("/audio/not_yet", 1.0)] {
                if addr == "/audio/not_yet" && !both {
                    continue;
                }
                let b = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
                    addr: addr.into(),
                    args: vec![OscType::Float(v), OscType::Float(0.5)],
                }))
                .unwrap();
                let _ = s.send_to(&b, ("127.0.0.1", osc));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn a_browser_origin_is_refused_unless_allowed() {
    let rig = Rig::oscquery_with("allowed_origins = [\"http://localhost:8080\"]", "", "");
    let url = format!("ws://127.0.0.1:{}/", rig.http);
    let evil = rig.python(WS, &[&url, "https://evil.example", "1"]);
    assert_eq!(evil["status"], 403, "a foreign page's WebSocket: {evil}");
    // The native client LISTENs to /audio/not_yet before the namespace has it (fed from 2.5 s
    // on): that LISTEN is ignored. The browser client connects later, when it exists.
    let feeding = feed_for(&rig, 8.0, 2.5);
    let native = rig.python(WS, &[&url, "", "5"]);
    let allowed = rig.python(WS, &[&url, "http://localhost:8080", "2"]);
    feeding.join().unwrap();
    let addresses = |r: &Value| -> Vec<String> {
        r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hex| {
                let hex = hex.as_str().unwrap();
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                vj::osc::decode(&bytes).unwrap()[0].address.clone()
            })
            .collect()
    };
    assert_eq!(native["status"], 101, "no Origin: {native}");
    let got = addresses(&native);
    assert!(
        got.iter().filter(|a| *a == "/audio/bpm").count() >= 20,
        "{got:?}"
    );
    assert!(
        !got.iter().any(|a| a == "/audio/not_yet"),
        "LISTEN holds only addresses the namespace had: {got:?}"
    );
    assert_eq!(allowed["status"], 101, "an allowed Origin: {allowed}");
    let got = addresses(&allowed);
    assert!(got.iter().any(|a| a == "/audio/not_yet"), "{got:?}");
    let http_evil = get(&rig, "/", "", "https://evil.example");
    assert_eq!(http_evil["status"], 403, "{http_evil}");
    let http_ok = get(&rig, "/", "", "http://localhost:8080");
    assert_eq!(http_ok["status"], 200);
    assert_eq!(
        http_ok["acao"], "http://localhost:8080",
        "CORS for the allowed origin only"
    );
    assert_eq!(get(&rig, "/", "", "")["acao"], Value::Null);
}

#[test]
fn two_hundred_idle_sockets_do_not_lock_a_client_out() {
    let rig = Rig::oscquery("", "");
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", rig.http)).unwrap())
        .collect();
    // requests' own timeout (3 s) is the bound: a locked-out client gets no answer at all.
    let r = get(&rig, "/?HOST_INFO", "", "");
    assert_eq!(r["status"], 200, "{r}");
    for s in &idle {
        s.set_nonblocking(true).unwrap();
    }
    let closed = || {
        idle.iter()
            .filter(|s| {
                let mut r: &TcpStream = s;
                !matches!(r.read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(2), || closed() >= 200 - 64),
        "the idle sockets made room: {} of 200 closed",
        closed()
    );
    assert!(rig.state()["http_connections"].as_u64().unwrap() <= 64);
}

#[test]
fn idle_sockets_are_closed_within_30_s() {
    let rig = Rig::oscquery("", "");
    let mut socks: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(("127.0.0.1", rig.http)).unwrap())
        .collect();
    // One that made a request and keeps the connection.
    let mut kept = TcpStream::connect(("127.0.0.1", rig.http)).unwrap();
    std::io::Write::write_all(
        &mut kept,
        b"GET /?HOST_INFO HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    socks.push(kept);
    let start = Instant::now();
    for s in &mut socks {
        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue, // the rest of the kept connection's response
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("still open after {:?}: {e}", start.elapsed()),
            }
        }
    }
}

#[test]
fn a_16_mib_websocket_message_is_refused_with_rss_flat() {
    let rig = Rig::oscquery("", "");
    let before = rig.rss_kb("vj-oscquery");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = rig.http;
    let closed = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", http))
            .await
            .unwrap();
        let (mut ws, resp) =
            tokio_tungstenite::client_async(format!("ws://127.0.0.1:{http}/"), tcp)
                .await
                .unwrap();
        assert_eq!(resp.status(), 101);
        // The send may fail part-way: the server closes as soon as it reads the frame header.
        let _ = ws.send(Message::binary(vec![7u8; 16 << 20])).await;
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(end, ws.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => break false,
            }
        }
    });
    assert!(closed, "the connection was closed");
    let after = rig.rss_kb("vj-oscquery");
    assert!(
        after < before + 4096,
        "RSS {before} KiB → {after} KiB: the message was read"
    );
    let state = rig.state();
    assert!(
        state["counters"]["ws_refused"].as_u64().unwrap() >= 1,
        "{state}"
    );
    assert_eq!(
        get(&rig, "/audio/bpm", "", "")["status"],
        200,
        "still serving"
    );
}

#[test]
fn five_thousand_junk_addresses_leave_the_namespace_bounded() {
    let rig = Rig::oscquery("", "");
    let spec = vj::oscquery::namespace::spec_addresses().len() as u64;
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5000 {
        rig.feed(&s, &format!("/audio/junk{i}"), vec![OscType::Int(i)]);
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        wait_until(Duration::from_secs(10), || rig.state()["counters"]
            ["osc_in"]
            .as_u64()
            .unwrap()
            >= 4900),
        "{}",
        rig.state()
    );
    let state = rig.state();
    assert_eq!(state["learned_addresses"], 256, "{state}");
    assert_eq!(state["addresses"].as_u64().unwrap(), spec + 256, "{state}");
    assert!(
        state["learned_dropped"].as_u64().unwrap() >= 4900 - 256,
        "{state}"
    );
    let root = get(&rig, "/audio", "", "");
    let audio: Value = serde_json::from_str(root["body"].as_str().unwrap()).unwrap();
    let junk = audio["CONTENTS"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("junk"))
        .count();
    assert_eq!(junk, 256);
    assert!(
        audio["CONTENTS"].get("junk4999").is_some(),
        "the newest kept"
    );
    assert!(
        audio["CONTENTS"].get("junk0").is_none(),
        "the oldest dropped"
    );
}

#[test]
fn a_websocket_that_answers_no_ping_is_closed() {
    let rig = Rig::oscquery("", "");
    let mut s = TcpStream::connect(("127.0.0.1", rig.http)).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    // A client that reads nothing and answers no ping: gone within the ping period and the
    // silence allowed (5 s + 15 s), with room for a busy machine.
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(35))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // pings, then the close frame
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", start.elapsed()),
        }
    }
    assert!(
        start.elapsed() >= Duration::from_secs(10),
        "not closed before it was given time to answer"
    );
    assert_eq!(rig.state()["counters"]["ws_dead"], 1);
}
