//! The lyrics cache on disk (`$XDG_CACHE_HOME/vj/lyrics`): one JSON file per song for hits
//! and misses (misses expire), written atomically; a file that cannot be read is a miss that
//! the next write replaces, never a crash.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::service::files;

use super::moods::MoodScores;
use super::refrain::normalise;

/// A remembered "LRCLIB has no lyrics for this" is asked again after this long (new lyrics
/// are contributed all the time).
pub const MISS_TTL: Duration = Duration::from_secs(24 * 3600);
const FORMAT: u32 = 1;

/// What LRCLIB said about a song.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub artist: String,
    pub title: String,
    /// Unix seconds when LRCLIB was asked.
    pub fetched_at: u64,
    pub found: bool,
    #[serde(default)]
    pub instrumental: bool,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub synced: Option<String>,
    #[serde(default)]
    pub plain: Option<String>,
}

impl Entry {
    pub fn miss(artist: &str, title: &str) -> Entry {
        Entry {
            format: FORMAT,
            artist: artist.into(),
            title: title.into(),
            fetched_at: unix_now(),
            found: false,
            instrumental: false,
            duration_s: None,
            synced: None,
            plain: None,
        }
    }
}

/// What the cache knows of a song.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    Hit(Entry),
    /// A miss younger than [`MISS_TTL`].
    Miss,
    /// Nothing usable: absent, an expired miss, or a corrupt file.
    Unknown,
}

/// The lyrics cache and its counters; clones share the counters (hand one to a blocking task).
#[derive(Debug, Clone)]
pub struct LyricsCache {
    dir: PathBuf,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    unknown: AtomicU64,
    corrupt: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Songs are the same whatever the case and punctuation of their names, and whichever player
/// reports them (albums and durations differ between players, so they are not in the key).
pub fn key(artist: &str, title: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{}", normalise(artist), normalise(title)));
    crate::service::files::hex_string(&digest[..16])
}

impl LyricsCache {
    pub fn new(dir: PathBuf) -> LyricsCache {
        LyricsCache {
            dir,
            counters: Arc::default(),
        }
    }

    /// `$XDG_CACHE_HOME/vj/lyrics`.
    pub fn default_dir() -> PathBuf {
        crate::config::cache_dir().join("lyrics")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file for a song, with `suffix` (`json`, `moods.json`).
    pub fn path(&self, artist: &str, title: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", key(artist, title)))
    }

    /// Looks a song up.
    pub fn get(&self, artist: &str, title: &str) -> Cached {
        self.get_at(artist, title, unix_now())
    }

    fn get_at(&self, artist: &str, title: &str, now: u64) -> Cached {
        let path = self.path(artist, title, "json");
        let found = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Entry>(&bytes) {
                Ok(e) if e.format == FORMAT => Some(e),
                Ok(_) => None,
                Err(e) => {
                    self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %path.display(), error = %e, "the lyrics cache file {} is corrupt ({e}); fetching the song again", path.display());
                    None
                }
            },
            Err(_) => None,
        };
        let result = match found {
            Some(e) if e.found => Cached::Hit(e),
            Some(e) if now.saturating_sub(e.fetched_at) < MISS_TTL.as_secs() => Cached::Miss,
            _ => Cached::Unknown,
        };
        let counter = match result {
            Cached::Hit(_) => &self.counters.hits,
            Cached::Miss => &self.counters.misses,
            Cached::Unknown => &self.counters.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Remembers an answer. A failure to write is logged and counted: the cache is an
    /// optimisation, never a reason to fail.
    pub fn put(&self, entry: &Entry) {
        let path = self.path(&entry.artist, &entry.title, "json");
        let bytes = serde_json::to_vec(entry).unwrap_or_default();
        self.write(&path, &bytes);
    }

    /// Writes a file of the cache dir atomically.
    pub fn write(&self, path: &Path, bytes: &[u8]) {
        match files::write_atomic(path, bytes, 0o600) {
            Ok(()) => self.counters.writes.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the lyrics cache file {}: {e}", path.display());
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// The LLM's moods of a song, if it was asked before (`<key>.moods.json`).
    pub fn moods(&self, artist: &str, title: &str) -> Option<MoodScores> {
        let bytes = std::fs::read(self.path(artist, title, "moods.json")).ok()?;
        super::moods::parse_llm_answer(std::str::from_utf8(&bytes).ok()?)
    }

    /// Remembers the LLM's moods of a song.
    pub fn put_moods(&self, artist: &str, title: &str, scores: &MoodScores) {
        let object: serde_json::Map<String, Value> = scores
            .iter()
            .map(|(m, s)| (m.to_string(), json!(s)))
            .collect();
        let bytes = serde_json::to_vec(&object).unwrap_or_default();
        self.write(&self.path(artist, title, "moods.json"), &bytes);
    }

    /// Counters for `get_state`.
    pub fn stats(&self) -> Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        json!({
            "dir": self.dir.display().to_string(),
            "hits": n(&c.hits),
            "misses": n(&c.misses),
            "unknown": n(&c.unknown),
            "corrupt": n(&c.corrupt),
            "writes": n(&c.writes),
            "write_errors": n(&c.write_errors),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit() -> Entry {
        Entry {
            found: true,
            synced: Some("[00:01.00]hi".into()),
            ..Entry::miss("Daft Punk", "One More Time")
        }
    }

    #[test]
    fn hits_come_back_whatever_the_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LyricsCache::new(dir.path().join("lyrics"));
        assert_eq!(cache.get("Daft Punk", "One More Time"), Cached::Unknown);
        cache.put(&hit());
        assert_eq!(cache.get("daft punk", "one more time!"), Cached::Hit(hit()));
        assert_eq!(cache.stats()["hits"], 1);
    }

    #[test]
    fn misses_expire() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LyricsCache::new(dir.path().to_path_buf());
        let miss = Entry::miss("A", "B");
        cache.put(&miss);
        assert_eq!(cache.get("A", "B"), Cached::Miss);
        let later = miss.fetched_at + MISS_TTL.as_secs() + 1;
        assert_eq!(cache.get_at("A", "B", later), Cached::Unknown);
    }

    #[test]
    fn a_corrupt_file_is_unknown_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LyricsCache::new(dir.path().to_path_buf());
        let path = cache.path("Daft Punk", "One More Time", "json");
        for junk in [
            &b"{\"format\":1,\"artist\":"[..],
            b"\xff\xfe\x00",
            b"",
            b"[]",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(cache.get("Daft Punk", "One More Time"), Cached::Unknown);
        }
        assert_eq!(cache.stats()["corrupt"], 4);
        cache.put(&hit());
        assert_eq!(cache.get("Daft Punk", "One More Time"), Cached::Hit(hit()));
    }

    #[test]
    fn concurrent_writers_leave_a_readable_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LyricsCache::new(dir.path().to_path_buf());
        std::thread::scope(|s| {
            for i in 0..6 {
                let cache = &cache;
                s.spawn(move || {
                    for _ in 0..30 {
                        let mut e = hit();
                        e.plain = Some("x".repeat(1000 * i));
                        cache.put(&e);
                        assert!(matches!(
                            cache.get("Daft Punk", "One More Time"),
                            Cached::Hit(_)
                        ));
                    }
                });
            }
        });
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }
}
