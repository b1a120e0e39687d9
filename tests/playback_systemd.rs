//! The playback monitors under a real systemd user manager, from the installed, sandboxed units:
//! vj-virtualdj follows a history file in the (read-only) home and comes back after `kill -9`;
//! vj-spotify reads a wiremock Spotify with the stored refresh token and never logs it.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{request, wait_until, OscReceiver, UserManager};
use serde_json::json;
use wiremock::matchers::{body_string_contains, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn tracks(rx: &OscReceiver, window: Duration) -> Vec<Vec<serde_json::Value>> {
    rx.collect(window)
        .into_iter()
        .filter(|m| m.address == "/karaoke/track")
        .inspect(|m| assert_eq!(m.types, "issssfi"))
        .map(|m| m.args)
        .collect()
}

/// `systemd-analyze --user security` overall exposure of an installed unit (SPEC: ≤ 2.0).
fn exposure(m: &UserManager, unit: &str) -> f64 {
    let out = m
        .command("systemd-analyze")
        .args(["--user", "security", "--no-pager", unit])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split("Overall exposure level for").nth(1))
        .and_then(|rest| {
            rest.split(':')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "no exposure level: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Waits for a `/karaoke/track` whose title is `title`.
fn wait_track(rx: &OscReceiver, title: &str) -> bool {
    wait_until(Duration::from_secs(15), || {
        tracks(rx, Duration::from_millis(200))
            .iter()
            .any(|a| a[3] == json!(title))
    })
}

#[test]
fn virtualdj_under_systemd_follows_the_history_and_survives_kill_9() {
    let m = UserManager::start();
    let rx = OscReceiver::bind();
    let history = m.home.join("Documents/VirtualDJ/History");
    std::fs::create_dir_all(&history).unwrap();
    let log = history.join("tracklist.txt");
    std::fs::write(&log, "VirtualDJ History 2024/01/15\n------\n").unwrap();
    m.write_config(&format!(
        "[osc]\ntargets = [\"{}\"]\nroutes = []\n",
        rx.addr()
    ));
    m.ok(&["start", "vj-virtualdj.socket", "vj-virtualdj.service"]);
    let sock = m.bus_socket("virtualdj_monitor");
    assert!(wait_until(Duration::from_secs(10), || {
        common::try_request(&sock, &json!({"type":"command","cmd":"health","msg_id":1})).is_ok()
    }));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "21:03 : Daft Punk - One More Time").unwrap();
    assert!(
        wait_track(&rx, "One More Time"),
        "no track from the sandboxed unit"
    );
    let h = request(&sock, &json!({"type":"command","cmd":"health","msg_id":2}));
    assert_eq!(h["data"]["status"], "ok", "{h}");
    assert!(
        h["data"]["checks"]["file"]
            .as_str()
            .unwrap()
            .contains("live"),
        "{h}"
    );

    // kill -9: systemd restarts it and it announces the song again.
    let pid = m.main_pid("vj-virtualdj.service");
    assert!(pid > 0);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    assert!(wait_until(Duration::from_secs(15), || {
        let p = m.main_pid("vj-virtualdj.service");
        p != 0 && p != pid && m.show("vj-virtualdj.service", "ActiveState") == "active"
    }));
    assert_eq!(m.show("vj-virtualdj.service", "NRestarts"), "1");
    assert!(wait_track(&rx, "One More Time"));
    let level = exposure(&m, "vj-virtualdj.service");
    assert!(level <= 2.0, "vj-virtualdj.service exposure {level}");
    eprintln!("vj-virtualdj.service exposure {level}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spotify_under_systemd_uses_the_stored_token_and_never_logs_it() {
    const REFRESH: &str = "AQDsystemd-refresh-9c1e";
    const ACCESS: &str = "BQsystemd-access-77aa";
    let accounts = MockServer::start().await;
    Mock::given(path("/api/token"))
        .and(body_string_contains(format!("refresh_token={REFRESH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600}),
        ))
        .mount(&accounts)
        .await;
    let api = MockServer::start().await;
    Mock::given(path("/v1/me/player"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "is_playing": true, "progress_ms": 1000, "currently_playing_type": "track",
            "item": {"type": "track", "name": "Midnight City", "duration_ms": 243_000,
                     "artists": [{"name": "M83"}], "album": {"name": "Hurry Up, We're Dreaming"}}
        })))
        .mount(&api)
        .await;

    let m = tokio::task::spawn_blocking(UserManager::start)
        .await
        .unwrap();
    let rx = OscReceiver::bind();
    let creds = m.home.join(".local/state/vj/credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let token = creds.join("spotify_refresh_token");
    std::fs::write(&token, REFRESH).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    m.write_config(&format!(
        "[osc]\ntargets = [\"{}\"]\nroutes = []\n[spotify]\nsource = \"web_api\"\nclient_id = \"cid\"\n\
         api_url = \"{}\"\naccounts_url = \"{}\"\npoll_interval_ms = 500\n",
        rx.addr(),
        api.uri(),
        accounts.uri()
    ));
    m.ok(&["start", "vj-spotify.socket", "vj-spotify.service"]);
    let found = tokio::task::spawn_blocking(move || {
        let ok = wait_track(&rx, "Midnight City");
        (m, ok)
    })
    .await
    .unwrap();
    let (m, ok) = found;
    assert!(
        ok,
        "no track from the sandboxed unit: {}",
        m.journal("vj-spotify")
    );
    let state = request(
        &m.bus_socket("spotify_monitor"),
        &json!({"type":"command","cmd":"get_state","msg_id":1}),
    );
    assert_eq!(state["data"]["status"], "ok", "{state}");
    let journal = m.journal("vj-spotify");
    assert!(journal.contains("following Spotify"), "journal: {journal}");
    let said = format!("{state}\n{journal}");
    assert!(
        !said.contains(REFRESH) && !said.contains(ACCESS),
        "a token leaked: {said}"
    );
    let level = exposure(&m, "vj-spotify.service");
    eprintln!("vj-spotify.service exposure {level}");
    assert!(level <= 2.0, "vj-spotify.service exposure {level}");
}
