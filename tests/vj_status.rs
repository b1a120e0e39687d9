//! `vj-status` as an operator uses it without systemd (a worker run by hand, the bus dir
//! scanned): `send` any command, `osc --follow`, one worker's state, and the exit codes — 2
//! when nothing is reachable.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{send_osc, ByHand};
use rosc::OscType;

/// `vj-status` with no user manager to ask (an empty runtime dir) and `bus` as the bus dir.
fn vj_status(bus: &Path) -> Command {
    let runtime = bus.parent().unwrap().join("no-manager");
    std::fs::create_dir_all(&runtime).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_vj-status"));
    c.env("VJ_BUS_DIR", bus)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("VJ_CONFIG", bus.parent().unwrap().join("vj.toml"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null());
    c
}

fn run(bus: &Path, args: &[&str]) -> Output {
    vj_status(bus).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn nothing_reachable_exits_2_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("bus");
    std::fs::create_dir_all(&bus).unwrap();
    std::fs::write(dir.path().join("vj.toml"), "").unwrap();
    let out = run(&bus, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let table = text(&out.stdout);
    assert!(table.contains("not running"), "{table}");
    assert!(
        table.contains("no systemd user manager answered"),
        "{table}"
    );
    // A worker asked for by name is not there either: an error saying how to start it.
    let out = run(&bus, &["oscdebug"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not reachable"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn send_runs_any_command_and_says_when_it_fails() {
    let w = ByHand::start("");
    let bus = w.dir.path().join("bus");
    let out = run(&bus, &["send", "oscdebug", "set_config", "capacity=7"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["success"], true, "{reply}");
    assert_eq!(
        reply["data"]["config"]["capacity"], 7,
        "key=value as JSON when it parses"
    );

    let out = run(
        &bus,
        &["send", "osc_debugger", "get_messages", "prefix=/nothing/"],
    );
    assert_eq!(out.status.code(), Some(0));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["data"]["count"], 0, "{reply}");

    let out = run(&bus, &["send", "oscdebug", "frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).trim(), "Unknown command: frobnicate");
    let out = run(&bus, &["send", "oscdebug", "get_messages", "count=lots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("bad argument `count`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&bus, &["send", "oscdebug", "get_messages", "count"]);
    assert_eq!(out.status.code(), Some(2), "not key=value");

    // The table and one worker's state, from the bus dir alone.
    let out = run(&bus, &[]);
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("osc_debugger"))
        .unwrap();
    assert!(
        row.contains("ok") && row.contains("capturing OSC"),
        "{table}"
    );
    assert_eq!(out.status.code(), Some(0), "{table}");
    let out = run(&bus, &["--json", "vj-oscdebug"]);
    assert_eq!(out.status.code(), Some(0));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["worker"], "osc_debugger");
    assert_eq!(state["capacity"], 7);
}

#[test]
fn osc_follow_prints_messages_as_they_arrive() {
    let w = ByHand::start("");
    let bus = w.dir.path().join("bus");
    let addr = format!("127.0.0.1:{}", w.osc_port());
    send_osc(&addr, "/before/follow", vec![OscType::Int(1)]);
    let mut follow = vj_status(&bus)
        .args(["osc", "--follow", "-n", "5", "/test/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Sent while it follows: printed within a moment, with type tags and values.
    std::thread::sleep(Duration::from_millis(500));
    send_osc(
        &addr,
        "/test/value",
        vec![OscType::Int(42), OscType::String("hi".into())],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let done = line.contains("/test/value");
            lines.push(line);
            if done {
                break;
            }
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let line = lines
        .iter()
        .find(|l| l.contains("/test/value"))
        .unwrap_or_else(|| panic!("not followed: {lines:?}"));
    assert!(
        line.contains(" is ") && line.contains("42") && line.contains("\"hi\""),
        "{line}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("/before/")),
        "prefix filter: {lines:?}"
    );
}
