//! The debugger's `subscribe` over a real socket, against the real vj-oscdebug started by hand:
//! the ack carries the stats, pushes follow in order with the subscription's msg_id, a cursor
//! resumes without a gap, a reader that stops reading is caught up with `missed` counted (and
//! the debugger's memory does not grow with it), other requests on the same connection are
//! answered between pushes, and an in-process restart ends the subscription with `done`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{send_osc, ByHand};
use rosc::OscType;
use serde_json::{json, Value};

struct Conn(UnixStream);

impl Conn {
    fn open(b: &ByHand) -> Conn {
        let s = UnixStream::connect(b.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn(s)
    }

    fn send(&mut self, v: Value) {
        let body = serde_json::to_vec(&v).unwrap();
        self.0
            .write_all(&(body.len() as u32).to_be_bytes())
            .unwrap();
        self.0.write_all(&body).unwrap();
    }

    /// The next frame that is not a heartbeat.
    fn recv(&mut self) -> Value {
        loop {
            let mut len = [0u8; 4];
            self.0.read_exact(&mut len).expect("a frame");
            let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
            self.0.read_exact(&mut buf).unwrap();
            let v: Value = serde_json::from_slice(&buf).unwrap();
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }

    /// Pushes until `n` messages came, their `seq`s and addresses.
    fn collect(&mut self, n: usize) -> (Vec<u64>, Vec<String>, Vec<Value>) {
        let (mut seqs, mut addrs, mut pushes) = (Vec::new(), Vec::new(), Vec::new());
        while seqs.len() < n {
            let p = self.recv();
            assert_eq!(p["type"], "push", "{p}");
            for m in p["data"]["messages"].as_array().unwrap() {
                seqs.push(m["seq"].as_u64().unwrap());
                addrs.push(m["address"].as_str().unwrap().to_string());
            }
            pushes.push(p);
        }
        (seqs, addrs, pushes)
    }
}

fn osc_to(b: &ByHand, n: usize, addr: &str) {
    let to = format!("127.0.0.1:{}", b.osc_port());
    for i in 0..n {
        send_osc(&to, addr, vec![OscType::Int(i as i32)]);
    }
}

fn subscribe(c: &mut Conn, args: Value) -> Value {
    let mut cmd = json!({"type": "command", "cmd": "subscribe", "msg_id": "sub"});
    cmd.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    c.send(cmd);
    c.recv()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn pushes_follow_the_ack_in_order_and_a_cursor_resumes_without_a_gap() {
    let b = ByHand::start("");
    osc_to(&b, 3, "/karaoke/pos");
    // The stats in the ack already know the address.
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::request(&b.socket(), &json!({"type": "command", "cmd": "get_stats"}))["data"]
            ["messages"]
            == 3
    }));
    let mut c = Conn::open(&b);
    let ack = subscribe(&mut c, json!({"every_ms": 20}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["msg_id"], "sub");
    assert_eq!(ack["data"]["since"], 3, "{ack}");
    assert_eq!(
        ack["data"]["stats"]["addresses"]["/karaoke/pos"]["count"],
        3
    );

    // Only what came after: seqs 4.., in order, all under the subscription's msg_id.
    osc_to(&b, 50, "/audio/beat");
    let (seqs, _, pushes) = c.collect(50);
    assert_eq!(seqs, (4..54).collect::<Vec<u64>>());
    assert!(pushes
        .iter()
        .all(|p| p["msg_id"] == "sub" && p["data"]["missed"] == 0));
    assert_eq!(pushes.last().unwrap()["data"]["last_seq"], 53);

    // Another request on the same connection is answered between pushes.
    c.send(json!({"type": "command", "cmd": "health", "msg_id": "h"}));
    let mut answered = false;
    for _ in 0..10 {
        let v = c.recv();
        if v["msg_id"] == "h" {
            assert_eq!(v["data"]["worker"], "osc_debugger");
            answered = true;
            break;
        }
    }
    assert!(answered);
    drop(c);

    // A new connection resumes from the last seq it saw, with a prefix.
    osc_to(&b, 5, "/audio/levels");
    osc_to(&b, 5, "/karaoke/track");
    let mut c = Conn::open(&b);
    let ack = subscribe(&mut c, json!({"since": 53, "prefix": "/karaoke/"}));
    assert_eq!(ack["data"]["since"], 53);
    let (seqs, addrs, _) = c.collect(5);
    assert_eq!(seqs, (59..64).collect::<Vec<u64>>());
    assert!(addrs.iter().all(|a| a == "/karaoke/track"));
}

#[test]
fn a_reader_that_stops_is_caught_up_with_what_it_missed_and_memory_stays_flat() {
    let b = ByHand::start("capacity = 100");
    let mut c = Conn::open(&b);
    assert_eq!(subscribe(&mut c, json!({"every_ms": 10}))["type"], "ack");
    let pid = b.child.id();
    let before = rss_kb(pid);
    // 20 000 messages while we do not read: the socket's buffers fill, then the debugger
    // waits for us instead of queueing pushes.
    let to = format!("127.0.0.1:{}", b.osc_port());
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let packet = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/audio/spectrum".into(),
        args: vec![OscType::Float(0.5); 32],
    }))
    .unwrap();
    for i in 0..20_000 {
        sock.send_to(&packet, &to).unwrap();
        if i % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let sent_by = Instant::now();
    // Until the debugger has taken all that arrived (loopback may drop some under load).
    let count = || {
        common::request(&b.socket(), &json!({"type": "command", "cmd": "get_stats"}))["data"]
            ["messages"]
            .as_u64()
            .unwrap_or(0)
    };
    let mut seen = 0;
    assert!(common::wait_until(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = count();
        let settled = now == seen && now >= 2_000;
        seen = now;
        settled
    }));
    let grown = rss_kb(pid).saturating_sub(before);
    // Now read everything: seqs only go up, and what the ring dropped is counted as missed.
    let (mut last, mut got, mut missed) = (0u64, 0u64, 0u64);
    let total = count();
    while last < total {
        let p = c.recv();
        missed += p["data"]["missed"].as_u64().unwrap();
        for m in p["data"]["messages"].as_array().unwrap() {
            let seq = m["seq"].as_u64().unwrap();
            assert!(seq > last, "{seq} after {last}");
            last = seq;
            got += 1;
        }
    }
    assert_eq!(
        got + missed,
        total,
        "every message was pushed or counted as missed"
    );
    assert!(
        missed > 0,
        "the ring of 100 cannot hold what a stalled reader missed"
    );
    eprintln!(
        "stalled reader: {got} pushed, {missed} missed, RSS grew {grown} kB in {:?}",
        sent_by.elapsed()
    );
    // Pushes waiting for a reader would be ~400 bytes a message: 8 MB for 20 000.
    assert!(
        grown < 4_000,
        "RSS grew {grown} kB while the reader stalled"
    );
}

#[test]
fn a_restart_ends_the_subscription_and_a_bad_rate_is_named() {
    let b = ByHand::start("");
    let mut c = Conn::open(&b);
    let bad = subscribe(&mut c, json!({"every_ms": 0}));
    assert_eq!(bad["success"], false);
    assert!(
        bad["message"].as_str().unwrap().contains("every_ms"),
        "{bad}"
    );
    assert_eq!(subscribe(&mut c, json!({}))["data"]["every_ms"], 40);
    let mut other = Conn::open(&b);
    other.send(json!({"type": "command", "cmd": "restart", "msg_id": 1}));
    assert_eq!(other.recv()["success"], true);
    let done = c.recv();
    assert_eq!(
        (&done["type"], &done["msg_id"], &done["done"]),
        (&json!("push"), &json!("sub"), &json!(true)),
        "{done}"
    );
}

/// The console's feed, started after a song's lyric lines were sent (a VJ opening the console
/// mid-song): it reads the lines back from the capture, although the subscription itself only
/// carries each address's last value and what comes next.
#[test]
fn a_console_opened_mid_song_gets_the_songs_lyric_lines() {
    use vj::console::feed::{Feed, Update};
    let b = ByHand::start("");
    let to = format!("127.0.0.1:{}", b.osc_port());
    send_osc(&to, "/karaoke/lyrics/reset", vec![]);
    let lines = [
        "One more time",
        "We're gonna celebrate",
        "Oh yeah, all right",
    ];
    for (i, text) in lines.iter().enumerate() {
        let args = vec![
            OscType::Int(i as i32),
            OscType::Float(4.0 * i as f32),
            OscType::String(text.to_string()),
        ];
        send_osc(&to, "/karaoke/lyrics/line", args);
    }
    std::thread::sleep(Duration::from_millis(300));
    // No supervisor to ask (an empty runtime dir, no session bus): the socket is the debugger.
    let runtime = b.dir.path().join("no-manager");
    std::fs::create_dir_all(&runtime).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", &runtime);
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let feed = Feed::start(b.dir.path().join("bus")).unwrap();
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && seen.len() < lines.len() {
        if let Ok(Update::Osc { messages, .. }) =
            feed.updates.recv_timeout(Duration::from_millis(100))
        {
            seen.extend(
                messages
                    .iter()
                    .filter(|m| m.address == "/karaoke/lyrics/line")
                    .filter_map(|m| m.args.get(2).and_then(|a| a.as_str()).map(String::from)),
            );
        }
    }
    assert_eq!(seen, lines, "the lyric lines the feed passed on");
}
