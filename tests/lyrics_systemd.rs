//! vj-lyrics under a real systemd user manager: the first /karaoke/track datagram on its
//! activated OSC socket starts it; lines and active lines reach an OSC receiver in order and
//! never early; the sandboxed service writes its disk cache, heals a corrupt file, and after a
//! restart serves a cached song with LRCLIB stopped.

mod common;

use std::time::{Duration, Instant};

use common::{count, request, wait_until, UserManager};
use rosc::{encoder, OscMessage, OscPacket};
use serde_json::json;
use vj::karaoke::{position_message, track_message, NowPlaying, Position};
use vj::osc::CapturedMessage;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVICE: &str = "vj-lyrics.service";
const SONG: &str = "[00:00.50]First light\n[00:01.10]Second light\n[00:01.70]first light";

async fn lrclib() -> MockServer {
    let server = MockServer::builder().start().await;
    for (title, lrc) in [("Song", SONG), ("Other", "[00:00.40]Only line")] {
        Mock::given(path("/api/get"))
            .and(query_param("track_name", title))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": 7, "trackName": title, "artistName": "Artist", "albumName": "Album",
                "duration": 180.0, "instrumental": false, "plainLyrics": "x", "syncedLyrics": lrc,
            })))
            .mount(&server)
            .await;
    }
    server
}

fn track(title: &str) -> NowPlaying {
    NowPlaying {
        source: "virtualdj".into(),
        artist: "Artist".into(),
        title: title.into(),
        album: "Album".into(),
        duration_s: 180.0,
        has_lyrics: false,
    }
}

fn send(port: u16, msg: OscMessage) {
    let bytes = encoder::encode(&OscPacket::Message(msg)).unwrap();
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&bytes, ("127.0.0.1", port))
        .unwrap();
}

/// Messages (with arrival times) until `done` holds or `wait` passes.
fn collect_until(
    rx: &common::OscReceiver,
    wait: Duration,
    done: impl Fn(&CapturedMessage) -> bool,
) -> Vec<(Instant, CapturedMessage)> {
    let end = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 65_536];
    while Instant::now() < end {
        let Ok(n) = rx.socket.recv(&mut buf) else {
            continue;
        };
        let at = Instant::now();
        for m in vj::osc::decode(&buf[..n]).unwrap_or_default() {
            let stop = done(&m);
            out.push((at, m));
            if stop {
                return out;
            }
        }
    }
    out
}

#[test]
fn a_track_datagram_starts_the_worker_and_lyrics_follow_the_position() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(lrclib());
    let m = UserManager::start();
    let port = common::free_udp_port();
    m.move_udp_port("vj-lyrics-osc.socket", port);
    m.move_udp_port("vj-oscdebug-osc.socket", common::free_udp_port());
    let rx = common::OscReceiver::bind();
    m.write_config(&format!(
        "[osc]\ntargets = [\"{}\"]\n[[osc.routes]]\nprefix = \"/karaoke/\"\ntargets = [\"127.0.0.1:{port}\"]\n\
         [lyrics]\nlrclib_url = \"{}\"\ntimeout_ms = 2000\nretries = 0\n",
        rx.addr(),
        server.uri()
    ));
    // Only the fetcher's sockets: the playback monitors in vj.target would announce
    // "nothing plays" to the same receiver.
    m.ok(&["start", "vj-lyrics.socket", "vj-lyrics-osc.socket"]);
    assert_eq!(m.show(SERVICE, "ActiveState"), "inactive");

    // A corrupt cache file for the song, as a crash of an older version might leave.
    let cache = m.home.join(".cache/vj/lyrics");
    std::fs::create_dir_all(&cache).unwrap();
    let file = cache.join(format!("{}.json", vj::lyrics::cache::key("Artist", "Song")));
    std::fs::write(&file, b"\x00garbage").unwrap();

    // The datagram itself starts the worker, and is not lost.
    send(port, track_message(Some(&track("Song"))));
    let msgs = collect_until(&rx, Duration::from_secs(20), |m| {
        m.address == "/karaoke/track"
    });
    let addrs: Vec<_> = msgs.iter().map(|(_, m)| m.address.as_str()).collect();
    assert_eq!(
        &addrs[..3],
        [
            "/karaoke/lyrics/reset",
            "/karaoke/refrain/reset",
            "/karaoke/keywords/reset"
        ],
        "{addrs:?}"
    );
    assert_eq!(count(&msgs, "/karaoke/lyrics/line"), 3, "{addrs:?}");
    assert_eq!(count(&msgs, "/karaoke/refrain/line"), 1, "{addrs:?}");
    assert_eq!(msgs.last().unwrap().1.args[6], json!(1), "has_lyrics");
    assert_eq!(m.show(SERVICE, "ActiveState"), "active");

    // Positions once a second: active lines in order, never before their stamps.
    let t0 = Instant::now();
    send(
        port,
        position_message(Position {
            seconds: 0.0,
            playing: true,
        }),
    );
    let mid = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        send(
            port,
            position_message(Position {
                seconds: 1.0,
                playing: true,
            }),
        );
    });
    let msgs = collect_until(&rx, Duration::from_secs(10), |m| {
        m.address == "/karaoke/line/active" && m.args[0] == json!(2)
    });
    mid.join().unwrap();
    let active: Vec<_> = msgs
        .iter()
        .filter(|(_, m)| m.address == "/karaoke/line/active")
        .map(|(t, m)| (*t, m.args[0].as_i64().unwrap()))
        .collect();
    assert_eq!(
        active.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for ((at, _), stamp) in active.iter().zip([500, 1100, 1700]) {
        assert!(
            *at >= t0 + Duration::from_millis(stamp),
            "line before its stamp"
        );
    }

    // The sandboxed worker healed the cache file.
    let sock = m.bus_socket("lyrics_fetcher");
    let state = request(&sock, &json!({"type": "command", "cmd": "get_state"}));
    assert_eq!(state["data"]["cache"]["corrupt"], 1, "{state}");
    let healed: vj::lyrics::Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(healed.synced.as_deref(), Some(SONG));

    // LRCLIB stops; the worker restarts: the cached song still comes, from disk.
    drop(server);
    drop(rt);
    let pid = m.main_pid(SERVICE);
    m.ok(&["restart", SERVICE]);
    assert!(wait_until(Duration::from_secs(10), || {
        let p = m.main_pid(SERVICE);
        p != 0 && p != pid
    }));
    send(port, track_message(Some(&track("Song"))));
    let msgs = collect_until(&rx, Duration::from_secs(20), |m| {
        m.address == "/karaoke/track"
    });
    assert_eq!(count(&msgs, "/karaoke/lyrics/line"), 3);
    let state = request(&sock, &json!({"type": "command", "cmd": "get_state"}));
    assert_eq!(state["data"]["lyrics"]["from_cache"], true, "{state}");
    assert_eq!(state["data"]["status"], "ok");

    // A song LRCLIB never answered for: degraded, and systemd hears of it.
    send(port, track_message(Some(&track("Other"))));
    assert!(wait_until(Duration::from_secs(10), || m
        .show(SERVICE, "StatusText")
        .starts_with("degraded: LRCLIB unreachable")));
}
