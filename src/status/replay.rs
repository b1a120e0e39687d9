//! `vj-status replay`: a show recording (`osc::recording`) sent again with its timing, through
//! the suite's own OSC output (`OscOut`: the `[osc] targets` and routes, or `--to`), so visuals,
//! OSCQuery and the console follow it as if the show were playing.
//!
//! Each bundle is due at its offset from the start (`--from`), divided by the speed, measured on
//! the monotonic clock from the moment the replay (or the pass of a loop) began: the error does
//! not add up over hours, and a wall clock stepped meanwhile changes nothing. The sending thread
//! runs at the lowest real-time priority where it may (`service::realtime`: on a busy machine an
//! ordinary thread is woken up to a scheduler tick late), sleeps until just before a bundle is
//! due and spins the rest (`SPIN`; docs/BENCHMARKS.md compares).

use std::fs::File;
use std::io::BufReader;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rosc::{OscTime, OscType};
use serde::Serialize;

use crate::osc::recording::{self, Damage, Entry, Header, Reader};
use crate::osc::OscOut;
use crate::service::realtime;

/// The speeds a replay may run at.
pub const SPEED_RANGE: RangeInclusive<f64> = 0.5..=4.0;
/// The last stretch before a bundle is due is waited for by spinning: a real-time thread's
/// sleep ends up to ~100 µs late, an ordinary one's 50 µs later still (the timer slack), a spin
/// within a few µs. 87 frames a second spin 87 × this per second of a core.
pub const SPIN: Duration = Duration::from_micros(100);
/// A sleep is cut into slices of this, so Ctrl-C is heard at once.
const SLICE: Duration = Duration::from_millis(50);

/// What to replay, and how.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub file: PathBuf,
    /// 1 = as recorded; 2 = twice as fast (every gap halved).
    pub speed: f64,
    /// Start again from `from` after the end, until stopped.
    pub looped: bool,
    /// Where in the recording to start (from its header's time, else its first bundle's).
    pub from: Duration,
    /// See [`SPIN`].
    pub spin: Duration,
    /// Send from a real-time thread where allowed (see `service::realtime`).
    pub realtime: bool,
}

impl ReplayPlan {
    pub fn new(file: PathBuf) -> Self {
        ReplayPlan {
            file,
            speed: 1.0,
            looped: false,
            from: Duration::ZERO,
            spin: SPIN,
            realtime: true,
        }
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReplaySummary {
    pub messages: u64,
    pub bundles: u64,
    /// Passes begun (more than one with `--loop`).
    pub passes: u32,
    /// How far into the recording the last bundle sent was, in seconds.
    pub reached: f64,
    /// How late bundles were sent after their due time (the sender's clock), in ms.
    pub late_p50_ms: f64,
    pub late_p99_ms: f64,
    pub late_max_ms: f64,
    /// Ctrl-C (or SIGTERM) ended it.
    pub stopped: bool,
    /// The bundles went out from a real-time thread.
    pub realtime: bool,
    /// Where the file could not be read further, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replayed {} messages ({} bundles, {} pass{}) up to {}{}; sent late by p50 {:.2} ms, \
             p99 {:.2} ms",
            self.messages,
            self.bundles,
            self.passes,
            if self.passes == 1 { "" } else { "es" },
            fmt_position(Duration::from_secs_f64(self.reached)),
            if self.stopped { " (stopped)" } else { "" },
            self.late_p50_ms,
            self.late_p99_ms,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {damage}", path.display())]
    Unreadable { path: PathBuf, damage: Damage },
    #[error("cannot start the thread that reads the recording: {error}")]
    Thread { error: std::io::Error },
    #[error("{} holds nothing to replay after {}", path.display(), fmt_position(*from))]
    Nothing { path: PathBuf, from: Duration },
}

/// How late each bundle went out: 10 µs buckets up to 100 ms, then one for later.
struct Lateness {
    counts: Vec<u64>,
    max: Duration,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 10_000;

impl Lateness {
    fn new() -> Self {
        Lateness {
            counts: vec![0; BUCKETS + 1],
            max: Duration::ZERO,
        }
    }

    fn add(&mut self, late: Duration) {
        let i = (late.as_micros() as u64 / BUCKET_US).min(BUCKETS as u64) as usize;
        self.counts[i] += 1;
        self.max = self.max.max(late);
    }

    /// The `q` quantile in ms (the upper edge of its bucket).
    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        self.max.as_secs_f64() * 1000.0
    }
}

/// Waits until `due`: sleeps in slices until `spin` before it, then spins. `false` if `stop`
/// was set meanwhile.
fn wait_until(due: Instant, spin: Duration, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let Some(left) = due.checked_duration_since(now).filter(|l| !l.is_zero()) else {
            return true;
        };
        if left > spin {
            std::thread::sleep((left - spin).min(SLICE));
        } else {
            std::hint::spin_loop();
        }
    }
}

fn open(plan: &ReplayPlan) -> Result<Reader<BufReader<File>>, ReplayError> {
    let file = File::open(&plan.file).map_err(|error| ReplayError::Open {
        path: plan.file.clone(),
        error,
    })?;
    Reader::new(BufReader::new(file)).map_err(|damage| ReplayError::Unreadable {
        path: plan.file.clone(),
        damage,
    })
}

/// How many entries the reading thread decodes ahead of the sender: some seconds of a show.
const AHEAD: usize = 8192;

/// Reads and decodes the file on a thread of its own, ahead of the sender, so that no bundle
/// waits for a zstd frame to be decompressed (and checked) or a packet to be parsed. The
/// thread ends at the end of the file, at damage, or when the receiver is dropped.
fn read_ahead(
    reader: Reader<BufReader<File>>,
) -> Result<std::sync::mpsc::Receiver<Result<Entry, Damage>>, ReplayError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
    std::thread::Builder::new()
        .name("vj-replay-read".into())
        .spawn(move || {
            for entry in reader {
                if tx.send(entry).is_err() {
                    return;
                }
            }
        })
        .map_err(|error| ReplayError::Thread { error })?;
    Ok(rx)
}

/// Replays until the end (every pass, with `looped`) or until `stop` is set, sending through
/// `out`. `note` hears what a person should know: the header, marks of missed messages, damage.
pub fn replay(
    plan: &ReplayPlan,
    out: &OscOut,
    stop: &AtomicBool,
    mut note: impl FnMut(String),
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    let realtime_guard = if plan.realtime {
        match realtime::lowest_fifo() {
            Ok(guard) => Some(guard),
            Err(e) => {
                note(format!(
                    "sending without real-time priority ({e}): on a busy machine bundles may \
                     go out a few ms late; an rtprio limit allows it (`ulimit -r 1`, or \
                     limits.conf)"
                ));
                None
            }
        }
    } else {
        None
    };
    summary.realtime = realtime_guard.is_some();
    let mut late = Lateness::new();
    let mut damage: Option<Damage> = None;
    'passes: loop {
        let ahead = read_ahead(open(plan)?)?;
        summary.passes += 1;
        let pass = summary.passes;
        // Time 0 of the recording: its header's, else its first bundle's.
        let mut origin: Option<OscTime> = None;
        let mut began: Option<Instant> = None;
        let mut sent_this_pass = 0u64;
        for entry in ahead.iter() {
            let entry = match entry {
                Ok(e) => e,
                Err(d) => {
                    // Told at the end too; a loop goes on over what is intact.
                    if damage.is_none() && plan.looped && sent_this_pass > 0 {
                        note(format!(
                            "{}: {d}; looping over what is intact",
                            plan.file.display()
                        ));
                    }
                    damage = Some(d);
                    break;
                }
            };
            let origin = *origin.get_or_insert(entry.time);
            if let Some(h) = Header::from_entry(&entry) {
                if pass == 1 {
                    let what = if h.prefixes.is_empty() {
                        "every address".to_string()
                    } else {
                        h.prefixes.join(" ")
                    };
                    note(format!("a recording by {} of {what}", h.suite));
                }
                continue;
            }
            let at = recording::offset(entry.time, origin).unwrap_or_default();
            if entry.is_note() {
                if pass == 1 && at >= plan.from {
                    for m in &entry.messages {
                        if let (recording::MISSED_ADDRESS, [OscType::Int(n)]) =
                            (m.addr.as_str(), m.args.as_slice())
                        {
                            note(format!(
                                "the recording lacks {n} messages at {} (the debugger lost them)",
                                fmt_position(at)
                            ));
                        }
                    }
                }
                continue;
            }
            if at < plan.from {
                continue;
            }
            let began = *began.get_or_insert_with(Instant::now);
            let due = began + at.saturating_sub(plan.from).div_f64(plan.speed);
            if !wait_until(due, plan.spin, stop) {
                summary.stopped = true;
                break 'passes;
            }
            late.add(Instant::now().saturating_duration_since(due));
            out.send_frame(&entry.messages);
            summary.bundles += 1;
            summary.messages += entry.messages.len() as u64;
            summary.reached = at.as_secs_f64();
            sent_this_pass += 1;
        }
        if sent_this_pass == 0 {
            if pass > 1 {
                break;
            }
            return Err(match damage {
                // Damage before anything could be sent: that is the error.
                Some(damage) => ReplayError::Unreadable {
                    path: plan.file.clone(),
                    damage,
                },
                None => ReplayError::Nothing {
                    path: plan.file.clone(),
                    from: plan.from,
                },
            });
        }
        if !plan.looped || stop.load(Ordering::Relaxed) {
            summary.stopped |= stop.load(Ordering::Relaxed);
            break;
        }
    }
    summary.damage = damage.map(|d| d.to_string());
    summary.late_p50_ms = late.quantile_ms(0.5);
    summary.late_p99_ms = late.quantile_ms(0.99);
    summary.late_max_ms = late.max.as_secs_f64() * 1000.0;
    Ok(summary)
}

/// `1:05.5` for 65.5 s; `1:02:03` past an hour.
pub fn fmt_position(d: Duration) -> String {
    let s = d.as_secs_f64();
    let (h, m, sec) = ((s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64, s % 60.0);
    if h > 0 {
        format!("{h}:{m:02}:{sec:04.1}")
    } else {
        format!("{m}:{sec:04.1}")
    }
}

/// A position in a recording: `MM:SS`, `H:MM:SS`, or seconds; fractions allowed (`1:02.5`).
pub fn parse_position(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a position in the recording (MM:SS, H:MM:SS or seconds)");
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let mut seconds = 0.0;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let v: f64 = if last {
            p.parse().map_err(|_| bad())?
        } else {
            p.parse::<u64>().map_err(|_| bad())? as f64
        };
        // Minutes and seconds below an hour or a minute, unless they come first.
        if i > 0 && v >= 60.0 {
            return Err(bad());
        }
        seconds = seconds * 60.0 + v;
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// `--speed`: a number within [`SPEED_RANGE`].
pub fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .trim()
        .trim_end_matches('x')
        .parse()
        .map_err(|_| format!("{text:?} is not a speed (0.5 to 4, 1 = as recorded)"))?;
    if SPEED_RANGE.contains(&speed) {
        Ok(speed)
    } else {
        Err(format!(
            "speed {speed} is outside {}..{} (1 = as recorded)",
            SPEED_RANGE.start(),
            SPEED_RANGE.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_people_write_them() {
        let p = |s: &str| parse_position(s).map(|d| d.as_secs_f64());
        assert_eq!(p("1:30"), Ok(90.0));
        assert_eq!(p("01:02:03"), Ok(3723.0));
        assert_eq!(p("0:02.5"), Ok(2.5));
        assert_eq!(p("75"), Ok(75.0));
        assert_eq!(p("90:00"), Ok(5400.0));
        for bad in ["", "1:", ":30", "1:75", "a:10", "1:2:3:4", "-5"] {
            assert!(parse_position(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_position(Duration::from_secs_f64(65.5)), "1:05.5");
        assert_eq!(fmt_position(Duration::from_secs(3723)), "1:02:03.0");
    }

    #[test]
    fn speed_is_held_to_its_range() {
        assert_eq!(parse_speed("2"), Ok(2.0));
        assert_eq!(parse_speed("0.5x"), Ok(0.5));
        assert!(parse_speed("5").unwrap_err().contains("outside"));
        assert!(parse_speed("0.25").is_err());
        assert!(parse_speed("fast").is_err());
    }

    #[test]
    fn lateness_quantiles_come_from_the_buckets() {
        let mut l = Lateness::new();
        for us in 0..100 {
            l.add(Duration::from_micros(us * 10));
        }
        l.add(Duration::from_secs(1));
        assert!(
            (l.quantile_ms(0.5) - 0.5).abs() < 0.011,
            "{}",
            l.quantile_ms(0.5)
        );
        assert_eq!(l.max, Duration::from_secs(1));
        assert!(l.quantile_ms(1.0) > 99.0);
    }
}
