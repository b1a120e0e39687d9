//! `vj-status start|stop|restart <worker|all>` and `vj-status logs <worker> [-f]` under a real
//! systemd user manager (its journal in the manager's namespace, found by vj-status itself),
//! and a failed worker's row saying why it failed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{wait_until, UserManager};
use vj::registry::WORKERS;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn quiet_suite() -> UserManager {
    let m = UserManager::start();
    for w in WORKERS {
        if let Some(osc) = w.osc_socket() {
            m.move_udp_port(&osc, common::free_udp_port());
        }
    }
    m.write_config("[osc]\ntargets = []\nroutes = []\n[audio]\nsource = \"demo\"\n");
    m
}

#[test]
fn start_stop_restart_and_logs_use_the_same_words_as_systemd() {
    let m = quiet_suite();
    let service = "vj-oscdebug.service";

    let out = m.vj_status(&["start", "oscdebug"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "started vj-oscdebug\n"
    );
    assert_eq!(m.show(service, "ActiveState"), "active");
    assert_eq!(m.show("vj-oscdebug-osc.socket", "ActiveState"), "active");

    let pid = m.main_pid(service);
    let out = m.vj_status(&["restart", "osc_debugger"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(wait_until(Duration::from_secs(10), || {
        let p = m.main_pid(service);
        p != 0 && p != pid
    }));

    // The journal, found in the private manager's namespace: both runs said they were ready.
    let logs = m.vj_status(&["logs", "oscdebug", "-n", "50"]);
    let log = text(&logs);
    assert!(logs.status.success(), "{log}");
    assert!(log.matches("ready").count() >= 2, "{log}");
    assert!(
        log.contains(&format!("vj-oscdebug[{}]", m.main_pid(service))),
        "{log}"
    );

    // -f keeps printing: a restart's lines arrive while it follows.
    let mut follow = m
        .command(m.home.join(".local/bin/vj-status"))
        .args(["logs", "oscdebug", "-f", "-n", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let pid = m.main_pid(service);
    m.ok(&["restart", service]);
    let new_pid = format!("[{}]", {
        assert!(wait_until(Duration::from_secs(10), || {
            let p = m.main_pid(service);
            p != 0 && p != pid
        }));
        m.main_pid(service)
    });
    let mut followed = Vec::new();
    let saw = wait_until(Duration::from_secs(10), || {
        followed.extend(rx.try_iter());
        followed
            .iter()
            .any(|l| l.contains(&new_pid) && l.contains("ready"))
    });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(saw, "followed: {followed:?}");

    let out = m.vj_status(&["stop", "oscdebug"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.show(service, "ActiveState"), "inactive");
    // Its sockets too: nothing wakes it until `start`.
    assert_eq!(m.show("vj-oscdebug.socket", "ActiveState"), "inactive");
    assert_eq!(m.show("vj-oscdebug-osc.socket", "ActiveState"), "inactive");

    let out = m.vj_status(&["start", "all"]);
    assert!(out.status.success(), "{}", text(&out));
    for w in WORKERS {
        assert_eq!(
            m.show(&w.service(), "ActiveState"),
            "active",
            "{}",
            w.binary
        );
    }
    let out = m.vj_status(&["stop", "all"]);
    assert!(out.status.success(), "{}", text(&out));
    for w in WORKERS {
        assert_eq!(
            m.show(&w.service(), "ActiveState"),
            "inactive",
            "{}",
            w.binary
        );
        assert_eq!(
            m.show(&w.control_socket(), "ActiveState"),
            "inactive",
            "{}",
            w.binary
        );
    }

    // Wrong words say what the right ones are.
    let out = m.vj_status(&["restart", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("the workers are audio_analyzer"),
        "{}",
        text(&out)
    );
    let out = m.vj_status(&["logs", "all"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("one worker at a time"),
        "{}",
        text(&out)
    );
}
