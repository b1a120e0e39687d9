//! vj-spotify end to end, run by hand, against real HTTP servers on 127.0.0.1 that answer like
//! Spotify's token and player endpoints (wiremock; a raw listener for a stalled answer), with a
//! real OSC receiver; and `vj-spotify login` through its real redirect.

mod playback_common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use playback_common::Rig;
use serde_json::{json, Value};
use tokio::time::Instant;
use vj::karaoke::PlaybackEvent;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_vj-spotify");
const BUS: &str = "spotify_monitor";
const REFRESH: &str = "AQDrefresh-s3cr3t-7f9a2c";
const ACCESS: &str = "BQaccess-t0ken-41d8";

fn playing(progress_ms: Value, is_playing: bool) -> Value {
    json!({
        "is_playing": is_playing, "progress_ms": progress_ms, "currently_playing_type": "track",
        "timestamp": 1_700_000_000_000u64,
        "item": {"type": "track", "name": "Get Lucky", "duration_ms": 369_000,
                 "artists": [{"name": "Daft Punk"}, {"name": "Pharrell Williams"}],
                 "album": {"name": "Random Access Memories"}}
    })
}

/// Spotify's accounts service: a token for our refresh token only.
async fn accounts() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!("refresh_token={REFRESH}")))
        .and(body_string_contains("client_id=test-client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600,
            "scope": "user-read-playback-state"
        })))
        .mount(&server)
        .await;
    server
}

fn player_mock() -> wiremock::MockBuilder {
    Mock::given(method("GET")).and(path("/v1/me/player"))
}

/// A Web API whose player answers `first`, one each, then "Get Lucky" plays.
async fn api_answering(first: Vec<ResponseTemplate>) -> MockServer {
    let api = MockServer::start().await;
    let n = first.len() as u8;
    for (i, answer) in first.into_iter().enumerate() {
        player_mock()
            .respond_with(answer)
            .up_to_n_times(1)
            .with_priority(i as u8 + 1)
            .mount(&api)
            .await;
    }
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(playing(json!(5000), true)))
        .with_priority(n + 1)
        .mount(&api)
        .await;
    api
}

/// The worker with a stored refresh token, aimed at `api` and `accounts`.
async fn worker(api: &str, accounts: &str, extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("state/vj/credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let token = creds.join("spotify_refresh_token");
    std::fs::write(&token, format!("{REFRESH}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "[spotify]\nsource = \"web_api\"\nclient_id = \"test-client\"\napi_url = \"{api}\"\n\
         accounts_url = \"{accounts}\"\npoll_interval_ms = 200\ntimeout_ms = 400\n{extra}"
    );
    Rig::start_in(dir, BIN, BUS, &config, |_| {}).await
}

fn assert_no_secret(rig: &Rig, state: &Value) {
    let text = format!("{}\n{state}", rig.stderr());
    for secret in [REFRESH, ACCESS] {
        assert!(!text.contains(secret), "a token leaked: {text}");
    }
}

#[tokio::test]
async fn a_playing_track_is_announced_and_its_position_moves_at_4_hz() {
    let accounts = accounts().await;
    let api = MockServer::start().await;
    // Like Spotify, the progress moves with time.
    let t0 = std::time::Instant::now();
    Mock::given(method("GET"))
        .and(path("/v1/me/player"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {ACCESS}").as_str(),
        ))
        .respond_with(move |_: &wiremock::Request| {
            let ms = 61_500 + t0.elapsed().as_millis() as u64;
            ResponseTemplate::new(200).set_body_json(playing(json!(ms), true))
        })
        .mount(&api)
        .await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let (_, t) = rig.next_track().await;
    let t = t.expect("a track");
    assert_eq!(t.source, "spotify");
    assert_eq!(t.artist, "Daft Punk, Pharrell Williams");
    assert_eq!(
        (t.title.as_str(), t.album.as_str()),
        ("Get Lucky", "Random Access Memories")
    );
    assert_eq!(t.duration_s, 369.0);

    let heard = rig.hear_until(Duration::from_millis(2100), |_| false).await;
    let pos: Vec<(Instant, f32, bool)> = heard
        .iter()
        .filter_map(|(at, e)| match e {
            PlaybackEvent::Position(p) => Some((*at, p.seconds, p.playing)),
            _ => None,
        })
        .collect();
    // 4 Hz or more over two seconds, playing, near 61.5 s and moving forward.
    assert!(pos.len() >= 8, "{} positions in 2 s", pos.len());
    assert!(
        pos.iter().all(|p| p.2 && (61.0..80.0).contains(&p.1)),
        "{pos:?}"
    );
    assert!(pos.last().unwrap().1 > pos[0].1 + 1.0, "{pos:?}");
    // Between polls the interpolated position never runs backwards by more than jitter.
    assert!(pos.windows(2).all(|w| w[1].1 > w[0].1 - 0.3), "{pos:?}");
    // The same song polled again is not announced again.
    assert!(!heard
        .iter()
        .any(|(_, e)| matches!(e, PlaybackEvent::Track(_))));

    let s = rig.state().await;
    assert_eq!(s["status"], "ok");
    assert_eq!(s["source"], "web_api");
    assert_eq!(s["track"]["title"], "Get Lucky");
    let h = rig.request("health", json!({})).await;
    assert!(
        h.data["checks"]["source"]
            .as_str()
            .unwrap()
            .starts_with("live: web_api"),
        "{h:?}"
    );
    assert_no_secret(&rig, &s);
}

#[tokio::test]
async fn nothing_playing_204_episodes_and_a_null_progress() {
    let accounts = accounts().await;
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(playing(Value::Null, true)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&api)
        .await;
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "is_playing": true, "progress_ms": 1000, "currently_playing_type": "episode",
            "item": {"type": "episode", "name": "A podcast", "duration_ms": 3_600_000}
        })))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&api)
        .await;
    player_mock()
        .respond_with(ResponseTemplate::new(204))
        .with_priority(3)
        .mount(&api)
        .await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    // progress_ms null: the track still counts, its position starts at 0.
    let (_, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
    // An episode is not a song: "nothing plays", once; the 204s after it change nothing.
    let (_, t) = rig.next_track().await;
    assert_eq!(t, None);
    let more = rig
        .hear_until(Duration::from_millis(800), |e| {
            matches!(e, PlaybackEvent::Track(_))
        })
        .await;
    assert!(
        !more
            .iter()
            .any(|(_, e)| matches!(e, PlaybackEvent::Track(_))),
        "{more:?}"
    );
    let s = rig.wait_state("204", |s| s["playing_type"] == "none").await;
    assert_eq!(s["track"], Value::Null);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_then_succeeds() {
    let accounts = accounts().await;
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"status": 401, "message": "The access token expired"}}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&api)
        .await;
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(playing(json!(1000), true)))
        .with_priority(2)
        .mount(&api)
        .await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let (_, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
    let tokens = accounts.received_requests().await.unwrap();
    assert_eq!(tokens.len(), 2, "one refresh at start, one after the 401");
    assert_no_secret(&rig, &rig.state().await);
}

#[tokio::test]
async fn a_401_after_refreshing_is_degraded_and_says_to_log_in() {
    let accounts = accounts().await;
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(401))
        .mount(&api)
        .await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let s = rig
        .wait_state("degraded", |s| s["status"] == "degraded")
        .await;
    assert!(
        s["detail"].as_str().unwrap().contains("vj-spotify login"),
        "{s}"
    );
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        2,
        "refresh once, not a loop"
    );
    assert_no_secret(&rig, &s);
}

#[tokio::test]
async fn a_revoked_refresh_token_says_login_is_needed_again() {
    let accounts = MockServer::start().await;
    Mock::given(path("/api/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Refresh token revoked"}),
        ))
        .mount(&accounts)
        .await;
    let api = MockServer::start().await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let s = rig
        .wait_state("degraded", |s| s["status"] == "degraded")
        .await;
    let detail = s["detail"].as_str().unwrap();
    assert!(
        detail.contains("invalid_grant") && detail.contains("vj-spotify login` again"),
        "{s}"
    );
    assert_no_secret(&rig, &s);
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let accounts = accounts().await;
    let api = api_answering(vec![
        ResponseTemplate::new(429).insert_header("Retry-After", "2")
    ])
    .await;
    let started = Instant::now();
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let s = rig
        .wait_state("rate limited", |s| s["status"] == "degraded")
        .await;
    assert!(s["detail"].as_str().unwrap().contains("retry in 2s"), "{s}");
    let (at, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
    // The poll interval is 200 ms: only Retry-After explains a 2 s gap.
    assert!(
        at - started >= Duration::from_secs(2),
        "asked again too soon"
    );
    assert_eq!(rig.state().await["status"], "ok");
}

#[tokio::test]
async fn a_500_and_malformed_json_back_off_and_recover() {
    let accounts = accounts().await;
    let api = api_answering(vec![
        ResponseTemplate::new(500),
        ResponseTemplate::new(200).set_body_string("{\"is_playing\": tru"),
    ])
    .await;
    let mut rig = worker(&api.uri(), &accounts.uri(), "").await;
    rig.wait_state("500", |s| {
        s["detail"].as_str().unwrap_or("").contains("HTTP 500")
    })
    .await;
    let s = rig
        .wait_state("malformed", |s| {
            s["detail"]
                .as_str()
                .unwrap_or("")
                .contains("not the JSON expected")
        })
        .await;
    assert!(s["detail"].as_str().unwrap().contains("retry in"), "{s}");
    let (_, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
    assert!(rig.alive());
}

#[tokio::test]
async fn a_stalled_answer_times_out_and_the_worker_keeps_serving() {
    let accounts = accounts().await;
    // Accepts and reads, never answers.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = stall.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = stall.accept().await {
            held.push(s);
        }
    });
    let rig = worker(&format!("http://{addr}"), &accounts.uri(), "").await;
    let s = rig
        .wait_state("timed out", |s| {
            s["detail"]
                .as_str()
                .unwrap_or("")
                .contains("no answer in time")
        })
        .await;
    assert_eq!(s["status"], "degraded");
    // The control plane answered all along; set_config moves it to a working server live.
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(playing(json!(5000), false)))
        .mount(&api)
        .await;
    let ack = rig
        .request(
            "set_config",
            json!({"api_url": api.uri(), "poll_interval_ms": 300}),
        )
        .await;
    assert!(ack.success, "{ack:?}");
    let (_, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
    // Paused: one position, not playing, then quiet (the polls that follow say the same).
    let heard = rig.hear_until(Duration::from_millis(1000), |_| false).await;
    assert!(
        matches!(&heard[..], [(_, PlaybackEvent::Position(p))] if !p.playing && (p.seconds - 5.0).abs() < 0.01),
        "{heard:?}"
    );
    assert_no_secret(&rig, &rig.state().await);
}

#[tokio::test]
async fn login_runs_pkce_through_the_loopback_redirect_and_stores_the_token_0600() {
    let accounts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": REFRESH, "scope": "user-read-playback-state"
        })))
        .mount(&accounts)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vj.toml"),
        format!(
            "[spotify]\nclient_id = \"test-client\"\naccounts_url = \"{}\"\n",
            accounts.uri()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["login", "--port", "0"])
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("VJ_CONFIG", dir.path().join("vj.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("/authorize?"))
        .expect("the URL to open");
    let url = reqwest::Url::parse(url.trim()).unwrap();
    assert_eq!(url.path(), "/authorize");
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(q("client_id"), "test-client");
    assert_eq!(q("code_challenge_method"), "S256");
    let redirect = reqwest::Url::parse(&q("redirect_uri")).unwrap();
    assert_eq!(
        redirect.host_str(),
        Some("127.0.0.1"),
        "Spotify forbids localhost"
    );
    // The browser comes back: first a stray request, then the callback.
    let base = format!("http://127.0.0.1:{}", redirect.port().unwrap());
    let stray = reqwest::get(format!("{base}/favicon.ico")).await.unwrap();
    assert_eq!(stray.status(), 404);
    let back = reqwest::get(format!("{redirect}?code=the-code&state={}", q("state")))
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let said = format!(
        "{}\n{}",
        rest.join("\n"),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(!said.contains(REFRESH) && !said.contains(ACCESS), "{said}");
    assert!(
        said.contains("LoadCredential=spotify_refresh_token"),
        "{said}"
    );

    // The verifier sent matches the challenge in the URL (S256).
    let req = &accounts.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> =
        reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(&req.body)))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    let verifier = &form.iter().find(|(k, _)| k == "code_verifier").unwrap().1;
    assert_eq!(
        vj::playback::spotify::login::challenge(verifier),
        q("code_challenge")
    );
    assert_eq!(
        form.iter().find(|(k, _)| k == "redirect_uri").unwrap().1,
        q("redirect_uri")
    );

    let stored = dir
        .path()
        .join("state/vj/credentials/spotify_refresh_token");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), REFRESH);
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_0600_and_wins_over_the_systemd_credential() {
    const ROTATED: &str = "AQDrotated-n3w-token-55e1";
    let accounts = MockServer::start().await;
    for (given, answer) in [(REFRESH, Some(ROTATED)), (ROTATED, None)] {
        let mut body = json!({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600});
        if let Some(r) = answer {
            body["refresh_token"] = json!(r);
        }
        Mock::given(path("/api/token"))
            .and(body_string_contains(format!("refresh_token={given}&")))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&accounts)
            .await;
    }
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(200).set_body_json(playing(json!(5000), true)))
        .mount(&api)
        .await;
    // The original token comes as a systemd credential (LoadCredential=).
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials-directory");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("spotify_refresh_token"), REFRESH).unwrap();
    let config = format!(
        "[spotify]\nsource = \"web_api\"\nclient_id = \"test-client\"\napi_url = \"{}\"\n\
         accounts_url = \"{}\"\npoll_interval_ms = 200\n",
        api.uri(),
        accounts.uri()
    );
    let rig = Rig::start_in(dir, BIN, BUS, &config, move |cmd| {
        cmd.env("CREDENTIALS_DIRECTORY", &creds);
    })
    .await;
    rig.next_track().await;
    let saved = rig
        .home()
        .join("state/vj/credentials/spotify_refresh_token");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), ROTATED);
    assert_eq!(
        std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // After a restart the rotated token is the one sent, not the stale credential.
    assert!(rig.request("restart", json!({})).await.success);
    let deadline = Instant::now() + Duration::from_secs(10);
    while accounts.received_requests().await.unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no token request after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent: Vec<String> = accounts
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        sent.last()
            .unwrap()
            .contains(&format!("refresh_token={ROTATED}")),
        "{sent:?}"
    );
    let state = rig.state().await;
    assert!(!format!("{}\n{state}", rig.stderr()).contains(ROTATED));
    assert_no_secret(&rig, &state);
}

#[tokio::test]
async fn the_access_token_is_refreshed_a_minute_before_it_expires() {
    // Tokens that live 62 s are refreshed 60 s early: about every 2 s.
    let short = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS, "token_type": "Bearer", "expires_in": 62,
        })))
        .mount(&short)
        .await;
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(204))
        .mount(&api)
        .await;
    let rig = worker(&api.uri(), &short.uri(), "").await;
    rig.wait_state("live", |s| s["status"] == "ok").await;
    let first = short.received_requests().await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let refreshes = short.received_requests().await.unwrap().len() - first;
    assert!(
        (1..=3).contains(&refreshes),
        "{refreshes} refreshes in 4.5 s of 62 s tokens"
    );
    // The same with tokens of an hour: none.
    let long = accounts().await;
    let rig = worker(&api.uri(), &long.uri(), "").await;
    rig.wait_state("live", |s| s["status"] == "ok").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(long.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn failures_back_off_doubling_then_recover() {
    let accounts = accounts().await;
    let api = api_answering(vec![ResponseTemplate::new(503); 3]).await;
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let mut waits = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let s = rig.state().await;
        if s["status"] == "ok" && !waits.is_empty() {
            break;
        }
        if let Some(w) = s["detail"]
            .as_str()
            .and_then(|d| d.split("retry in ").nth(1))
            .map(|w| w.trim_end_matches('s').to_string())
        {
            if waits.last() != Some(&w) {
                waits.push(w);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waits, ["1", "2", "4"], "the waits after three failures");
    let (_, t) = rig.next_track().await;
    assert_eq!(t.unwrap().title, "Get Lucky");
}

#[tokio::test]
async fn auto_picks_the_web_api_when_it_is_set_up_else_the_desktop_player() {
    let accounts = accounts().await;
    let api = MockServer::start().await;
    player_mock()
        .respond_with(ResponseTemplate::new(204))
        .mount(&api)
        .await;
    // Client id and refresh token: the Web API.
    let rig = worker(&api.uri(), &accounts.uri(), "").await;
    let ack = rig.request("set_config", json!({"source": "auto"})).await;
    assert!(ack.success, "{ack:?}");
    let s = rig
        .wait_state("following the Web API", |s| s["source"] == "web_api")
        .await;
    assert_eq!(s["config"]["source"], "auto");
    // No client id: not set up, so MPRIS (Linux).
    let ack = rig.request("set_config", json!({"client_id": ""})).await;
    assert!(ack.success, "{ack:?}");
    let want = if cfg!(target_os = "linux") {
        "mpris"
    } else {
        "apple_script"
    };
    rig.wait_state("following the desktop player", |s| s["source"] == want)
        .await;
}
