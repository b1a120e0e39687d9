//! Every worker's commands refuse what they do not take (SPEC section 3): an argument a command
//! does not name, or one of the wrong type, gets `success:false` naming it — decoded by
//! `bus::command`, so each worker's command enum is checked here, and the common commands and
//! a worker's own over a real socket (vj-oscdebug and vj-audio started by hand).

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{request, wait_until, worker_command, ByHand};
use serde_json::{json, Map, Value};
use vj::bus::command::{decode, Rejected};

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// `cmd` with `good` decodes; with `wat: 1` added it is refused naming `wat`; with `bad` (one
/// argument of the wrong type) refused naming that argument.
fn refuses<C: serde::de::DeserializeOwned + std::fmt::Debug>(
    cmd: &str,
    good: Value,
    bad: Option<(&str, Value)>,
) {
    decode::<C>(cmd, &args(good.clone())).unwrap_or_else(|e| panic!("{cmd} {good}: {e}"));
    let mut extra = args(good.clone());
    extra.insert("wat".into(), json!(1));
    match decode::<C>(cmd, &extra) {
        Err(Rejected::BadArgument(m)) => assert!(m.contains("`wat`"), "{cmd}: {m}"),
        other => panic!("{cmd} with wat: {other:?}"),
    }
    if let Some((key, value)) = bad {
        let mut wrong = args(good);
        wrong.insert(key.into(), value);
        match decode::<C>(cmd, &wrong) {
            Err(Rejected::BadArgument(m)) => assert!(m.contains(&format!("`{key}`")), "{m}"),
            other => panic!("{cmd} with a bad {key}: {other:?}"),
        }
    }
}

#[test]
fn the_analyzers_commands_refuse_unknown_arguments() {
    use vj::audio::worker::AudioCommand as C;
    refuses::<C>(
        "set_tempo",
        json!({"bpm": 100, "lock": true}),
        Some(("lock", json!("yes"))),
    );
    refuses::<C>("nudge", json!({"ms": 20}), Some(("ms", json!("later"))));
    for cmd in [
        "list_devices",
        "tap",
        "tempo_double",
        "tempo_half",
        "resync",
    ] {
        refuses::<C>(cmd, json!({}), None);
    }
}

#[test]
fn the_lyrics_fetchers_commands_refuse_unknown_arguments() {
    refuses::<vj::lyrics::LyricsCommand>(
        "fetch_lyrics",
        json!({"artist": "A", "title": "T", "duration": 200}),
        Some(("duration", json!("long"))),
    );
}

#[test]
fn the_debuggers_commands_refuse_unknown_arguments() {
    use vj::oscdebug::DebuggerCommand as C;
    refuses::<C>(
        "get_messages",
        json!({"count": 3, "prefix": "/audio/"}),
        Some(("count", json!(-1))),
    );
    refuses::<C>(
        "subscribe",
        json!({"every_ms": 40}),
        Some(("since", json!("now"))),
    );
    refuses::<C>("get_stats", json!({}), None);
    refuses::<C>("clear", json!({}), None);
}

#[test]
fn workers_without_commands_of_their_own_know_none() {
    // vj-spotify, vj-virtualdj, vj-oscquery: only the common commands (checked over a socket
    // below), anything else is an unknown command, not a bad argument.
    assert_eq!(
        decode::<vj::worker::NoCommand>("set_tempo", &args(json!({"wat": 1}))).unwrap_err(),
        Rejected::Unknown
    );
}

fn refused_naming(reply: &Value, key: &str) {
    assert_eq!(reply["type"], "ack", "{reply}");
    assert_eq!(reply["success"], false, "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("`{key}`")), "{reply}");
}

#[test]
fn over_a_socket_an_unknown_argument_gets_success_false_naming_it() {
    let d = ByHand::start("");
    let sock = d.socket();
    let ask = |v: Value| request(&sock, &v);
    // The common commands, in the runtime.
    for cmd in ["get_state", "health", "restart"] {
        refused_naming(
            &ask(json!({"type": "command", "cmd": cmd, "wat": 1})),
            "wat",
        );
    }
    // The debugger's own.
    refused_naming(
        &ask(json!({"type": "command", "cmd": "get_messages", "count": 1, "wat": 1})),
        "wat",
    );
    refused_naming(
        &ask(json!({"type": "command", "cmd": "get_messages", "count": "lots"})),
        "count",
    );
    // And what it does take still works.
    let ok = ask(json!({"type": "command", "cmd": "get_messages", "count": 1}));
    assert_eq!(ok["success"], true, "{ok}");
}

struct Audio(Child, tempfile::TempDir);

impl Drop for Audio {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn set_tempo_with_an_unknown_argument_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vj.toml"),
        "[osc]\ntargets = []\nroutes = []\n[audio]\nsource = \"demo\"\n",
    )
    .unwrap();
    let child = worker_command(env!("CARGO_BIN_EXE_vj-audio"), dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let audio = Audio(child, dir);
    let sock = audio.1.path().join("bus/audio_analyzer.sock");
    assert!(
        wait_until(Duration::from_secs(20), || {
            common::try_request(&sock, &json!({"type": "command", "cmd": "health"})).is_ok()
        }),
        "vj-audio did not come up"
    );
    let reply = request(
        &sock,
        &json!({"type": "command", "cmd": "set_tempo", "bpm": 100, "lock": true, "wat": 1}),
    );
    refused_naming(&reply, "wat");
    let state = request(&sock, &json!({"type": "command", "cmd": "get_state"}));
    assert_ne!(state["data"]["tempo_source"], "locked", "{state}");
    assert!(
        (state["data"]["bpm"].as_f64().unwrap_or(0.0) - 100.0).abs() > 1.0,
        "the refused set_tempo took effect: {state}"
    );
}
