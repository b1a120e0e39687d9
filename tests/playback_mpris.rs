//! vj-spotify's MPRIS source against a real MPRIS player: mpv with mpv-mpris (Debian packages
//! `mpv`, `mpv-mpris`) on a private D-Bus session bus (`dbus-daemon --session`), playing tagged
//! WAV files to the null audio output, driven through its own MPRIS methods.
#![cfg(target_os = "linux")]

mod playback_common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use playback_common::{positions, Rig};
use vj::karaoke::PlaybackEvent;

const BIN: &str = env!("CARGO_BIN_EXE_vj-spotify");
const MPRIS_SCRIPT: &str = "/etc/mpv/scripts/mpris.so";

/// A mono 16-bit WAV of silence with RIFF INFO tags (mpv reads them as title/artist/album).
fn tagged_wav(path: &Path, title: &str, artist: &str, album: &str, seconds: u32) {
    fn chunk(tag: &[u8], body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        let len = body.len() as u32;
        if body.len() % 2 == 1 {
            body.push(0);
        }
        [tag, &len.to_le_bytes(), &body].concat()
    }
    let z = |s: &str| [s.as_bytes(), b"\0"].concat();
    let info = [
        b"INFO".to_vec(),
        chunk(b"INAM", &z(title)),
        chunk(b"IART", &z(artist)),
        chunk(b"IPRD", &z(album)),
    ]
    .concat();
    let rate = 8000u32;
    let fmt = [
        &1u16.to_le_bytes()[..],
        &1u16.to_le_bytes(),
        &rate.to_le_bytes(),
        &(rate * 2).to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
    ]
    .concat();
    let data = vec![0u8; (rate * 2 * seconds) as usize];
    let body = [
        b"WAVE".to_vec(),
        chunk(b"fmt ", &fmt),
        chunk(b"LIST", &info),
        chunk(b"data", &data),
    ]
    .concat();
    std::fs::write(
        path,
        [
            b"RIFF".to_vec(),
            (body.len() as u32).to_le_bytes().to_vec(),
            body,
        ]
        .concat(),
    )
    .unwrap();
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private session bus; its address.
fn session_bus() -> (Killed, String) {
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (Debian package dbus-daemon)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Killed(child), line.trim().to_string())
}

fn mpv(bus: &str, files: &[&Path]) -> Killed {
    Killed(
        Command::new("mpv")
            .args(["--no-config", "--ao=null", "--vo=null", "--no-terminal"])
            .arg(format!("--script={MPRIS_SCRIPT}"))
            .args(files)
            .env("DBUS_SESSION_BUS_ADDRESS", bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mpv"),
    )
}

async fn call(
    conn: &zbus::Connection,
    method: &str,
    body: impl serde::Serialize + zbus::zvariant::DynamicType,
) {
    conn.call_method(
        Some("org.mpris.MediaPlayer2.mpv"),
        "/org/mpris/MediaPlayer2",
        Some("org.mpris.MediaPlayer2.Player"),
        method,
        &body,
    )
    .await
    .unwrap();
}

/// vj-spotify following mpv over MPRIS on the session bus at `address`, before mpv runs.
async fn following_mpv(address: &str) -> Rig {
    let addr = address.to_string();
    let rig = Rig::start_in(
        tempfile::tempdir().unwrap(),
        BIN,
        "spotify_monitor",
        "[spotify]\nsource = \"mpris\"\nmpris_player = \"mpv\"\npoll_interval_ms = 1000\n",
        move |cmd| {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", &addr);
        },
    )
    .await;
    rig.wait_degraded_saying("org.mpris.MediaPlayer2.mpv").await;
    rig
}

/// mpv names the file first, then its tags: waits for the tagged title.
async fn wait_title(rig: &Rig, want: &str) {
    let heard = rig
        .hear_until(
            Duration::from_secs(10),
            |e| matches!(e, PlaybackEvent::Track(Some(t)) if t.title == want),
        )
        .await;
    assert!(
        matches!(heard.last(), Some((_, PlaybackEvent::Track(Some(t)))) if t.title == want),
        "no {want}: {heard:?}"
    );
}

#[tokio::test]
async fn follows_mpv_over_mpris_through_seek_pause_next_and_a_restart() {
    if !Path::new(MPRIS_SCRIPT).exists() {
        panic!("needs the Debian packages mpv and mpv-mpris (apt-get install mpv mpv-mpris dbus-daemon)");
    }
    let media = tempfile::tempdir().unwrap();
    let a = media.path().join("a.wav");
    let b = media.path().join("b.wav");
    tagged_wav(&a, "Get Lucky", "Daft Punk", "Random Access Memories", 60);
    tagged_wav(&b, "One More Time", "Daft Punk", "Discovery", 60);
    let (_bus, address) = session_bus();

    let rig = following_mpv(&address).await;

    let player = mpv(&address, &[&a, &b]);
    // (Before the player came, "nothing plays" was announced.)
    let heard = rig
        .hear_until(
            Duration::from_secs(10),
            |e| matches!(e, PlaybackEvent::Track(Some(t)) if t.title == "Get Lucky"),
        )
        .await;
    let Some((_, PlaybackEvent::Track(Some(t)))) = heard.last().cloned() else {
        panic!("no track from mpv: {heard:?}\n{}", rig.stderr());
    };
    assert_eq!(
        (t.artist.as_str(), t.title.as_str(), t.album.as_str()),
        ("Daft Punk", "Get Lucky", "Random Access Memories")
    );
    assert_eq!(t.source, "mpv");
    assert!(
        (t.duration_s - 60.0).abs() < 0.5,
        "mpris:length µs → s: {}",
        t.duration_s
    );

    // Position moves, several times a second.
    let heard = rig.hear_until(Duration::from_millis(1600), |_| false).await;
    let pos = positions(&heard);
    assert!(pos.len() >= 5 && pos.iter().all(|p| p.1), "{pos:?}");
    assert!(pos.last().unwrap().0 > pos[0].0 + 0.5, "{pos:?}");

    let conn = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    // Seek +20 s: the Seeked signal moves the position at once.
    call(&conn, "Seek", 20_000_000i64).await;
    let heard = rig
        .hear_until(
            Duration::from_secs(5),
            |e| matches!(e, PlaybackEvent::Position(p) if p.seconds >= 20.0),
        )
        .await;
    assert!(
        matches!(heard.last(), Some((_, PlaybackEvent::Position(p))) if p.seconds >= 20.0 && p.seconds < 40.0),
        "{heard:?}"
    );

    // Pause: a position that says "not playing", then quiet.
    call(&conn, "Pause", ()).await;
    let heard = rig
        .hear_until(
            Duration::from_secs(5),
            |e| matches!(e, PlaybackEvent::Position(p) if !p.playing),
        )
        .await;
    assert!(
        matches!(heard.last(), Some((_, PlaybackEvent::Position(p))) if !p.playing),
        "{heard:?}"
    );
    call(&conn, "Play", ()).await;

    // Next: the new song, from PropertiesChanged.
    call(&conn, "Next", ()).await;
    wait_title(&rig, "One More Time").await;

    // The player quits: nothing plays. It comes back: followed again.
    drop(player);
    let (_, t) = rig.next_track().await;
    assert_eq!(t, None);
    let _player = mpv(&address, &[&b]);
    wait_title(&rig, "One More Time").await;
    let s = rig.state().await;
    assert_eq!(s["source"], "mpris");
    assert!(s["detail"].as_str().unwrap().contains("live: MPRIS"), "{s}");
}

/// mpv first names the file, then reads its tags: the suite waits for the tags and never
/// announces `a.wav` as a song. And whenever the player quits — killed, or asked to over
/// MPRIS — "nothing plays" follows within 1 s.
#[tokio::test]
async fn only_settled_tags_are_announced_and_every_quit_within_a_second() {
    let media = tempfile::tempdir().unwrap();
    let a = media.path().join("a.wav");
    tagged_wav(&a, "Get Lucky", "Daft Punk", "Random Access Memories", 60);
    let (_bus, address) = session_bus();
    let rig = following_mpv(&address).await;
    let conn = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();

    for round in 0..6 {
        let mut player = mpv(&address, &[&a]);
        let heard = rig
            .hear_until(
                Duration::from_secs(10),
                |e| matches!(e, PlaybackEvent::Track(Some(t)) if t.title == "Get Lucky"),
            )
            .await;
        let titles: Vec<&str> = heard
            .iter()
            .filter_map(|(_, e)| match e {
                PlaybackEvent::Track(Some(t)) => Some(t.title.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(titles, ["Get Lucky"], "round {round}: {heard:?}");
        // Let it play a little, so positions and property reads are under way.
        rig.hear_until(Duration::from_millis(300 + 150 * round), |_| false)
            .await;
        let quit_at = tokio::time::Instant::now();
        if round % 2 == 0 {
            let _ = player.0.kill();
        } else {
            let _ = conn
                .call_method(
                    Some("org.mpris.MediaPlayer2.mpv"),
                    "/org/mpris/MediaPlayer2",
                    Some("org.mpris.MediaPlayer2"),
                    "Quit",
                    &(),
                )
                .await;
        }
        let heard = rig
            .hear_until(Duration::from_secs(4), |e| {
                matches!(e, PlaybackEvent::Track(None))
            })
            .await;
        let Some((at, PlaybackEvent::Track(None))) = heard.last() else {
            panic!("round {round}: no 'nothing plays' within 4 s: {heard:?}");
        };
        let took = *at - quit_at;
        assert!(
            took < Duration::from_secs(1),
            "round {round}: 'nothing plays' {took:?} after the player quit"
        );
        let _ = player.0.wait();
    }
}
