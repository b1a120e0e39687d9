//! The lookups the lyrics loop starts and hears back from: a song's lyrics (cache, then
//! LRCLIB) and its moods, each on a task of its own so the loop never waits on the network.

use std::sync::Arc;

use tracing::warn;

use super::cache::LyricsCache;
use super::config::LyricsConfig;
use super::moods::{self, MoodLlm, MoodScores};
use super::worker::Shared;
use super::{find_lyrics, Found, LrclibClient, RetryPolicy, Song, TrackQuery};
use crate::karaoke::NowPlaying;
use crate::service::credentials;
use crate::service::lock;

/// Per-request back-off inside a lookup (the loop retries whole lookups more slowly).
const REQUEST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// What the loop hears from lookups and commands.
pub enum Event {
    Fetched {
        generation: u64,
        result: Result<Found, String>,
    },
    Moods {
        generation: u64,
        scores: MoodScores,
        source: &'static str,
    },
    /// `fetch_lyrics` found a song: make it the current one.
    Show { track: NowPlaying, found: Found },
}

pub fn query(track: &NowPlaying) -> TrackQuery {
    TrackQuery {
        artist: track.artist.clone(),
        title: track.title.clone(),
        album: track.album.clone(),
        duration_s: f64::from(track.duration_s),
    }
}

pub fn lrclib_client(c: &LyricsConfig) -> anyhow::Result<LrclibClient> {
    Ok(LrclibClient::new(
        &c.lrclib_url,
        RetryPolicy {
            timeout: std::time::Duration::from_millis(c.timeout_ms),
            retries: c.retries,
            backoff: REQUEST_BACKOFF,
        },
    )?)
}

/// The mood LLM of `c`, if one is configured, and what `get_state` says of it.
pub fn mood_llm(c: &LyricsConfig) -> (Option<Arc<MoodLlm>>, String) {
    if c.llm.url.is_empty() {
        return (None, "not configured (word lists)".into());
    }
    let key = match credentials::read("llm_api_key") {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "the credential llm_api_key is unreadable ({e}); asking the LLM without a key");
            None
        }
    };
    let timeout = std::time::Duration::from_millis(c.llm.timeout_ms);
    (
        Some(Arc::new(MoodLlm::new(
            &c.llm.url,
            &c.llm.model,
            key,
            timeout,
        ))),
        "not asked yet".into(),
    )
}

/// Looks the lyrics of `track` up; the answer comes back as [`Event::Fetched`].
pub fn spawn_fetch(shared: &Arc<Shared>, generation: u64, track: &NowPlaying) {
    let (cache, client, tx, q) = (
        shared.cache.clone(),
        lock(&shared.client).clone(),
        shared.events.clone(),
        query(track),
    );
    tokio::spawn(async move {
        let result = find_lyrics(&cache, &client, &q)
            .await
            .map_err(|e| e.to_string());
        let _ = tx.send(Event::Fetched { generation, result });
    });
}

/// Scores the moods of `song`; the answer comes back as [`Event::Moods`].
pub fn spawn_moods(
    shared: &Arc<Shared>,
    llm: Option<Arc<MoodLlm>>,
    generation: u64,
    track: &NowPlaying,
    song: &Song,
) {
    let lines: Vec<String> = song.lyrics.lines.iter().map(|l| l.text.clone()).collect();
    let (shared, tx) = (shared.clone(), shared.events.clone());
    let (artist, title) = (track.artist.clone(), track.title.clone());
    tokio::spawn(async move {
        let m = song_moods(&shared.cache, llm.as_deref(), &artist, &title, &lines).await;
        if let Some(answer) = m.llm {
            *lock(&shared.llm_state) = answer.err().unwrap_or_else(|| "ok".into());
        }
        let _ = tx.send(Event::Moods {
            generation,
            scores: m.scores,
            source: m.source,
        });
    });
}

/// A song's moods and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SongMoods {
    pub scores: MoodScores,
    /// `words`, `llm`, `llm (cached)`, `words (LLM failed)`.
    pub source: &'static str,
    /// When the LLM was asked: whether it answered, or why not.
    pub llm: Option<Result<(), String>>,
}

/// The moods of a song: the LLM's (cached per song) when one is configured and answers
/// sensibly, else the word lists'.
pub async fn song_moods(
    cache: &Arc<LyricsCache>,
    llm: Option<&MoodLlm>,
    artist: &str,
    title: &str,
    lines: &[String],
) -> SongMoods {
    let words = |source, llm| SongMoods {
        scores: moods::score_words(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
        source,
        llm,
    };
    let Some(model) = llm else {
        return words("words", None);
    };
    // Disk I/O off the event loop's thread.
    let (c, a, t) = (cache.clone(), artist.to_string(), title.to_string());
    let cached = tokio::task::spawn_blocking(move || c.moods(&a, &t))
        .await
        .ok()
        .flatten();
    if let Some(scores) = cached {
        return SongMoods {
            scores,
            source: "llm (cached)",
            llm: None,
        };
    }
    match model.moods(artist, title, &lines.join("\n")).await {
        Ok(scores) => {
            let (c, a, t, s) = (
                cache.clone(),
                artist.to_string(),
                title.to_string(),
                scores.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || c.put_moods(&a, &t, &s)).await;
            SongMoods {
                scores,
                source: "llm",
                llm: Some(Ok(())),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the LLM gave no moods for {artist} - {title} ({e}); using the word lists");
            words("words (LLM failed)", Some(Err(e.to_string())))
        }
    }
}
