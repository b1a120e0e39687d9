//! The console drawn without a terminal (ratatui's `TestBackend`): what a VJ sees at 80×24 and
//! larger, with the suite up, with every worker down, with help open and after a reply.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::json;

use super::app::App;
use super::feed::{Request, Update};
use super::telemetry::{Arrival, OscMsg};
use crate::registry::WORKERS;
use crate::status::{Report, Row, RowHealth};
use crate::worker::Health;

fn report(up: bool) -> Report {
    let workers = WORKERS
        .iter()
        .enumerate()
        .map(|(i, w)| Row {
            worker: w.bus_name.to_string(),
            unit: w.binary.to_string(),
            state: if up { "active" } else { "inactive" }.into(),
            pid: up.then_some(1000 + i as u32),
            uptime_sec: up.then_some(65.0),
            restarts: Some(i as u32),
            health: if up {
                RowHealth::Worker(Health::Ok)
            } else {
                RowHealth::Idle
            },
            detail: if up {
                format!("{} is fine", w.short_name())
            } else {
                "waiting on its socket".into()
            },
        })
        .collect();
    Report {
        systemd: true,
        bus_dir: PathBuf::from("/run/user/1000/vj-bus"),
        workers,
    }
}

fn msg(addr: &str, args: serde_json::Value) -> OscMsg {
    OscMsg::new(addr, args.as_array().unwrap().clone())
}

/// The suite playing a song, as the debugger would push it.
fn playing_app() -> App {
    let mut app = App::new(vec!["127.0.0.1:9000 127.0.0.1:9001".into()]);
    app.apply(Update::Workers(report(true)));
    app.apply(Update::Subscribed(json!({"addresses": {}, "malformed": 0})));
    let spectrum: Vec<f32> = (0..32).map(|i| i as f32 / 31.0).collect();
    let messages = vec![
        msg(
            "/audio/levels",
            json!([0.9, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.6]),
        ),
        msg("/audio/spectrum", json!(spectrum)),
        msg("/audio/beat", json!([1, 0.8])),
        msg("/audio/bpm", json!([124.0, 0.82])),
        msg("/audio/pitch", json!([440.0, 0.61])),
        msg("/audio/structure", json!([0, 1, 0.2, 0.4])),
        msg(
            "/karaoke/track",
            json!([1, "virtualdj", "Daft Punk", "One More Time", "", 320.0, 1]),
        ),
        msg("/karaoke/pos", json!([83.0, 1])),
        msg("/karaoke/lyrics/reset", json!([])),
        msg("/karaoke/lyrics/line", json!([0, 1.0, "One more time"])),
        msg(
            "/karaoke/lyrics/line",
            json!([1, 3.0, "We're gonna celebrate"]),
        ),
        msg(
            "/karaoke/lyrics/line",
            json!([2, 5.0, "Oh yeah, all right"]),
        ),
        msg("/karaoke/line/active", json!([1])),
        msg("/karaoke/categories/energetic", json!([0.8])),
    ];
    app.apply_osc(&messages, &Arrival::now());
    app.now = Instant::now();
    app
}

fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn has(screen: &[String], text: &str) -> bool {
    screen.iter().any(|l| l.contains(text))
}

#[test]
fn at_80x24_every_panel_is_there() {
    let app = playing_app();
    let s = screen(&app, 80, 24);
    let all = s.join("\n");
    for w in WORKERS {
        assert!(has(&s, w.bus_name), "{} missing:\n{all}", w.bus_name);
    }
    for text in [
        "workers",
        "audio",
        "124.0 BPM  82%",
        "beat — · bar —",
        "DROP",
        "440 Hz",
        "now playing",
        "Daft Punk – One More Time",
        "1:23 / 5:20",
        "▶ We're gonna celebrate",
        "One more time",
        "moods energetic 0.80",
        "/audio/bpm",
        "targets 127.0.0.1:9000",
        "q quit",
    ] {
        assert!(all.contains(text), "{text:?} missing:\n{all}");
    }
    // The spectrum's last bins are full, its first empty: the bars are drawn.
    assert!(all.contains('█'), "{all}");
}

#[test]
fn every_worker_down_says_so_and_stays_usable() {
    let mut app = App::new(vec![]);
    app.apply(Update::Workers(report(false)));
    app.apply(Update::NoTelemetry(
        "osc_debugger is idle (its first OSC datagram starts it)".into(),
    ));
    let s = screen(&app, 80, 24);
    let all = s.join("\n");
    assert!(all.contains("every worker is down"), "{all}");
    assert!(all.contains("no telemetry: osc_debugger is idle"), "{all}");
    assert!(all.contains("waiting on its socket"), "{all}");
    // Keys still work: select the lyrics fetcher and start it.
    app.on_key(KeyEvent::from(KeyCode::Down));
    app.on_key(KeyEvent::from(KeyCode::Down));
    app.on_key(KeyEvent::from(KeyCode::Down));
    match app.on_key(KeyEvent::from(KeyCode::Char('s'))) {
        Some(Request::Supervise(a, w)) => {
            assert_eq!((a.verb(), w.bus_name), ("start", "lyrics_fetcher"))
        }
        other => panic!("{other:?}"),
    }
    let snap = app.snapshot();
    assert!(snap.contains("every worker is down"), "{snap}");
    assert!(
        snap.contains("telemetry none: osc_debugger is idle"),
        "{snap}"
    );
}

#[test]
fn help_opens_and_a_reply_shows_in_the_footer() {
    let mut app = playing_app();
    app.on_key(KeyEvent::from(KeyCode::Char('?')));
    let s = screen(&app, 80, 24).join("\n");
    assert!(
        s.contains("vj-console keys") && s.contains("tap tempo"),
        "{s}"
    );
    // Keys are ignored under the help, but Esc then `t` typed fast (read as Alt+t) is both.
    assert!(app.on_key(KeyEvent::from(KeyCode::Char('t'))).is_none());
    let alt_t = KeyEvent::new(KeyCode::Char('t'), KeyModifiers::ALT);
    assert!(matches!(app.on_key(alt_t), Some(Request::Send { .. })));
    assert!(!app.help);
    app.apply(Update::Reply(
        "audio_analyzer does not know `tap` yet — it said: Unknown command: tap".into(),
        false,
    ));
    app.now = Instant::now();
    let s = screen(&app, 80, 24).join("\n");
    assert!(s.contains("Unknown command: tap"), "{s}");
    app.now += Duration::from_secs(30);
    assert!(screen(&app, 80, 24).join("\n").contains("q quit"));
}

#[test]
fn the_log_pane_shows_the_selected_workers_last_lines() {
    let mut app = playing_app();
    let asked = app.on_key(KeyEvent::from(KeyCode::Char('l')));
    let w = match asked {
        Some(Request::Logs(w)) => w,
        other => panic!("{other:?}"),
    };
    let lines = (1..=40).map(|i| format!("line {i}")).collect();
    app.apply(Update::Logs(w, Ok(lines)));
    let s = screen(&app, 80, 24).join("\n");
    assert!(s.contains("log of vj-audio"), "{s}");
    // `line N` as a whole (not the start of `line 10`), however the row is padded or framed.
    let shows = |n: u32| {
        let text = format!("line {n}");
        s.lines().any(|row| {
            row.match_indices(&text)
                .any(|(i, _)| !row[i + text.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
    };
    assert!(shows(40), "the last line: {s}");
    assert!(!shows(1), "the first of 40 lines does not fit 24 rows: {s}");
    assert!(app.on_key(KeyEvent::from(KeyCode::Char('l'))).is_none());
    assert!(app.workers.logs.is_none());
}

#[test]
fn it_reflows_at_any_size() {
    let app = playing_app();
    let big = screen(&app, 140, 45);
    assert!(has(&big, "Daft Punk – One More Time"));
    assert!(has(&big, "/karaoke/pos"), "{}", big.join("\n"));
    // The footer is on the last row at every size.
    assert!(big[44].contains("q quit"), "{}", big[44]);
    for (w, h) in [(80, 24), (100, 30), (60, 15), (20, 5), (1, 1)] {
        let s = screen(&app, w, h);
        assert_eq!(s.len(), usize::from(h));
    }
}

#[test]
fn the_snapshot_is_the_table_and_a_line_per_panel() {
    let app = playing_app();
    let snap = app.snapshot();
    let lines: Vec<&str> = snap.lines().collect();
    assert!(lines[0].starts_with("WORKER"), "{snap}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("audio") && l.contains("124.0 BPM")),
        "{snap}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("playing") && l.contains("Daft Punk – One More Time")),
        "{snap}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lyrics") && l.contains("▶ We're gonna celebrate")),
        "{snap}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("osc") && l.contains("/audio/beat")),
        "{snap}"
    );
}

#[test]
fn seeded_stats_fill_now_playing_before_anything_is_pushed() {
    let mut app = App::new(vec![]);
    app.apply(Update::Subscribed(json!({"malformed": 3, "addresses": {
        "/karaoke/track": {"count": 1, "rate_hz": 0.0, "types": "issssfi",
            "last": [1, "spotify", "Air", "La femme d'argent", "", 427.0, 0], "last_seen_sec_ago": 10.0},
        "/audio/levels": {"count": 900, "rate_hz": 86.1, "types": "ffffffff",
            "last": [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "last_seen_sec_ago": 0.0}
    }})));
    app.now = Instant::now();
    let s = screen(&app, 80, 24).join("\n");
    assert!(s.contains("Air – La femme d'argent"), "{s}");
    assert!(s.contains("86.1/s"), "{s}");
    assert!(s.contains("malformed 3"), "{s}");
}

#[test]
fn the_audio_panel_says_what_the_analyzer_listens_to_and_i_asks_for_the_next_input() {
    let mut app = playing_app();
    let mut r = report(true);
    let audio = r
        .workers
        .iter_mut()
        .find(|w| w.worker == crate::registry::AUDIO.bus_name)
        .unwrap();
    audio.detail =
        "capturing what plays on 'Built-in Audio' at 86 fps, 124 BPM (audio)".to_string();
    app.apply(Update::Workers(r));
    let s = screen(&app, 80, 24);
    assert!(
        s.iter()
            .any(|l| l.contains("audio · capturing what plays on 'Built-in Audio'")),
        "{s:#?}"
    );
    assert!(app.snapshot().contains("input capturing what plays on"));
    assert!(matches!(
        app.on_key(KeyEvent::from(KeyCode::Char('i'))),
        Some(Request::NextInput)
    ));
}

#[test]
fn whether_the_debugger_is_read_comes_from_the_workers_look() {
    use super::feed::debugger_down;
    use crate::registry::OSC_DEBUGGER;
    let with = |health: RowHealth, state: &str, detail: &str| {
        let mut r = report(true);
        let row = r
            .workers
            .iter_mut()
            .find(|w| w.worker == OSC_DEBUGGER.bus_name)
            .unwrap();
        (row.health, row.state, row.detail) = (health, state.into(), detail.into());
        r
    };
    assert_eq!(debugger_down(&report(true)), None);
    assert_eq!(
        debugger_down(&report(false)).as_deref(),
        Some("osc_debugger is idle (its first OSC datagram starts it)")
    );
    let failed = with(
        RowHealth::Worker(Health::Failed),
        "failed",
        "killed by SIGKILL",
    );
    assert_eq!(
        debugger_down(&failed).as_deref(),
        Some("osc_debugger failed: killed by SIGKILL")
    );
    let starting = with(
        RowHealth::Worker(Health::Degraded),
        "activating",
        "starting",
    );
    assert_eq!(
        debugger_down(&starting).as_deref(),
        Some("osc_debugger is activating")
    );
    let stopped = with(RowHealth::Stopped, "inactive", "start it");
    assert_eq!(
        debugger_down(&stopped).as_deref(),
        Some("osc_debugger is stopped (s on its row starts it)")
    );
    // Without a supervisor: no socket, said as vj-status says it.
    let mut none = with(RowHealth::NotRunning, "-", "no socket at /run/x.sock");
    none.systemd = false;
    assert_eq!(
        debugger_down(&none).as_deref(),
        Some("osc_debugger: no socket at /run/x.sock")
    );
}
