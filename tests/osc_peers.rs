//! What the suite sends, checked by an OSC receiver nobody here wrote: liblo's `oscdump`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use vj::config::{OscConfig, OscTarget};
use vj::karaoke::{position_message, track_message, NowPlaying, Position};
use vj::osc::OscOut;

#[test]
fn liblo_reads_the_karaoke_messages_with_their_exact_types() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut dump = Command::new("oscdump")
        .args(["-L", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oscdump (Debian package liblo-tools; make test installs it)");
    let out = OscOut::new(&OscConfig {
        targets: vec![OscTarget::Plain(format!("127.0.0.1:{port}"))],
        routes: vec![],
    })
    .unwrap();
    let track = NowPlaying {
        source: "spotify".into(),
        artist: "Daft Punk".into(),
        title: "One More Time".into(),
        album: "Discovery".into(),
        duration_s: 320.5,
        has_lyrics: true,
    };
    let mut lines = BufReader::new(dump.stdout.take().unwrap()).lines();
    // oscdump needs a moment to bind; send until it reports something.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    for _ in 0..50 {
        out.send(&track_message(Some(&track)));
        out.send(&position_message(Position {
            seconds: 12.25,
            playing: true,
        }));
        out.send(&track_message(None));
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(line);
        }
        if got.len() >= 3 {
            break;
        }
    }
    let _ = dump.kill();
    let _ = dump.wait();
    // oscdump prints `<address> <types> <args…>`, possibly after a timestamp.
    let strip = |l: &String| l[l.find('/').unwrap_or(0)..].to_string();
    let got: Vec<String> = got.iter().map(strip).collect();
    assert_eq!(
        got[..3],
        [
            r#"/karaoke/track issssfi 1 "spotify" "Daft Punk" "One More Time" "Discovery" 320.500000 1"#.to_string(),
            "/karaoke/pos fi 12.250000 1".to_string(),
            r#"/karaoke/track issssfi 0 "" "" "" "" 0.000000 0"#.to_string(),
        ]
    );
}
