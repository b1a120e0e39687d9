//! The chaos soak: the whole suite under a private systemd user manager, every worker in turn
//! killed (`kill -9`), frozen (`SIGSTOP`, then `SIGCONT`) or restarted (`systemctl restart`)
//! while clients hammer every control socket and OSC flows to the debugger. It says:
//! requests that got no answer within their deadline (must be 0: a connection cut by a kill is
//! tried again, as a client would, until the deadline), how long each worker took to serve
//! again (must be within WatchdogSec + 2 s), OSC lost while nothing was being done to the
//! debugger (must be 0), and each worker's RSS and open fds once warm and at the end (fds flat,
//! RSS within 10 % of its warm value).
//!
//! `make test` runs it for 60 s; `make soak` for `SOAK_SECONDS` (default 600), printing the
//! report docs/BENCHMARKS.md quotes.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_udp_port, request_within, send_osc, try_request, UserManager};
use rosc::OscType;
use serde_json::{json, Value};
use vj::registry::{WorkerInfo, WORKERS};

/// The shipped WatchdogSec= (units/vj-.service.d/10-service.conf).
const WATCHDOG: Duration = Duration::from_secs(10);
/// A request's deadline: the longest a worker may take to serve again (a hang: the watchdog,
/// then a start), and some.
const DEADLINE: Duration = Duration::from_secs(15);
/// A process is warm this long after it started (buffers allocated); the debugger once its capture
/// is full as well.
const WARM: Duration = Duration::from_secs(10);
/// The debugger's capture in the soak: full within a few seconds of OSC, so its RSS is warm.
const CAPTURE: usize = 5000;

fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// A small deterministic generator: the same seed replays the same chaos.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Chaos {
    Kill,
    Freeze,
    Restart,
    /// Frozen for good: the watchdog must notice.
    Hang,
}

impl Chaos {
    fn name(self) -> &'static str {
        match self {
            Chaos::Kill => "kill -9",
            Chaos::Freeze => "SIGSTOP",
            Chaos::Restart => "restart",
            Chaos::Hang => "hang",
        }
    }
}

/// A worker process's footprint when first seen warm and last seen: (when, RSS kB, fds).
type Seen = ((Instant, u64, usize), (Instant, u64, usize));

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// How long ago a process started (from /proc: its start in clock ticks since boot).
fn age(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command (which may hold spaces) in parentheses; starttime is 22nd.
    let after = stat.rsplit_once(')')?.1;
    let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64((uptime - ticks / hz).max(0.0)))
}

/// (RSS in kB, open fds) of a process.
fn footprint(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

struct Suite {
    m: UserManager,
    debugger_port: u16,
}

impl Suite {
    fn socket(&self, w: &WorkerInfo) -> PathBuf {
        self.m.bus_socket(w.bus_name)
    }

    fn serves(&self, w: &WorkerInfo) -> bool {
        try_request(
            &self.socket(w),
            &json!({"type": "command", "cmd": "health"}),
        )
        .is_ok_and(|r| r["type"] == "ack")
    }

    fn pid(&self, w: &WorkerInfo) -> u32 {
        self.m.main_pid(&w.service())
    }

    /// Waits until `w` answers again (and, after a kill or restart, as a new process).
    fn until_serving(&self, w: &WorkerInfo, old_pid: Option<u32>) -> Duration {
        let start = Instant::now();
        loop {
            let new_process = old_pid.is_none_or(|old| {
                let now = self.pid(w);
                now != 0 && now != old
            });
            if new_process && self.serves(w) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} never served again: {}",
                w.bus_name,
                self.m.show(&w.service(), "ActiveState")
            );
            pause(Duration::from_millis(20));
        }
    }

    fn debugger(&self) -> &'static WorkerInfo {
        vj::registry::find("osc_debugger").unwrap()
    }

    /// The newest `count` of the `/soak/seq` numbers the debugger captured after its sequence
    /// number `since`, and its last sequence number.
    fn captured(&self, since: u64, count: usize) -> (HashSet<i32>, u64) {
        let r = try_request(
            &self.socket(self.debugger()),
            &json!({"type": "command", "cmd": "get_messages", "prefix": "/soak/",
                    "since": since, "count": count}),
        )
        .unwrap_or_else(|e| panic!("get_messages: {e}"));
        let data = &r["data"];
        let seqs = data["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["args"][0].as_i64().map(|n| n as i32))
            .collect();
        (seqs, data["last_seq"].as_u64().unwrap_or(since))
    }

    /// How many messages the debugger's current process has taken (0 when it does not answer).
    fn debugger_messages(&self) -> u64 {
        try_request(
            &self.socket(self.debugger()),
            &json!({"type": "command", "cmd": "get_state"}),
        )
        .ok()
        .and_then(|r| r["data"]["counters"]["messages"].as_u64())
        .unwrap_or(0)
    }

    /// Sends `n` numbered messages to the debugger while nothing is done to it; how many of
    /// them it did not capture.
    fn osc_lost(&self, first: i32, n: i32) -> usize {
        // Only the cursor: the whole ring's worth of old numbers would be a reply whose size
        // swings with the chaos (large while the analyzer is down), and the debugger's heap with it.
        let (_, cursor) = self.captured(0, 1);
        let addr = format!("127.0.0.1:{}", self.debugger_port);
        for i in first..first + n {
            send_osc(&addr, "/soak/seq", vec![OscType::Int(i)]);
            if i % 50 == 0 {
                pause(Duration::from_millis(2));
            }
        }
        pause(Duration::from_millis(300));
        let (got, _) = self.captured(cursor, n as usize);
        (first..first + n).filter(|i| !got.contains(i)).count()
    }
}

fn start_suite() -> Suite {
    let m = UserManager::start();
    let debugger_port = free_udp_port();
    let lyrics_port = free_udp_port();
    m.write_config(&format!(
        "[osc]\ntargets = [\"127.0.0.1:{debugger_port}\"]\n\
         [[osc.routes]]\nprefix = \"/karaoke/\"\ntargets = [\"127.0.0.1:{lyrics_port}\"]\n\
         [audio]\nsource = \"demo\"\n\
         [lyrics]\nlisten = \"127.0.0.1:{lyrics_port}\"\n\
         [osc_debugger]\nlisten = \"127.0.0.1:{debugger_port}\"\ncapacity = {CAPTURE}\n"
    ));
    m.move_udp_port("vj-oscdebug-osc.socket", debugger_port);
    m.move_udp_port("vj-lyrics-osc.socket", lyrics_port);
    m.ok(&["start", "vj.target"]);
    let s = Suite { m, debugger_port };
    for w in WORKERS {
        s.until_serving(w, None);
    }
    s
}

#[test]
fn the_suite_survives_chaos_without_refusing_or_losing() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let s = Arc::new(start_suite());
    // Warm up; then every process's footprint is taken when first and last seen.
    pause(Duration::from_secs(3));
    let mut seen: BTreeMap<(&str, u32), Seen> = BTreeMap::new();
    let look = |seen: &mut BTreeMap<(&'static str, u32), Seen>| {
        for w in WORKERS {
            let pid = s.pid(w);
            if age(pid).is_none_or(|a| a < WARM) {
                continue;
            }
            // The debugger is warm once its capture is full: until then every message it takes
            // is memory it keeps (and its ring grows past its first allocation).
            if w.bus_name == s.debugger().bus_name && s.debugger_messages() < CAPTURE as u64 {
                continue;
            }
            if let Some((rss, fds)) = footprint(pid) {
                let now = (Instant::now(), rss, fds);
                seen.entry((w.bus_name, pid))
                    .and_modify(|e| e.1 = now)
                    .or_insert((now, now));
            }
        }
    };
    look(&mut seen);

    // Clients hammering every control socket for the whole run: each request tried again on a
    // new connection while its deadline lasts (a kill cuts the connection it was on).
    let stop = Arc::new(AtomicBool::new(false));
    let unanswered = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let hammers: Vec<_> = WORKERS
        .iter()
        .map(|w| {
            let (stop, unanswered, answered) = (stop.clone(), unanswered.clone(), answered.clone());
            let sock = s.socket(w);
            let name = w.bus_name;
            std::thread::spawn(move || {
                let mut last_error = String::new();
                while !stop.load(Ordering::SeqCst) {
                    let deadline = Instant::now() + DEADLINE;
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            eprintln!("{name}: no answer within {DEADLINE:?} ({last_error})");
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        let body = json!({"type": "command", "cmd": "get_state"});
                        match request_within(&sock, &body, left) {
                            Ok(_) => {
                                answered.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Err(e) => {
                                last_error = e;
                                pause(Duration::from_millis(20));
                            }
                        }
                    }
                    pause(Duration::from_millis(5));
                }
            })
        })
        .collect();

    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut dice = Dice(seed);
    let recoveries: Mutex<BTreeMap<(&str, Chaos), Vec<Duration>>> = Mutex::new(BTreeMap::new());
    let mut starts: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    let (mut sent, mut lost, mut windows) = (0usize, 0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0usize;
    while Instant::now() < deadline {
        let w = WORKERS[round % WORKERS.len()];
        round += 1;
        // systemd allows 6 starts a minute: beyond 4 here, freeze instead of killing.
        let recent = starts.entry(w.bus_name).or_default();
        recent.retain(|t| t.elapsed() < Duration::from_secs(60));
        // A hang costs WatchdogSec: only in the long soak.
        let kinds = if seconds > 120 { 4 } else { 3 };
        let mut chaos =
            [Chaos::Kill, Chaos::Freeze, Chaos::Restart, Chaos::Hang][dice.roll(kinds) as usize];
        if chaos != Chaos::Freeze && recent.len() >= 4 {
            chaos = Chaos::Freeze;
        }
        look(&mut seen);
        let pid = s.pid(w);
        let took = match chaos {
            Chaos::Kill => {
                recent.push(Instant::now());
                signal(pid, rustix::process::Signal::KILL);
                s.until_serving(w, Some(pid))
            }
            Chaos::Restart => {
                recent.push(Instant::now());
                s.m.ok(&["restart", "--no-block", &w.service()]);
                s.until_serving(w, Some(pid))
            }
            Chaos::Hang => {
                recent.push(Instant::now());
                signal(pid, rustix::process::Signal::STOP);
                s.until_serving(w, Some(pid))
            }
            Chaos::Freeze => {
                signal(pid, rustix::process::Signal::STOP);
                pause(Duration::from_millis(500 + 500 * dice.roll(5)));
                signal(pid, rustix::process::Signal::CONT);
                s.until_serving(w, None)
            }
        };
        recoveries
            .lock()
            .unwrap()
            .entry((w.bus_name, chaos))
            .or_default()
            .push(took);
        // A quiet moment: everything serves, and the debugger captures every message.
        for w in WORKERS {
            s.until_serving(w, None);
        }
        let n = 300;
        lost += s.osc_lost((windows * 1000) as i32, n);
        sent += n as usize;
        windows += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for h in hammers {
        h.join().unwrap();
    }
    pause(Duration::from_secs(2));
    look(&mut seen);

    println!("\nchaos soak: {seconds} s, {round} events, seed {seed}");
    println!(
        "requests without an answer within {DEADLINE:?}: {}, answered: {}",
        unanswered.load(Ordering::SeqCst),
        answered.load(Ordering::SeqCst)
    );
    println!("OSC to the debugger in quiet moments: {sent} sent, {lost} lost ({windows} windows)");
    println!("serving again after (max / mean):");
    let mut worst = Duration::ZERO;
    for ((worker, chaos), times) in recoveries.lock().unwrap().iter() {
        let max = times.iter().max().copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
        worst = worst.max(max);
        println!(
            "  {worker:<18} {:<8} x{:<3} {:>6.2} s / {:>5.2} s",
            chaos.name(),
            times.len(),
            max.as_secs_f64(),
            mean.as_secs_f64()
        );
    }
    // The longest-lived process of each worker, from when it was first seen warm to the last.
    println!("footprint of each worker's longest-lived process, warm (RSS kB, open fds):");
    let (mut fd_growth, mut rss_growth, mut weighed) = (Vec::new(), Vec::new(), 0);
    for w in WORKERS {
        let Some(((_, pid), ((t0, rss0, fds0), (t1, rss1, fds1)))) = seen
            .iter()
            .filter(|((name, _), _)| *name == w.bus_name)
            .max_by_key(|(_, (first, last))| last.0 - first.0)
        else {
            continue;
        };
        println!(
            "  {:<18} pid {pid:<7} over {:>5.1} s: {rss0:>6} -> {rss1:>6} kB, {fds0:>3} -> {fds1:>3} fds",
            w.bus_name,
            (*t1 - *t0).as_secs_f64()
        );
        if *fds1 > fds0 + fds0 / 10 + 1 {
            fd_growth.push(format!("{}: {fds0} -> {fds1}", w.bus_name));
        }
        // Seen warm for a while: its RSS holds within 10 % of where it was.
        if *t1 - *t0 >= WARM {
            weighed += 1;
            if *rss1 * 10 > rss0 * 11 {
                rss_growth.push(format!("{}: {rss0} -> {rss1} kB", w.bus_name));
            }
        }
    }

    assert_eq!(
        unanswered.load(Ordering::SeqCst),
        0,
        "requests without an answer within {DEADLINE:?}"
    );
    assert!(answered.load(Ordering::SeqCst) > 0);
    assert_eq!(
        lost, 0,
        "OSC messages lost while nothing was done to the debugger"
    );
    assert!(
        worst <= WATCHDOG + Duration::from_secs(2),
        "a worker took {worst:?} to serve again"
    );
    assert!(fd_growth.is_empty(), "open fds grew: {fd_growth:?}");
    assert!(weighed > 0, "no process lived long enough, warm, to weigh");
    assert!(rss_growth.is_empty(), "RSS grew over 10 %: {rss_growth:?}");
    let state: Value = try_request(
        &s.socket(s.debugger()),
        &json!({"type": "command", "cmd": "get_state"}),
    )
    .unwrap();
    assert_eq!(state["data"]["status"], "ok", "{state}");
}
