//! The lyrics fetcher (`lyrics_fetcher`, `vj-lyrics`): on every `/karaoke/track` it finds the
//! song's lyrics (disk cache, then LRCLIB) and follows `/karaoke/pos` to send the sung line.

pub mod cache;
mod config;
pub mod follower;
pub mod keywords;
mod lookup;
pub mod lrc;
pub mod lrclib;
pub mod moods;
pub mod refrain;
pub mod song;
mod stage;
mod worker;

pub use cache::{Cached, Entry, LyricsCache};
pub use config::{LlmConfig, LyricsConfig};
pub use follower::LineFollower;
pub use lrc::{LyricLine, Lyrics};
pub use lrclib::{Lookup, LrclibClient, LrclibError, RetryPolicy, TrackQuery};
pub use song::Song;
pub use worker::{LyricsCommand, LyricsFetcher, LYRICS};

/// Where a song's lyrics came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// What LRCLIB said (`found: false` = it has none).
    pub entry: Entry,
    pub from_cache: bool,
}

/// The song's lyrics: from the cache when it knows, else from LRCLIB (and then remembered,
/// hits and misses alike). Only an unanswered lookup is an error; it is not remembered.
pub async fn find_lyrics(
    cache: &LyricsCache,
    client: &LrclibClient,
    q: &TrackQuery,
) -> Result<Found, LrclibError> {
    // Disk I/O (an fsync on write) off the event loop's thread: it must not delay a line.
    let (c, artist, title) = (cache.clone(), q.artist.clone(), q.title.clone());
    let cached = tokio::task::spawn_blocking(move || c.get(&artist, &title))
        .await
        .unwrap_or(Cached::Unknown);
    match cached {
        Cached::Hit(entry) => {
            return Ok(Found {
                entry,
                from_cache: true,
            })
        }
        Cached::Miss => {
            return Ok(Found {
                entry: Entry::miss(&q.artist, &q.title),
                from_cache: true,
            })
        }
        Cached::Unknown => {}
    }
    let mut entry = Entry::miss(&q.artist, &q.title);
    if let Lookup::Found(r) = client.lookup(q).await? {
        entry.found = r.instrumental || r.synced_lyrics.is_some() || r.plain_lyrics.is_some();
        entry.instrumental = r.instrumental;
        entry.duration_s = r.duration;
        entry.synced = r.synced_lyrics.filter(|s| !s.trim().is_empty());
        entry.plain = r.plain_lyrics.filter(|s| !s.trim().is_empty());
    }
    let (c, e) = (cache.clone(), entry.clone());
    let _ = tokio::task::spawn_blocking(move || c.put(&e)).await;
    Ok(Found {
        entry,
        from_cache: false,
    })
}
