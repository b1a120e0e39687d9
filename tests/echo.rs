//! The example worker of docs/ARCHITECTURE.md's "A new worker" (`examples/vj-echo`), made by
//! following that recipe: its units and plist agree with its registry row, and under a real
//! systemd user manager it is socket-activated and answers like any worker — its own command,
//! the common ones, and the errors SPEC section 3 gives — with the shared drop-ins applied.

mod common;
#[path = "../examples/vj-echo/echo.rs"]
#[allow(dead_code)]
mod echo;
mod registry_check;

use std::path::PathBuf;
use std::time::Duration;

use common::{request, OscReceiver, UserManager};
use echo::ECHO;
use serde_json::json;

fn example() -> PathBuf {
    common::repo().join("examples/vj-echo")
}

#[test]
fn the_echo_files_agree_with_its_row() {
    let mut problems = registry_check::check_units(&ECHO, &example().join("units"));
    problems.extend(registry_check::check_plist(
        &ECHO,
        &example().join("launchd"),
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Installs vj-echo beside the suite the way `make install` installs a worker.
fn install(m: &UserManager) {
    let binary = common::bin_dir().join("examples/vj-echo");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test` builds the examples (or `cargo build --example vj-echo`)",
        binary.display()
    );
    let bin_dir = m.home.join(".local/bin");
    std::fs::copy(&binary, bin_dir.join("vj-echo")).unwrap();
    let units = m.home.join(".config/systemd/user");
    for name in ["vj-echo.service", "vj-echo.socket"] {
        let text = std::fs::read_to_string(example().join("units").join(name)).unwrap();
        let text = text
            .replace("%h/.local/bin", bin_dir.to_str().unwrap())
            .replace(
                "%h/.local/state",
                m.home.join(".local/state").to_str().unwrap(),
            );
        std::fs::write(units.join(name), text).unwrap();
    }
    m.ok(&["daemon-reload"]);
    let verify = m
        .command("systemd-analyze")
        .current_dir(&units)
        .args(["--user", "verify", "vj-echo.service", "vj-echo.socket"])
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn echo_runs_under_systemd_like_any_worker() {
    let m = UserManager::start();
    let rx = OscReceiver::bind();
    m.write_config(&format!("[osc]\ntargets = [\"{}\"]\n", rx.addr()));
    install(&m);
    m.ok(&["start", "vj-echo.socket"]);
    assert_eq!(m.show("vj-echo.service", "ActiveState"), "inactive");

    let sock = m.bus_socket("echo");
    let ask = |body: serde_json::Value| request(&sock, &body);
    // The first connection starts it.
    let r = ask(json!({"type": "command", "cmd": "echo", "text": "hi", "msg_id": 1}));
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["data"]["echo"], "hi");
    assert_eq!(r["msg_id"], 1);
    let sent = rx.collect(Duration::from_millis(500));
    assert!(
        sent.iter()
            .any(|m| m.address == "/echo/text" && m.types == "s"),
        "{sent:?}"
    );

    // Its errors are the runtime's, exactly as for the suite's workers.
    let r = ask(json!({"type": "command", "cmd": "echo"}));
    assert_eq!(r["message"], "bad argument `text`: missing", "{r}");
    let r = ask(json!({"type": "command", "cmd": "echo", "text": 5}));
    assert_eq!(r["success"], false);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("bad argument `text`:"),
        "{r}"
    );
    let r = ask(json!({"type": "command", "cmd": "frobnicate"}));
    assert_eq!(r["message"], "Unknown command: frobnicate");

    // The common commands come with the runtime.
    let s = ask(json!({"type": "command", "cmd": "get_state"}))["data"].clone();
    assert_eq!(s["worker"], "echo");
    assert_eq!(s["status"], "ok");
    assert_eq!(s["detail"], "echoing");
    assert_eq!(s["echoes"], 1);
    assert_eq!(s["config"], json!({}));
    let h = ask(json!({"type": "command", "cmd": "health"}))["data"].clone();
    assert_eq!(h["status"], "ok", "{h}");
    let r = ask(json!({"type": "command", "cmd": "set_config", "greeting": "x"}));
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("unknown config key `echo.greeting`"),
        "{r}"
    );
    let r = ask(json!({"type": "command", "cmd": "restart"}));
    assert_eq!(r["success"], true, "{r}");

    // The shared drop-ins made it a notify service with a watchdog, sandboxed.
    assert_eq!(m.show("vj-echo.service", "ActiveState"), "active");
    assert_eq!(m.show("vj-echo.service", "Type"), "notify");
    assert_eq!(m.show("vj-echo.service", "WatchdogUSec"), "10s");
    assert_eq!(m.show("vj-echo.service", "PrivateUsers"), "yes");
    assert_eq!(m.show("vj-echo.service", "StatusText"), "echoing");
    m.ok(&["stop", "vj-echo.service", "vj-echo.socket"]);
}
