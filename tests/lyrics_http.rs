//! The LRCLIB client and the mood LLM against real HTTP servers on 127.0.0.1 that answer like
//! LRCLIB and an OpenAI-compatible chat API do, failures included.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vj::lyrics::lrclib::USER_AGENT;
use vj::lyrics::moods::{LlmError, MoodLlm};
use vj::lyrics::{
    find_lyrics, Cached, Lookup, LrclibClient, LrclibError, LyricsCache, RetryPolicy, Song,
    TrackQuery,
};
use vj::service::credentials::Secret;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SYNCED: &str =
    "[00:01.00]Hello darkness my old friend\n[00:04.50]I've come to talk with you again\n";

fn record(
    duration: f64,
    synced: Option<&str>,
    plain: Option<&str>,
    instrumental: bool,
) -> serde_json::Value {
    json!({
        "id": 42, "trackName": "The Sound of Silence", "artistName": "Simon & Garfunkel",
        "albumName": "Sounds of Silence", "duration": duration, "instrumental": instrumental,
        "plainLyrics": plain, "syncedLyrics": synced,
    })
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(
        json!({"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}),
    )
}

fn policy(retries: u32) -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_millis(400),
        retries,
        backoff: Duration::from_millis(10),
    }
}

fn song() -> TrackQuery {
    TrackQuery {
        artist: "Simon & Garfunkel".into(),
        title: "The Sound of Silence".into(),
        album: "Sounds of Silence".into(),
        duration_s: 185.2,
    }
}

fn found(l: Lookup) -> vj::lyrics::lrclib::LrclibRecord {
    match l {
        Lookup::Found(r) => r,
        Lookup::NotFound => panic!("expected a record"),
    }
}

#[tokio::test]
async fn get_sends_all_four_fields_and_a_user_agent_and_reads_synced_lyrics() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/get"))
        .and(query_param("track_name", "The Sound of Silence"))
        .and(query_param("artist_name", "Simon & Garfunkel"))
        .and(query_param("album_name", "Sounds of Silence"))
        .and(query_param("duration", "185"))
        .and(header("user-agent", USER_AGENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(record(
            185.0,
            Some(SYNCED),
            Some("x"),
            false,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let client = LrclibClient::new(&server.uri(), policy(0)).unwrap();
    let r = found(client.lookup(&song()).await.unwrap());
    assert_eq!(r.synced_lyrics.as_deref(), Some(SYNCED));
}

#[tokio::test]
async fn a_404_falls_back_to_search_and_the_closest_duration_wins() {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(not_found())
        .mount(&server)
        .await;
    Mock::given(path("/api/search"))
        .and(query_param("track_name", "The Sound of Silence"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            record(240.0, Some("[00:01.00]live version"), None, false),
            record(186.0, Some(SYNCED), None, false),
            record(185.0, None, Some("plain only"), false),
        ])))
        .mount(&server)
        .await;
    let client = LrclibClient::new(&server.uri(), policy(0)).unwrap();
    let r = found(client.lookup(&song()).await.unwrap());
    assert_eq!(
        r.plain_lyrics.as_deref(),
        Some("plain only"),
        "185 s is closest to 185.2"
    );
}

#[tokio::test]
async fn nothing_anywhere_is_not_found_and_is_remembered_as_a_miss() {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(not_found())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = LyricsCache::new(dir.path().to_path_buf());
    let client = LrclibClient::new(&server.uri(), policy(0)).unwrap();
    let first = find_lyrics(&cache, &client, &song()).await.unwrap();
    assert!(!first.entry.found && !first.from_cache);
    let second = find_lyrics(&cache, &client, &song()).await.unwrap();
    assert!(
        !second.entry.found && second.from_cache,
        "the miss is not asked again"
    );
    assert_eq!(
        cache.get("Simon & Garfunkel", "The Sound of Silence"),
        Cached::Miss
    );
}

#[tokio::test]
async fn plain_only_and_instrumental_records() {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .and(query_param("track_name", "Plain"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record(
            185.0,
            None,
            Some("one\ntwo\n"),
            false,
        )))
        .mount(&server)
        .await;
    Mock::given(path("/api/get"))
        .and(query_param("track_name", "Instrumental"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record(185.0, None, None, true)))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = LyricsCache::new(dir.path().to_path_buf());
    let client = LrclibClient::new(&server.uri(), policy(0)).unwrap();
    let q = |title: &str| TrackQuery {
        title: title.into(),
        ..song()
    };

    let plain = find_lyrics(&cache, &client, &q("Plain")).await.unwrap();
    let s = Song::from_entry(&plain.entry);
    assert!(s.has_lyrics() && !s.lyrics.is_synced());
    assert_eq!(s.lyrics.lines.len(), 2);

    let inst = find_lyrics(&cache, &client, &q("Instrumental"))
        .await
        .unwrap();
    assert!(inst.entry.found && inst.entry.instrumental);
    let s = Song::from_entry(&inst.entry);
    assert!(s.instrumental && !s.has_lyrics());
    assert!(
        matches!(cache.get("Simon & Garfunkel", "Instrumental"), Cached::Hit(e) if e.instrumental),
        "instrumental is a hit: LRCLIB is not asked again"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_lrclib_s_message() {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"message": "database is locked", "name": "InternalError", "statusCode": 500}),
        ))
        .expect(3)
        .mount(&server)
        .await;
    let client = LrclibClient::new(&server.uri(), policy(2)).unwrap();
    let err = client.lookup(&song()).await.unwrap_err();
    assert!(
        matches!(err, LrclibError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("InternalError: database is locked"),
        "{err}"
    );
}

/// A server whose /api/get answers `first` once, then the synced record.
async fn first_then_found(first: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(200).set_body_json(record(
            185.0,
            Some(SYNCED),
            None,
            false,
        )))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_500_then_success_is_a_success() {
    let server = first_then_found(ResponseTemplate::new(502).set_body_string("Bad Gateway")).await;
    let client = LrclibClient::new(&server.uri(), policy(1)).unwrap();
    assert!(matches!(
        client.lookup(&song()).await.unwrap(),
        Lookup::Found(_)
    ));
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let server = first_then_found(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(json!({"message": "Too many requests", "name": "TooManyRequests", "statusCode": 429})),
    )
    .await;
    let client = LrclibClient::new(&server.uri(), policy(1)).unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        client.lookup(&song()).await.unwrap(),
        Lookup::Found(_)
    ));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "asked again before Retry-After"
    );

    // Without retries left, the caller learns how long to wait.
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let client = LrclibClient::new(&server.uri(), policy(3)).unwrap();
    let err = client.lookup(&song()).await.unwrap_err();
    assert!(
        matches!(err, LrclibError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(120)),
        "{err}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_error_not_a_miss() {
    let server = MockServer::start().await;
    Mock::given(path("/api/get"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cache = LyricsCache::new(dir.path().to_path_buf());
    let client = LrclibClient::new(&server.uri(), policy(0)).unwrap();
    let err = find_lyrics(&cache, &client, &song()).await.unwrap_err();
    assert!(matches!(err, LrclibError::BadBody { .. }), "{err}");
    assert_eq!(
        cache.get("Simon & Garfunkel", "The Sound of Silence"),
        Cached::Unknown,
        "not cached"
    );
}

/// A server that accepts connections and then stalls, or drops them at once.
async fn raw_server(stall: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            if stall {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n[")
                    .await;
                held.push(s);
            } else {
                drop(s);
            }
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_stalled_server_times_out_after_the_retries() {
    let url = raw_server(true).await;
    let client = LrclibClient::new(&url, policy(1)).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), client.lookup(&song()))
        .await
        .expect("the client timeout bounds the lookup")
        .unwrap_err();
    assert!(matches!(err, LrclibError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn dropped_connections_and_closed_ports_are_network_errors() {
    let url = raw_server(false).await;
    let client = LrclibClient::new(&url, policy(1)).unwrap();
    let err = client.lookup(&song()).await.unwrap_err();
    assert!(matches!(err, LrclibError::Network { .. }), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = LrclibClient::new(&url, policy(0)).unwrap();
    assert!(matches!(
        client.lookup(&song()).await.unwrap_err(),
        LrclibError::Network { .. }
    ));
}

fn chat(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "llama3",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
    }))
}

#[tokio::test]
async fn the_llm_is_asked_like_an_openai_chat_api_with_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_string_contains("\"model\":\"llama3\""))
        .and(body_string_contains("Hello darkness"))
        .respond_with(chat("{\"dark\": 0.9, \"calm\": 0.4, \"nostalgic\": 0.6}"))
        .expect(1)
        .mount(&server)
        .await;
    let llm = MoodLlm::new(
        &format!("{}/v1", server.uri()),
        "llama3",
        Some(Secret::new("sk-test")),
        Duration::from_secs(5),
    );
    let scores = llm
        .moods("Simon & Garfunkel", "The Sound of Silence", SYNCED)
        .await
        .unwrap();
    assert_eq!(
        scores,
        vec![("dark", 0.9), ("nostalgic", 0.6), ("calm", 0.4)]
    );
}

#[tokio::test]
async fn an_llm_that_answers_garbage_fails_or_stalls_is_an_error_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .and(body_string_contains("Garbage"))
        .respond_with(chat("I am a language model and I feel nothing."))
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .and(body_string_contains("Broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("model not loaded"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .and(body_string_contains("Slow"))
        .respond_with(chat("{\"happy\": 1}").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let llm = MoodLlm::new(
        &format!("{}/v1", server.uri()),
        "m",
        Some(Secret::new("sk-secret-key")),
        Duration::from_millis(300),
    );
    for title in ["Garbage", "Broken", "Slow"] {
        let err = llm.moods("A", title, "some lyrics").await.unwrap_err();
        // Each failure is told as what it is, not as any error.
        let right = match title {
            "Garbage" => matches!(err, LlmError::Garbage { .. }),
            "Broken" => matches!(err, LlmError::Status { status: 500, .. }),
            _ => {
                matches!(&err, LlmError::Unreachable { reason, .. } if reason.contains("timed out") || reason.contains("timeout"))
            }
        };
        assert!(right, "{title}: {err:?}");
        let err = err.to_string();
        assert!(!err.contains("sk-secret-key"), "{err}");
        assert!(err.contains("/v1/chat/completions"), "{err}");
    }
}
