//! `set_config` is kept across a restart for every worker, under its real, sandboxed unit: each
//! writes its overrides to $XDG_STATE_HOME/vj/<bus name>.json (atomically, 0600) through the
//! one path its unit lets it write, and a new process starts from them.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{request, UserManager};
use serde_json::json;

#[test]
fn every_worker_keeps_its_set_config_across_a_restart() {
    let m = UserManager::start();
    let (debugger, lyrics) = (common::free_udp_port(), common::free_udp_port());
    m.write_config(&format!(
        "[osc]\ntargets = [\"127.0.0.1:{debugger}\"]\nroutes = []\n[audio]\nsource = \"demo\"\n\
         [lyrics]\nlisten = \"127.0.0.1:{lyrics}\"\n[osc_debugger]\nlisten = \"127.0.0.1:{debugger}\"\n"
    ));
    m.move_udp_port("vj-oscdebug-osc.socket", debugger);
    m.move_udp_port("vj-lyrics-osc.socket", lyrics);
    m.ok(&["start", "vj.target"]);
    let changes = [
        (
            "audio_analyzer",
            json!({"smoothing": 0.3}),
            "smoothing",
            json!(0.3),
        ),
        (
            "spotify_monitor",
            json!({"poll_interval_ms": 3000}),
            "poll_interval_ms",
            json!(3000),
        ),
        (
            "virtualdj_monitor",
            json!({"lead_s": 12}),
            "lead_s",
            json!(12.0),
        ),
        (
            "lyrics_fetcher",
            json!({"offset_ms": -250}),
            "offset_ms",
            json!(-250),
        ),
        (
            "osc_debugger",
            json!({"capacity": 77}),
            "capacity",
            json!(77),
        ),
    ];
    for (bus, args, key, want) in &changes {
        let mut body = args.clone();
        body["type"] = json!("command");
        body["cmd"] = json!("set_config");
        let r = request(&m.bus_socket(bus), &body);
        assert_eq!(r["success"], true, "{bus}: {r}");
        assert_eq!(&r["data"]["config"][key], want, "{bus}: {r}");
        let saved = m.home.join(format!(".local/state/vj/{bus}.json"));
        let meta = std::fs::metadata(&saved).unwrap_or_else(|e| panic!("{bus}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{bus}");
    }
    for (bus, _, key, want) in &changes {
        let unit = vj::registry::find(bus).unwrap().service();
        let before = m.main_pid(&unit);
        m.ok(&["restart", &unit]);
        let state = request(
            &m.bus_socket(bus),
            &json!({"type": "command", "cmd": "get_state"}),
        );
        assert_ne!(state["data"]["pid"], json!(before), "{bus}: a new process");
        assert_eq!(
            &state["data"]["config"][key], want,
            "{bus} kept it: {state}"
        );
    }
}
