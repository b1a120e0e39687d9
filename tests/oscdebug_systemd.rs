//! vj-oscdebug under a real systemd user manager: socket activation, the socket's mode, OSC
//! capture, restart after kill -9 without refusing a connection, the watchdog, the start limit,
//! and what vj-status says of all that.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{request, send_osc, wait_until, UserManager};
use rosc::OscType;
use serde_json::json;

const SERVICE: &str = "vj-oscdebug.service";

/// A manager with the debugger's sockets listening on a port of this test's own.
fn suite() -> (UserManager, u16) {
    let m = UserManager::start();
    let port = common::free_udp_port();
    m.move_udp_port("vj-oscdebug-osc.socket", port);
    // Only the debugger's sockets: the rest of the suite is not under test here.
    m.ok(&["start", "vj-oscdebug.socket", "vj-oscdebug-osc.socket"]);
    (m, port)
}

#[test]
fn the_worker_starts_on_the_first_request_and_captures_osc() {
    let (m, port) = suite();
    let sock = m.bus_socket("osc_debugger");

    assert_eq!(m.show(SERVICE, "ActiveState"), "inactive");
    let status = m.vj_status(&[]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("idle"), "{table}");
    assert_eq!(status.status.code(), Some(0), "{table}");
    assert_eq!(
        m.show(SERVICE, "ActiveState"),
        "inactive",
        "looking must not start the worker"
    );

    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");
    let dir_mode = std::fs::metadata(sock.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    let reply = request(
        &sock,
        &json!({"type": "command", "cmd": "get_state", "msg_id": "first"}),
    );
    assert_eq!(reply["msg_id"], "first");
    assert_eq!(reply["success"], true);
    assert_eq!(reply["data"]["worker"], "osc_debugger");
    assert_eq!(m.show(SERVICE, "ActiveState"), "active");

    send_osc(
        &format!("127.0.0.1:{port}"),
        "/karaoke/pos",
        vec![OscType::Float(12.5), OscType::Int(1)],
    );
    let mut got = json!(null);
    assert!(
        wait_until(Duration::from_secs(5), || {
            got = request(
                &sock,
                &json!({"type": "command", "cmd": "get_messages", "count": 10, "prefix": "/karaoke/"}),
            );
            got["data"]["count"] == 1
        }),
        "{got}"
    );
    let msg = &got["data"]["messages"][0];
    assert_eq!(msg["address"], "/karaoke/pos");
    assert_eq!(msg["types"], "fi");
    assert_eq!(msg["args"], json!([12.5, 1]));

    let status = m.vj_status(&[]);
    let table = String::from_utf8_lossy(&status.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("osc_debugger"))
        .unwrap();
    assert!(row.contains("active") && row.contains(" ok "), "{table}");
    assert!(row.contains(&m.main_pid(SERVICE).to_string()), "{table}");
}

#[test]
fn kill_9_five_times_refuses_no_connection() {
    let (m, _) = suite();
    let sock = m.bus_socket("osc_debugger");
    request(&sock, &json!({"type": "command", "cmd": "health"}));

    let stop = Arc::new(AtomicBool::new(false));
    let (refused, answered) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let client = {
        let (stop, refused, answered, sock) = (
            stop.clone(),
            refused.clone(),
            answered.clone(),
            sock.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // A request in flight when the worker is killed may be cut off; a connection
                // must never be refused (the socket unit keeps listening).
                match common::try_request(&sock, &json!({"type": "command", "cmd": "health"})) {
                    Err(e) if e.starts_with("connect") => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {}
                    Ok(_) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    for round in 1..=5 {
        let pid = m.main_pid(SERVICE);
        assert_ne!(pid, 0, "round {round}: worker running");
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill");
        assert!(
            wait_until(Duration::from_secs(20), || {
                let now = m.main_pid(SERVICE);
                now != 0 && now != pid && m.show(SERVICE, "ActiveState") == "active"
            }),
            "round {round}: the worker did not come back"
        );
        let reply = request(
            &sock,
            &json!({"type": "command", "cmd": "health", "msg_id": round}),
        );
        assert_eq!(reply["msg_id"], round);
        assert_eq!(reply["data"]["status"], "ok");
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();

    assert_eq!(refused.load(Ordering::SeqCst), 0, "connections refused");
    let answered = answered.load(Ordering::SeqCst);
    // Most of the test is spent restarting (RestartSec=1), the requests queued meanwhile.
    assert!(answered >= 5, "only {answered} requests answered");
    assert_eq!(m.show(SERVICE, "NRestarts"), "5");
    let status = m.vj_status(&["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let row = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == "osc_debugger")
        .unwrap()
        .clone();
    assert_eq!(row["restarts"], 5);
    assert_eq!(row["health"], "ok");
}

#[test]
fn a_stopped_worker_is_restarted_by_the_watchdog() {
    let (m, _) = suite();
    // The shipped WatchdogSec=10 works the same; 2 s keeps the test short.
    m.drop_in(SERVICE, "[Service]\nWatchdogSec=2\n");
    let sock = m.bus_socket("osc_debugger");
    request(&sock, &json!({"type": "command", "cmd": "health"}));
    let pid = m.main_pid(SERVICE);
    assert_ne!(pid, 0);

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
        rustix::process::Signal::STOP,
    )
    .expect("kill");
    assert!(
        wait_until(Duration::from_secs(40), || {
            let now = m.main_pid(SERVICE);
            now != 0 && now != pid && m.show(SERVICE, "ActiveState") == "active"
        }),
        "not restarted: {}",
        m.show(SERVICE, "ActiveState")
    );
    assert_eq!(m.show(SERVICE, "NRestarts"), "1");
    let journal = m.journal("vj-oscdebug");
    let reply = request(&sock, &json!({"type": "command", "cmd": "health"}));
    assert_eq!(reply["data"]["status"], "ok", "{journal}");
}

#[test]
fn a_crash_loop_hits_the_start_limit_and_vj_status_says_failed() {
    let m = UserManager::start();
    m.move_udp_port("vj-oscdebug-osc.socket", common::free_udp_port());
    m.ok(&["start", "vj-oscdebug.socket", "vj-oscdebug-osc.socket"]);
    let sock = m.bus_socket("osc_debugger");
    // The first connection starts it; then it dies as soon as it runs, again and again.
    let _ = std::os::unix::net::UnixStream::connect(&sock);
    let mut kills = 0;
    let hit = wait_until(Duration::from_secs(60), || {
        if m.show("vj-oscdebug.socket", "Result") == "service-start-limit-hit" {
            return true;
        }
        let pid = m.main_pid(SERVICE);
        if pid != 0 && m.show(SERVICE, "ActiveState") == "active" {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
                rustix::process::Signal::KILL,
            );
            kills += 1;
        }
        false
    });
    assert!(
        hit,
        "after {kills} kills: service {} ({}), socket {}",
        m.show(SERVICE, "ActiveState"),
        m.show(SERVICE, "Result"),
        m.show("vj-oscdebug.socket", "Result")
    );
    assert_eq!(m.show(SERVICE, "ActiveState"), "failed");
    // python-vj's "at most 5 restarts a minute": the first start and 5 restarts.
    assert_eq!(kills, 6, "killed once per start");

    let status = m.vj_status(&[]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("osc_debugger"))
        .unwrap();
    assert!(
        row.contains("failed") && row.contains("start limit"),
        "{table}"
    );
}

#[test]
fn a_config_error_stops_at_once_with_exit_78_and_vj_status_says_what_to_fix() {
    let m = UserManager::start();
    m.move_udp_port("vj-oscdebug-osc.socket", common::free_udp_port());
    m.write_config("[osc_debugger]\ncapasity = 10\n");
    m.ok(&["start", "vj-oscdebug.socket", "vj-oscdebug-osc.socket"]);
    let sock = m.bus_socket("osc_debugger");
    let _ = std::os::unix::net::UnixStream::connect(&sock);
    assert!(
        wait_until(Duration::from_secs(20), || m.show(SERVICE, "ActiveState")
            == "failed"),
        "service {} ({})",
        m.show(SERVICE, "ActiveState"),
        m.show(SERVICE, "Result")
    );
    // Not retried: RestartPreventExitStatus=78.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(m.show(SERVICE, "ActiveState"), "failed");
    assert_eq!(m.show(SERVICE, "NRestarts"), "0");
    assert_eq!(m.show(SERVICE, "ExecMainStatus"), "78");
    assert_eq!(m.show(SERVICE, "Result"), "exit-code");
    let text = m.show(SERVICE, "StatusText");
    assert!(
        text.contains("unknown config key `osc_debugger.capasity`"),
        "{text}"
    );

    let status = m.vj_status(&[]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("osc_debugger"))
        .unwrap();
    assert!(
        row.contains("failed")
            && row.contains("unknown config key `osc_debugger.capasity`")
            && row.contains("exited 78: a config error"),
        "{table}"
    );
    let journal = m.journal("vj-oscdebug");
    assert!(
        journal.contains("unknown config key `osc_debugger.capasity`"),
        "the journal names the bad key:\n{journal}"
    );
}
