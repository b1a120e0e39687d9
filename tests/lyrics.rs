//! The lyrics fetcher end to end, run by hand: a real `vj-lyrics` process, a real HTTP server
//! answering like LRCLIB, playback OSC sent to its UDP port, and a real OSC receiver.

mod common;

use common::{count, free_udp_port};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use rosc::{encoder, OscMessage, OscPacket, OscType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use vj::bus::client::Client;
use vj::karaoke::{position_message, track_message, NowPlaying, Position};
use vj::osc::CapturedMessage;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SONG_LRC: &str = "[ar:Test Artist]\n[00:00.60]Light up the night\n[00:01.25]Dancing alone\n[00:01.90]light up the NIGHT!\n[00:02.40]\n[00:02.70]The end";

struct Rig {
    dir: tempfile::TempDir,
    child: Child,
    listen: SocketAddr,
    receiver: UdpSocket,
    sender: UdpSocket,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rig {
    async fn start(lrclib_url: &str, extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let config = format!(
            "[osc]\ntargets = [\"{}\"]\n[[osc.routes]]\nprefix = \"/karaoke/\"\ntargets = [\"{listen}\"]\n\
             [lyrics]\nlisten = \"{listen}\"\nlrclib_url = \"{lrclib_url}\"\ntimeout_ms = 1000\nretries = 0\n{extra}",
            receiver.local_addr().unwrap()
        );
        std::fs::write(dir.path().join("vj.toml"), config).unwrap();
        let child = common::worker_command(env!("CARGO_BIN_EXE_vj-lyrics"), dir.path())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let rig = Rig {
            dir,
            child,
            listen,
            receiver,
            sender: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // It answers once it is started, and then its UDP port is bound.
        while Client::connect(&rig.socket()).await.is_err() {
            assert!(Instant::now() < deadline, "vj-lyrics did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig.state().await;
        rig
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("bus/lyrics_fetcher.sock")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache/vj/lyrics")
    }

    async fn send(&self, msg: OscMessage) {
        let bytes = encoder::encode(&OscPacket::Message(msg)).unwrap();
        self.sender.send_to(&bytes, self.listen).await.unwrap();
    }

    async fn send_raw(&self, bytes: &[u8]) {
        self.sender.send_to(bytes, self.listen).await.unwrap();
    }

    async fn request(&self, cmd: &str, args: Value) -> vj::bus::client::Ack {
        let mut c = Client::connect(&self.socket()).await.unwrap();
        let Value::Object(args) = args else { panic!() };
        c.request(cmd, args).await.unwrap()
    }

    async fn state(&self) -> Value {
        let ack = self.request("get_state", json!({})).await;
        assert!(ack.success);
        ack.data
    }

    /// Messages received until `done` holds for the last one (or the wait runs out).
    async fn collect_until(
        &self,
        wait: Duration,
        done: impl Fn(&CapturedMessage) -> bool,
    ) -> Vec<(Instant, CapturedMessage)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            let recv = tokio::time::timeout_at(deadline, self.receiver.recv_from(&mut buf)).await;
            let Ok(Ok((n, _))) = recv else { return out };
            let at = Instant::now();
            for m in vj::osc::decode(&buf[..n]).unwrap() {
                let stop = done(&m);
                out.push((at, m));
                if stop {
                    return out;
                }
            }
        }
    }

    /// Waits for the worker's state to satisfy `ok`.
    async fn wait_state(&self, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.state().await;
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "state never got there: {s:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn track(artist: &str, title: &str) -> NowPlaying {
    NowPlaying {
        source: "spotify".into(),
        artist: artist.into(),
        title: title.into(),
        album: "Album".into(),
        duration_s: 200.0,
        has_lyrics: false,
    }
}

fn lrclib_record(synced: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": 1, "trackName": "t", "artistName": "a", "albumName": "Album", "duration": 200.0,
        "instrumental": false, "plainLyrics": "plain", "syncedLyrics": synced,
    }))
}

/// An LRCLIB double of its own (not from wiremock's pool, so dropping it really stops it).
async fn lrclib() -> MockServer {
    lrclib_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await
}

async fn lrclib_on(listener: std::net::TcpListener) -> MockServer {
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(path("/api/get"))
        .and(query_param("track_name", "Test Song"))
        .respond_with(lrclib_record(SONG_LRC))
        .mount(&server)
        .await;
    Mock::given(path("/api/get"))
        .and(query_param("track_name", "Other Song"))
        .respond_with(lrclib_record(
            "[00:00.50]Another one\n[00:01.00]Bites the dust",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/api/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    server
}

fn addrs(msgs: &[(Instant, CapturedMessage)]) -> Vec<&str> {
    msgs.iter().map(|(_, m)| m.address.as_str()).collect()
}

fn active_lines(msgs: &[(Instant, CapturedMessage)]) -> Vec<(Instant, i64)> {
    msgs.iter()
        .filter(|(_, m)| m.address == "/karaoke/line/active")
        .map(|(t, m)| (*t, m.args[0].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_change_brings_lyrics_and_the_sung_line_follows_the_position() {
    let server = lrclib().await;
    let rig = Rig::start(&server.uri(), "").await;
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let msgs = rig
        .collect_until(Duration::from_secs(10), |m| m.address == "/karaoke/track")
        .await;
    let a = addrs(&msgs);
    assert_eq!(
        &a[..3],
        [
            "/karaoke/lyrics/reset",
            "/karaoke/refrain/reset",
            "/karaoke/keywords/reset"
        ]
    );
    let lines: Vec<_> = msgs
        .iter()
        .filter(|(_, m)| m.address == "/karaoke/lyrics/line")
        .map(|(_, m)| {
            (
                m.types.as_str(),
                m.args[0].as_i64().unwrap(),
                m.args[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 4, "{a:?}");
    assert_eq!(lines[0], ("ifs", 0, "Light up the night".to_string()));
    assert_eq!(lines[3].2, "The end");
    let refrain: Vec<_> = msgs
        .iter()
        .filter(|(_, m)| m.address == "/karaoke/refrain/line")
        .collect();
    assert_eq!(refrain.len(), 1, "one line is sung twice");
    assert!(a.contains(&"/karaoke/keywords/line"));
    // The last message is /karaoke/track, now saying the song has lyrics.
    let (_, t) = msgs.last().unwrap();
    assert_eq!(t.types, "issssfi");
    assert_eq!(t.args[3], json!("Test Song"));
    assert_eq!(t.args[6], json!(1), "has_lyrics");

    // Play from 0: the lines become active at their stamps, in order, never early.
    let started = Instant::now();
    rig.send(position_message(Position {
        seconds: 0.0,
        playing: true,
    }))
    .await;
    // Positions once a second, as a player reports them.
    let sender = async {
        for s in 1..3 {
            tokio::time::sleep_until(started + Duration::from_secs(s)).await;
            rig.send(position_message(Position {
                seconds: s as f32,
                playing: true,
            }))
            .await;
        }
    };
    let (msgs, ()) = tokio::join!(
        rig.collect_until(Duration::from_secs(10), |m| {
            m.address == "/karaoke/line/active" && m.args[0] == json!(3)
        }),
        sender
    );
    let active = active_lines(&msgs);
    let order: Vec<i64> = active.iter().map(|(_, i)| *i).collect();
    assert_eq!(order, vec![0, 1, 2, -1, 3], "a timed blank line is a break");
    for ((at, _), stamp_ms) in active.iter().zip([600, 1250, 1900, 2400, 2700]) {
        assert!(
            *at >= started + Duration::from_millis(stamp_ms),
            "line shown before its stamp ({stamp_ms} ms)"
        );
    }
    let refrain_active: Vec<_> = msgs
        .iter()
        .filter(|(_, m)| m.address == "/karaoke/refrain/active")
        .map(|(_, m)| m.args[0].as_i64().unwrap())
        .collect();
    assert_eq!(
        refrain_active,
        vec![0, -1, 0, -1],
        "refrain on lines 0 and 2, cleared between"
    );

    // Our /karaoke/track came back to us through the /karaoke/ route: it must not loop.
    let more = rig
        .collect_until(Duration::from_millis(800), |_| false)
        .await;
    assert!(
        !addrs(&more).contains(&"/karaoke/track"),
        "{:?}",
        addrs(&more)
    );

    // The player repeats the track saying has_lyrics 0: we answer once with 1, no more.
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let more = rig
        .collect_until(Duration::from_millis(800), |_| false)
        .await;
    let tracks: Vec<_> = more
        .iter()
        .filter(|(_, m)| m.address == "/karaoke/track")
        .map(|(_, m)| m.args[6].clone())
        .collect();
    assert_eq!(tracks, vec![json!(1)]);

    // Pause, then seek back: the line follows at once.
    rig.send(position_message(Position {
        seconds: 1.3,
        playing: false,
    }))
    .await;
    let msgs = rig
        .collect_until(Duration::from_secs(5), |m| {
            m.address == "/karaoke/line/active"
        })
        .await;
    assert_eq!(active_lines(&msgs).last().unwrap().1, 1);

    let s = rig.state().await;
    assert_eq!(s["track"]["title"], "Test Song");
    assert_eq!(s["lyrics"]["lines"], 4);
    assert_eq!(s["lyrics"]["synced"], true);
    assert_eq!(s["active_line"], 1);
    assert!(s["cache"]["writes"].as_u64().unwrap() >= 1);
    assert!(s["llm"].as_str().unwrap().starts_with("not configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_packets_are_counted_and_a_cached_song_plays_with_lrclib_gone() {
    let server = lrclib().await;
    let rig = Rig::start(&server.uri(), "").await;
    rig.send_raw(b"definitely not OSC").await;
    rig.send(OscMessage {
        addr: "/karaoke/pos".into(),
        args: vec![OscType::String("x".into())],
    })
    .await;
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    rig.collect_until(Duration::from_secs(10), |m| m.address == "/karaoke/track")
        .await;
    let s = rig.wait_state(|s| s["osc_in"]["malformed"] == 2).await;
    assert_eq!(s["lyrics"]["from_cache"], false);

    // LRCLIB goes away; nothing plays; the same song comes back: served from the cache.
    let lrclib_addr = server.address().to_owned();
    drop(server);
    rig.send(track_message(None)).await;
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let msgs = rig
        .collect_until(Duration::from_secs(10), |m| m.address == "/karaoke/track")
        .await;
    assert_eq!(count(&msgs, "/karaoke/lyrics/line"), 4);
    let s = rig.wait_state(|s| s["lyrics"]["from_cache"] == true).await;
    assert_eq!(s["status"], "ok");

    // A song that is not cached now fails: degraded, retried later, the worker keeps serving.
    rig.send(track_message(Some(&track("Test Artist", "Other Song"))))
        .await;
    let s = rig.wait_state(|s| s["status"] == "degraded").await;
    assert!(
        s["detail"].as_str().unwrap().contains("LRCLIB unreachable"),
        "{s:#}"
    );
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach LRCLIB"),
        "{s:#}"
    );

    // LRCLIB comes back on the same address: the retry (8 s after the failure) brings the
    // lyrics of the song still playing, and the worker is healthy again.
    let _server = lrclib_on(std::net::TcpListener::bind(lrclib_addr).unwrap()).await;
    let msgs = rig
        .collect_until(Duration::from_secs(30), |m| m.address == "/karaoke/track")
        .await;
    assert_eq!(
        count(&msgs, "/karaoke/lyrics/line"),
        2,
        "{:?}",
        addrs(&msgs)
    );
    let s = rig.wait_state(|s| s["status"] == "ok").await;
    assert_eq!(s["lyrics"]["lines"], 2);
    assert_eq!(s["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_file_is_healed() {
    let server = lrclib().await;
    let rig = Rig::start(&server.uri(), "").await;
    let file = rig.cache_dir().join(format!(
        "{}.json",
        vj::lyrics::cache::key("Test Artist", "Test Song")
    ));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"{\"format\":1,\"artist\":\"Te").unwrap();
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let msgs = rig
        .collect_until(Duration::from_secs(10), |m| m.address == "/karaoke/track")
        .await;
    assert_eq!(count(&msgs, "/karaoke/lyrics/line"), 4);
    let s = rig.state().await;
    assert_eq!(s["cache"]["corrupt"], 1);
    let healed: vj::lyrics::Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(healed.synced.as_deref(), Some(SONG_LRC));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_lyrics_and_set_config_by_command() {
    let server = lrclib().await;
    let rig = Rig::start(&server.uri(), "").await;
    let ack = rig
        .request(
            "fetch_lyrics",
            json!({"artist": "Test Artist", "title": "Other Song", "duration": 200}),
        )
        .await;
    assert!(ack.success, "{ack:?}");
    assert_eq!(ack.data["line_count"], 2);
    assert_eq!(ack.data["lines"][1]["text"], "Bites the dust");
    assert_eq!(ack.data["lines"][1]["time"], 1.0);
    let msgs = rig
        .collect_until(Duration::from_secs(5), |m| m.address == "/karaoke/track")
        .await;
    assert_eq!(count(&msgs, "/karaoke/lyrics/line"), 2);
    assert_eq!(rig.state().await["track"]["source"], "manual");

    let ack = rig
        .request(
            "fetch_lyrics",
            json!({"artist": "Nobody", "title": "Nothing"}),
        )
        .await;
    assert!(ack.success);
    assert_eq!(ack.data["found"], false);

    let ack = rig.request("fetch_lyrics", json!({"title": "x"})).await;
    assert!(!ack.success);
    assert!(ack.message.unwrap().contains("artist"));
    let ack = rig
        .request(
            "fetch_lyrics",
            json!({"artist": "a", "title": "b", "duration": "long"}),
        )
        .await;
    assert!(ack.message.unwrap().contains("duration"));

    let ack = rig.request("set_config", json!({"offset_ms": 250})).await;
    assert!(ack.success, "{ack:?}");
    assert_eq!(rig.state().await["config"]["offset_ms"], 250);
    let ack = rig.request("set_config", json!({"ofset_ms": 250})).await;
    assert!(ack.message.unwrap().contains("lyrics.ofset_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_gives_the_moods_and_a_dead_one_does_not_hold_up_lyrics() {
    let server = lrclib().await;
    let llm = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": "{\"energetic\": 0.8, \"happy\": 0.5}"}}]
        })))
        .expect(1)
        .mount(&llm)
        .await;
    let extra = format!("[lyrics.llm]\nurl = \"{}/v1\"\nmodel = \"m\"\n", llm.uri());
    let rig = Rig::start(&server.uri(), &extra).await;
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let msgs = rig
        .collect_until(Duration::from_secs(10), |m| {
            m.address == "/karaoke/categories/happy"
        })
        .await;
    let cats: Vec<_> = msgs
        .iter()
        .filter(|(_, m)| m.address.starts_with("/karaoke/categories/"))
        .map(|(_, m)| (m.address.as_str(), m.types.as_str()))
        .collect();
    assert_eq!(
        cats,
        vec![
            ("/karaoke/categories/energetic", "f"),
            ("/karaoke/categories/happy", "f")
        ],
        "{:?}\n{}",
        addrs(&msgs),
        std::fs::read_to_string(rig.dir.path().join("stderr.log")).unwrap()
    );
    let s = rig.wait_state(|s| s["llm"] == "ok").await;
    assert_eq!(s["mood_source"], "llm");

    // Asked again: the moods come from the cache, the LLM is not asked a second time.
    rig.send(track_message(None)).await;
    rig.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    rig.collect_until(Duration::from_secs(10), |m| {
        m.address == "/karaoke/categories/happy"
    })
    .await;
    drop(llm); // checks `expect(1)`

    // A dead LLM: the lyrics come anyway, and word lists give the moods.
    let dead = format!("127.0.0.1:{}", free_udp_port());
    let extra = format!("[lyrics.llm]\nurl = \"http://{dead}/v1\"\nmodel = \"m\"\n");
    let rig2 = Rig::start(&server.uri(), &extra).await;
    rig2.send(track_message(Some(&track("Test Artist", "Test Song"))))
        .await;
    let msgs = rig2
        .collect_until(Duration::from_secs(10), |m| {
            m.address.starts_with("/karaoke/categories/")
        })
        .await;
    let a = addrs(&msgs);
    let track_at = a.iter().position(|a| *a == "/karaoke/track").unwrap();
    let cat_at = a
        .iter()
        .position(|a| a.starts_with("/karaoke/categories/"))
        .unwrap();
    assert!(track_at < cat_at, "lyrics first: {a:?}");
    let s = rig2
        .wait_state(|s| s["mood_source"] == "words (LLM failed)")
        .await;
    assert!(
        s["llm"].as_str().unwrap().contains("did not answer"),
        "{s:#}"
    );
}
