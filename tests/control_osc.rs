//! Control over OSC on loopback (SPEC section 9): vj-oscquery forwards `/vj/<bus>/<cmd>` to the
//! worker's control socket only for the commands `[control.osc] commands` lists; set_config
//! never takes a URL key over OSC even when listed; the input keeps answering after vj-oscquery
//! restarts itself over OSC. And an `[osc] targets` entry `[::1]:port` receives `/audio/*`.
//! Real binaries run by hand (no root, no systemd); replies read with rosc.

mod oscquery_common;

use std::net::UdpSocket;
use std::time::Duration;

use oscquery_common::{Controller, Rig};
use rosc::OscType;

fn s(v: &str) -> OscType {
    OscType::String(v.into())
}

/// vj-oscquery and vj-oscdebug sharing one bus dir; `commands` as given (None: the default).
fn rig(commands: Option<&str>) -> Rig {
    let debugger_port = oscquery_common::common::free_udp_port();
    let mut rig = Rig::new(
        &commands.map_or(String::new(), |c| format!("commands = {c}")),
        &format!("[osc_debugger]\nlisten = \"127.0.0.1:{debugger_port}\"\n"),
    );
    rig.start("vj-oscdebug", "osc_debugger");
    rig.start("vj-oscquery", "oscquery_server");
    rig
}

fn capacity(rig: &Rig) -> u64 {
    rig.ask("osc_debugger", "get_state")["data"]["config"]["capacity"]
        .as_u64()
        .unwrap()
}

#[test]
fn set_config_over_osc_is_refused_by_default() {
    let rig = rig(None);
    let c = Controller::new(&rig);
    let (ok, msg, _) = c.call("/vj/osc_debugger/get_state", vec![]);
    assert_eq!(ok, 1, "get_state is a default command: {msg}");
    let (ok, msg, _) = c.call(
        "/vj/osc_debugger/set_config",
        vec![s("capacity"), OscType::Int(500)],
    );
    assert_eq!(
        (ok, msg.as_str()),
        (
            0,
            "not allowed: set_config is not in [control.osc] commands"
        )
    );
    assert_eq!(capacity(&rig), 1000, "not applied");
    // The attack of the issue: spotify_monitor's accounts_url, persisted, then its token
    // posted there. Refused before anything is forwarded.
    let (ok, msg, _) = c.call(
        "/vj/spotify_monitor/set_config",
        vec![s("accounts_url"), s("http://127.0.0.1:1/steal")],
    );
    assert_eq!(ok, 0);
    assert!(msg.starts_with("not allowed: "), "{msg}");
    let (ok, msg, _) = c.call("/vj/osc_debugger/restart", vec![]);
    assert_eq!(
        (ok, msg.as_str()),
        (0, "not allowed: restart is not in [control.osc] commands")
    );
    let saved = rig.dir.path().join("state/vj");
    for name in ["spotify_monitor.json", "osc_debugger.json"] {
        assert!(!saved.join(name).exists(), "{name} was persisted");
    }
    let state = rig.state();
    assert_eq!(state["control_osc"]["not_allowed"], 3, "{state}");
    let log = rig.log("vj-oscquery");
    assert_eq!(
        log.matches("control over OSC: not allowed").count(),
        1,
        "one log line per source:\n{log}"
    );
}

#[test]
fn set_config_when_listed_still_never_takes_a_url_or_path_key() {
    let rig = rig(Some(r#"["get_state", "set_config"]"#));
    let c = Controller::new(&rig);
    let (ok, msg, _) = c.call(
        "/vj/osc_debugger/set_config",
        vec![s("capacity"), OscType::Int(500)],
    );
    assert_eq!(ok, 1, "listed: applied ({msg})");
    assert_eq!(capacity(&rig), 500);
    for (addr, key, value) in [
        (
            "/vj/spotify_monitor/set_config",
            "accounts_url",
            "http://127.0.0.1:1/steal",
        ),
        (
            "/vj/lyrics_fetcher/set_config",
            "lrclib_url",
            "http://127.0.0.1:1/",
        ),
        ("/vj/osc_debugger/set_config", "listen", "127.0.0.1:1"),
        ("/vj/virtualdj_monitor/set_config", "path", "/etc/passwd"),
    ] {
        let (ok, msg, _) = c.call(addr, vec![s(key), s(value)]);
        assert_eq!(ok, 0, "{addr} {key}");
        assert!(
            msg.starts_with(&format!("not allowed: set_config of {key:?} over OSC")),
            "{msg}"
        );
    }
    let (ok, msg, _) = c.call("/vj/osc_debugger/tap", vec![]);
    assert_eq!(
        (ok, msg.as_str()),
        (0, "not allowed: tap is not in [control.osc] commands")
    );
    assert!(!rig
        .dir
        .path()
        .join("state/vj/spotify_monitor.json")
        .exists());
}

#[test]
fn control_answers_after_oscquery_restarts_itself() {
    let rig = rig(Some(r#"["health", "oscquery_server/restart"]"#));
    let c = Controller::new(&rig);
    for round in 0..3 {
        let (ok, msg, data) = c.call("/vj/oscquery_server/restart", vec![]);
        assert_eq!(ok, 1, "round {round}: {msg} {data}");
        let (ok, msg, _) = c
            .try_call("/vj/oscquery_server/health", vec![], Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!(
                    "round {round}: control over OSC stopped answering\n{}",
                    rig.log("vj-oscquery")
                )
            });
        assert_eq!(ok, 1, "{msg}");
    }
    let state = rig.state();
    assert_ne!(state["control_osc"], "off", "{state}");
    assert!(state["control_osc"].get("error").is_none(), "{state}");
}

/// The loopback form of tests/rig.rs' controller on another host: `allow` names 127.0.0.1
/// alone, so a controller on 127.0.0.2 (another address of this machine) is refused — no reply,
/// counted, logged once — while one on 127.0.0.1 runs its command and gets the reply. No root.
#[test]
fn control_is_accepted_from_the_allowed_address_only() {
    let debugger_port = oscquery_common::common::free_udp_port();
    let mut rig = Rig::new(
        "allow = [\"127.0.0.1/32\"]",
        &format!("[osc_debugger]\nlisten = \"127.0.0.1:{debugger_port}\"\n"),
    );
    rig.start("vj-oscdebug", "osc_debugger");
    rig.start("vj-oscquery", "oscquery_server");
    let allowed = Controller::new(&rig);
    let (ok, msg, data) = allowed.call("/vj/osc_debugger/health", vec![]);
    assert_eq!(ok, 1, "{msg}");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["worker"], "osc_debugger", "{data}");

    let other = Controller::from_address(&rig, "127.0.0.2");
    for _ in 0..3 {
        let reply = other.try_call(
            "/vj/osc_debugger/health",
            vec![],
            Duration::from_millis(500),
        );
        assert_eq!(reply, None, "nothing goes back to a refused sender");
    }
    let state = rig.state();
    let control = &state["control_osc"];
    assert_eq!(control["accepted"], 1, "{state}");
    assert_eq!(control["refused"]["127.0.0.2"], 3, "{state}");
    let log = rig.log("vj-oscquery");
    assert_eq!(
        log.matches("control over OSC refused").count(),
        1,
        "logged once per sender:\n{log}"
    );
}

#[test]
fn an_ipv6_target_receives_audio() {
    let v6 = v6_listener();
    let port = v6.local_addr().unwrap().port();
    audio_reaches(&v6, &format!("[::1]:{port}"), None);
}

/// A host name whose only address is IPv6 (`::1`, from an /etc/hosts of the worker's own: a
/// mount namespace, hence root) is reached through the IPv6 socket.
#[test]
#[cfg_attr(
    not(vj_root),
    ignore = "needs root, to give the worker its own /etc/hosts"
)]
fn a_name_resolving_to_ipv6_receives_audio() {
    let v6 = v6_listener();
    let port = v6.local_addr().unwrap().port();
    audio_reaches(
        &v6,
        &format!("v6only.test:{port}"),
        Some("::1 v6only.test\n"),
    );
}

fn v6_listener() -> UdpSocket {
    let v6 = UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    v6.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    v6
}

/// Runs vj-audio with `[osc] targets = [target]` (and, given `hosts`, an /etc/hosts of its own
/// holding that text, in a mount namespace); asserts `v6` receives its /audio/levels,
/// /audio/bpm and /audio/spectrum.
fn audio_reaches(v6: &UdpSocket, target: &str, hosts: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vj.toml"),
        format!("[osc]\ntargets = [\"{target}\"]\nroutes = []\n[audio]\nsource = \"demo\"\n"),
    )
    .unwrap();
    let bin = oscquery_common::common::bin_dir().join("vj-audio");
    let mut command = match hosts {
        None => oscquery_common::worker_command(&bin, dir.path()),
        Some(text) => {
            let file = dir.path().join("hosts");
            std::fs::write(&file, text).unwrap();
            let mut c = oscquery_common::worker_command("unshare", dir.path());
            c.args([
                "--mount",
                "sh",
                "-c",
                r#"mount --bind "$0" /etc/hosts && exec "$1""#,
            ])
            .arg(file)
            .arg(&bin);
            c
        }
    };
    let mut child = command
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut seen = std::collections::BTreeSet::new();
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 && std::time::Instant::now() < end {
        let Ok((n, from)) = v6.recv_from(&mut buf) else {
            break;
        };
        assert!(from.is_ipv6());
        for m in vj::osc::decode(&buf[..n]).unwrap() {
            if ["/audio/levels", "/audio/bpm", "/audio/spectrum"].contains(&m.address.as_str()) {
                seen.insert(m.address);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.len(), 3, "{target} received over IPv6: {seen:?}");
}
