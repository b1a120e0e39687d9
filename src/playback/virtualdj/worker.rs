//! `impl Worker` for vj-virtualdj: notify (inotify/FSEvents) events on VirtualDJ's folders wake
//! one loop that re-reads the file's tail, announces a changed entry and ticks the position.
//! Nothing runs while nothing changes, but a slow safety re-check.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use notify::{EventKind, RecursiveMode, Watcher};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tracing::{debug, info, warn};

use super::config::VirtualDjConfig;
use crate::bus::Outcome;
use crate::karaoke::NowPlaying;
use crate::service::lock;
use crate::service::unit::WorkerInfo;
use crate::worker::{Context, Handle, Health, NoCommand, Worker};

use super::locate::{locate, Located};
use super::parse::{drop_partial_first_line, parse_played, PlayedEntry, PlayedFile};
use crate::playback::clock::{sleep_until_some, Announced, Announcer, PlaybackClock};

/// Only the end of a long history is read: the last entry is all that matters.
pub const MAX_TAIL: u64 = 64 * 1024;
/// A burst of events (truncate, write, close) is read once, after it settles.
const SETTLE: Duration = Duration::from_millis(15);
/// With no song length known, a song is taken to have stopped this long after it appeared.
const UNKNOWN_LENGTH_S: f64 = 20.0 * 60.0;

/// Why the file could not be read: the worker says so and keeps watching.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} does not exist yet")]
    Missing { path: PathBuf },
    #[error("{path} is not a regular file ({what}); point virtualdj.path at VirtualDJ's file")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("cannot read {path}: {source}; check its permissions")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The last `max` bytes of the regular file `path` (from the start of a line), and its write time.
pub fn read_tail(path: &Path, max: u64) -> Result<(Vec<u8>, SystemTime), ReadError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing {
            path: path.to_path_buf(),
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else {
            "a special file"
        };
        return Err(ReadError::NotAFile {
            path: path.to_path_buf(),
            what,
        });
    }
    // O_NONBLOCK: a FIFO swapped in after the check must not hang the worker in open().
    use std::os::unix::fs::OpenOptionsExt;
    let mut f: File = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(max).read_to_end(&mut buf).map_err(io)?;
    let kept = drop_partial_first_line(&buf, start == 0).len();
    buf.drain(..buf.len() - kept);
    Ok((buf, meta.modified().unwrap_or_else(|_| SystemTime::now())))
}

/// The song as the suite announces it.
pub fn now_playing(e: &PlayedEntry) -> NowPlaying {
    NowPlaying {
        source: "virtualdj".into(),
        artist: e.artist.clone(),
        title: e.title.clone(),
        album: String::new(),
        duration_s: e.duration_s.unwrap_or(0.0),
        has_lyrics: false,
    }
}

/// What `get_state` shows.
#[derive(Debug, Clone, Default, Serialize)]
struct View {
    file: Option<PathBuf>,
    kind: Option<PlayedFile>,
    entry: Option<PlayedEntry>,
    /// Seconds since the Unix epoch of the write that brought the entry.
    entry_written_at: Option<f64>,
    watching: Vec<PathBuf>,
    looked_in: Vec<PathBuf>,
    last_error: Option<String>,
    reads: u64,
    fs_events: u64,
    announced: Announced,
}

pub struct VirtualDjMonitor {
    view: Arc<Mutex<View>>,
    home: PathBuf,
}

/// The control plane's window on the monitor.
pub struct VirtualDjHandle {
    view: Arc<Mutex<View>>,
}

/// The loop's own state.
struct Stage {
    config: VirtualDjConfig,
    watcher: Option<notify::RecommendedWatcher>,
    watching: Vec<PathBuf>,
    entry: Option<PlayedEntry>,
    events: mpsc::UnboundedSender<()>,
}

impl VirtualDjMonitor {
    fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.view));
    }

    /// Watches `dirs` (non-recursively) unless already watching exactly them.
    fn rewatch(&self, st: &mut Stage, dirs: &[PathBuf]) {
        if st.watching == dirs && st.watcher.is_some() {
            return;
        }
        let tx = st.events.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            // Our own reads open the file: only writes, creations, removals and renames count.
            let relevant = match ev.kind {
                EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Write,
                )) => true,
                EventKind::Access(_) | EventKind::Other => false,
                _ => true,
            };
            if relevant {
                let _ = tx.send(());
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "cannot start watching files ({e}); relying on the safety re-check");
                st.watcher = None;
                return;
            }
        };
        let mut ok = Vec::new();
        for d in dirs {
            match watcher.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => ok.push(d.clone()),
                Err(e) => {
                    warn!(dir = %d.display(), error = %e, "cannot watch {}: {e}", d.display())
                }
            }
        }
        debug!(dirs = ?ok, "watching");
        st.watcher = Some(watcher);
        st.watching = dirs.to_vec();
        self.update(|v| v.watching = ok);
    }

    /// Finds and reads the file, says what changed, and watches where it matters.
    fn refresh(&self, st: &mut Stage, ann: &mut Announcer, ctx: &Context<VirtualDjConfig>) {
        // Folders created since the last look get watched; look again after watching them, so
        // a file written meanwhile is not missed until the safety re-check.
        let mut found = locate(&st.config.path, &self.home);
        for _ in 0..4 {
            if st.watching == found.watch && st.watcher.is_some() {
                break;
            }
            self.rewatch(st, &found.watch);
            found = locate(&st.config.path, &self.home);
        }
        let Located {
            file, looked_in, ..
        } = found;
        self.update(|v| {
            v.looked_in = looked_in.clone();
            v.file = file.clone();
            v.reads += 1;
        });
        let Some(file) = file else {
            let folders: Vec<String> = looked_in.iter().map(|p| p.display().to_string()).collect();
            ctx.status.set(
                Health::Degraded,
                format!(
                    "waiting for VirtualDJ's file in {} (set virtualdj.path)",
                    folders.join(", ")
                ),
            );
            self.forget(st, ann);
            return;
        };
        match read_tail(&file, MAX_TAIL) {
            Ok((bytes, written)) => {
                let played = parse_played(&bytes);
                self.update(|v| {
                    v.kind = Some(played.kind);
                    v.last_error = None;
                });
                let what = match &played.last {
                    Some(e) => format!("{} - {}", e.artist, e.title),
                    None => "nothing".into(),
                };
                ctx.status.set(
                    Health::Ok,
                    format!("following {} (live, notify): {what}", file.display()),
                );
                if played.last != st.entry {
                    self.announce(st, ann, played.last, written);
                }
            }
            Err(e) => {
                let message = e.to_string();
                self.update(|v| v.last_error = Some(message.clone()));
                ctx.status
                    .set(Health::Degraded, format!("{message}; still watching"));
                // A file that is gone says nothing plays; an unreadable one leaves the song be.
                if matches!(e, ReadError::Missing { .. }) {
                    self.forget(st, ann);
                }
            }
        }
    }

    fn forget(&self, st: &mut Stage, ann: &mut Announcer) {
        if st.entry.is_some() || ann.current().is_some() {
            self.announce(st, ann, None, SystemTime::now());
        }
    }

    fn announce(
        &self,
        st: &mut Stage,
        ann: &mut Announcer,
        entry: Option<PlayedEntry>,
        written: SystemTime,
    ) {
        let now = Instant::now();
        let ago = SystemTime::now()
            .duration_since(written)
            .unwrap_or_default();
        ann.track(entry.as_ref().map(now_playing));
        if let Some(e) = &entry {
            info!(artist = %e.artist, title = %e.title, "VirtualDJ plays {} - {}", e.artist, e.title);
            let length = e.duration_s.map_or(UNKNOWN_LENGTH_S, f64::from);
            let clock = PlaybackClock {
                at: now.checked_sub(ago).unwrap_or(now),
                seconds: st.config.lead_s,
                playing: true,
                duration_s: Some(length),
            };
            ann.set_clock(Some(clock), now);
        } else {
            info!("VirtualDJ plays nothing");
        }
        let written_at = written
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .ok();
        st.entry = entry.clone();
        self.update(|v| {
            v.entry = entry;
            v.entry_written_at = written_at;
            v.announced = ann.counts;
        });
    }
}

/// Its entry in the registry.
pub const VIRTUALDJ: WorkerInfo = WorkerInfo {
    bus_name: "virtualdj_monitor",
    binary: "vj-virtualdj",
    config_section: "virtualdj",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: crate::config::check::<crate::playback::virtualdj::VirtualDjConfig>,
};

impl Worker for VirtualDjMonitor {
    const INFO: &'static WorkerInfo = &VIRTUALDJ;
    type Config = VirtualDjConfig;
    type Handle = VirtualDjHandle;

    async fn start(_ctx: &Context<VirtualDjConfig>) -> anyhow::Result<(Self, VirtualDjHandle)> {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("HOME is not set: cannot find VirtualDJ's folder"))?;
        let view = Arc::new(Mutex::new(View::default()));
        let handle = VirtualDjHandle { view: view.clone() };
        Ok((VirtualDjMonitor { view, home }, handle))
    }

    async fn run(self, ctx: Context<VirtualDjConfig>) -> anyhow::Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut st = Stage {
            config: (*ctx.config()).clone(),
            watcher: None,
            watching: Vec::new(),
            entry: None,
            events: tx,
        };
        let mut ann = Announcer::new(ctx.osc.clone());
        let mut config_rx = ctx.config.clone();
        let mut watchdog = ctx.watchdog.ticker();
        let mut stop = ctx.stop.clone();
        let poll = |c: &VirtualDjConfig| Duration::from_millis(c.poll_interval_ms);
        let mut safety =
            tokio::time::interval_at(Instant::now() + poll(&st.config), poll(&st.config));
        safety.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.refresh(&mut st, &mut ann, &ctx);
        loop {
            tokio::select! {
                _ = stop.wait() => return Ok(()),
                Some(()) = rx.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    let mut n = 1;
                    while rx.try_recv().is_ok() {
                        n += 1;
                    }
                    self.update(|v| v.fs_events += n);
                    self.refresh(&mut st, &mut ann, &ctx);
                }
                _ = safety.tick() => self.refresh(&mut st, &mut ann, &ctx),
                _ = sleep_until_some(ann.next_tick()) => {
                    ann.tick(Instant::now());
                    self.update(|v| v.announced = ann.counts);
                }
                Ok(()) = config_rx.changed() => {
                    let c = (**config_rx.borrow_and_update()).clone();
                    if c != st.config {
                        safety = tokio::time::interval_at(Instant::now() + poll(&c), poll(&c));
                        let path_changed = c.path != st.config.path;
                        st.config = c;
                        if path_changed {
                            st.entry = None;
                        }
                        self.refresh(&mut st, &mut ann, &ctx);
                    }
                }
                _ = watchdog.tick() => ctx.watchdog.pet(),
            }
        }
    }
}

#[derive(Serialize)]
struct State {
    source: &'static str,
    live: bool,
    #[serde(flatten)]
    view: View,
}

impl Handle for VirtualDjHandle {
    type Command = NoCommand;

    fn state(&self) -> impl Serialize {
        let view = lock(&self.view).clone();
        State {
            source: "virtualdj",
            live: view.file.is_some() && view.last_error.is_none(),
            view,
        }
    }

    fn checks(&self) -> impl Serialize {
        let v = lock(&self.view);
        let mut m = serde_json::Map::new();
        let file = match (&v.file, &v.last_error) {
            (None, _) => "waiting: no VirtualDJ file yet".to_string(),
            (Some(f), None) => format!("ok: live from {} (notify)", f.display()),
            (Some(_), Some(e)) => format!("degraded: {e}"),
        };
        m.insert("file".into(), json!(file));
        m.insert(
            "watch".into(),
            json!(if v.watching.is_empty() {
                "none (safety re-check only)".to_string()
            } else {
                format!("ok: {} folder(s)", v.watching.len())
            }),
        );
        m
    }

    fn stats(&self) -> impl Serialize {
        let v = lock(&self.view);
        json!({"tracks_sent": v.announced.tracks, "positions_sent": v.announced.positions, "fs_events": v.fs_events, "reads": v.reads})
    }

    async fn command(&self, cmd: NoCommand) -> Outcome {
        match cmd {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_huge_file_is_read_from_its_tail_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tracklist.txt");
        let mut f = File::create(&p).unwrap();
        writeln!(f, "VirtualDJ History 2024/01/15\n-----").unwrap();
        for i in 0..100_000 {
            writeln!(f, "12:00 : Artist {i} - Title {i}").unwrap();
        }
        drop(f);
        let (tail, _) = read_tail(&p, MAX_TAIL).unwrap();
        assert!(tail.len() as u64 <= MAX_TAIL);
        assert!(tail.starts_with(b"12:00 : Artist "), "starts at a line");
        let last = parse_played(&tail).last.unwrap();
        assert_eq!(last.title, "Title 99999");
    }

    #[test]
    fn a_directory_or_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_tail(dir.path(), MAX_TAIL).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let err = read_tail(&fifo, MAX_TAIL).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let missing = read_tail(&dir.path().join("nope"), MAX_TAIL).unwrap_err();
        assert!(matches!(missing, ReadError::Missing { .. }));
    }
}
