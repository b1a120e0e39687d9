//! `vj-status`'s view of the suite: which workers exist, what systemd says of their units, and
//! what the running ones say of themselves — without waking a worker that is not running.
//! `supervisor` starts, stops and restarts them and reads their logs; `record` and `replay`
//! keep a show's OSC in a file and send it again.

pub mod record;
pub mod replay;
pub mod supervisor;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Map;

use self::systemd::UserManager;
use crate::bus::client;
use crate::registry::WORKERS;
use crate::worker::Health;

/// How long a probe of one worker may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What systemd says of a worker's units.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub sub: String,
    pub main_pid: u32,
    pub restarts: u32,
    /// The control socket unit's state (`listening`, `failed`, …) and its `Result`.
    pub socket: String,
    pub socket_result: String,
    /// The worker's last `STATUS=` line, which systemd keeps after it exits.
    pub status_text: String,
    /// How the last run ended: `Result` (`exit-code`, `signal`, `start-limit-hit`, …), and the
    /// main process's `ExecMainCode` (1 exited, 2 killed, 3 dumped) and `ExecMainStatus`.
    pub result: String,
    pub exit_code: u32,
    pub exit_status: i32,
}

/// `SIGKILL` rather than 9, for the signals a worker meets.
fn signal_name(n: i32) -> String {
    match n {
        6 => "SIGABRT".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

pub use crate::service::EX_CONFIG;

impl UnitState {
    /// Why a failed unit is down, in words: how its last run ended, with its last `STATUS=`
    /// (the worker's own words when it exited; only context when it was killed).
    pub fn failure(&self) -> String {
        let text = self.status_text.as_str();
        let ended = match (self.exit_code, self.exit_status) {
            (1, EX_CONFIG) => {
                format!("{text} (exited 78: a config error; fix it, then start it again)")
            }
            (1, n) if text.is_empty() => format!("exited {n}"),
            (1, n) => format!("{text} (exited {n})"),
            (2 | 3, n) if text.is_empty() => format!("killed by {}", signal_name(n)),
            (2 | 3, n) => format!("killed by {}; last status: {text}", signal_name(n)),
            _ if self.result == "watchdog" => "stopped answering its watchdog".into(),
            _ => format!("unit failed ({})", self.result),
        };
        if self.result == "start-limit-hit" || self.socket_result == "service-start-limit-hit" {
            format!("restarted too often (the start limit: 6 starts a minute); last run {ended}")
        } else {
            ended
        }
    }
}

/// What a row says of a worker's health: the worker's own (or systemd's, for a unit that failed
/// or is restarting), or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowHealth {
    Worker(Health),
    /// Not running, its socket listening: the first connection starts it.
    Idle,
    Stopped,
    NotInstalled,
    /// No systemd, and no socket in the bus dir.
    NotRunning,
    /// A socket nobody answers on.
    Unreachable,
}

impl RowHealth {
    pub fn as_str(&self) -> &'static str {
        match self {
            RowHealth::Worker(Health::Ok) => "ok",
            RowHealth::Worker(Health::Degraded) => "degraded",
            RowHealth::Worker(Health::Failed) => "failed",
            RowHealth::Idle => "idle",
            RowHealth::Stopped => "stopped",
            RowHealth::NotInstalled => "not installed",
            RowHealth::NotRunning => "not running",
            RowHealth::Unreachable => "unreachable",
        }
    }
}

impl std::fmt::Display for RowHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RowHealth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One row of `vj-status`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub worker: String,
    pub unit: String,
    /// `active`, `inactive`, `failed`, `activating`, … or `-` without systemd.
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_sec: Option<f64>,
    pub restarts: Option<u32>,
    pub health: RowHealth,
    pub detail: String,
}

impl Row {
    /// Counts against exit code 0.
    pub fn is_bad(&self) -> bool {
        matches!(
            self.health,
            RowHealth::Worker(Health::Degraded | Health::Failed) | RowHealth::Unreachable
        )
    }

    /// Someone answered for this worker (it, or systemd holding its socket).
    pub fn is_reachable(&self) -> bool {
        !matches!(
            self.health,
            RowHealth::NotInstalled | RowHealth::NotRunning | RowHealth::Unreachable
        )
    }
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether a systemd user manager answered.
    pub systemd: bool,
    pub bus_dir: PathBuf,
    pub workers: Vec<Row>,
}

impl Report {
    /// 0 all ok, 1 any degraded/failed, 2 nothing reachable.
    pub fn exit_code(&self) -> u8 {
        if !self.workers.iter().any(Row::is_reachable) {
            2
        } else if self.workers.iter().any(Row::is_bad) {
            1
        } else {
            0
        }
    }
}

/// What a worker's `health` reply says (SPEC section 3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HealthReply {
    pub status: Health,
    #[serde(default)]
    pub detail: String,
    pub uptime_sec: Option<f64>,
    pub pid: Option<u32>,
}

/// Asks a running worker for `health`.
pub async fn probe(socket: &Path) -> Result<HealthReply, String> {
    let ack = client::ask(socket, "health", Map::new(), PROBE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if !ack.success {
        return Err(ack.message.unwrap_or_else(|| "health failed".into()));
    }
    serde_json::from_value(ack.data)
        .map_err(|e| format!("a health reply vj-status cannot read: {e}"))
}

fn row_from_health(row: &mut Row, health: Result<HealthReply, String>) {
    match health {
        Ok(h) => {
            row.health = RowHealth::Worker(h.status);
            row.detail = h.detail;
            row.uptime_sec = h.uptime_sec;
            if row.pid.is_none() {
                row.pid = h.pid;
            }
        }
        Err(e) => {
            row.health = RowHealth::Unreachable;
            row.detail = e;
        }
    }
}

/// Builds the report. With systemd, only workers whose service is running are probed, so looking
/// never starts a worker; without it, every socket in the bus dir is probed.
pub async fn gather(bus_dir: &Path) -> Report {
    gather_from(bus_dir, &UserManager::default()).await
}

/// [`gather`], asking the user manager on a connection kept by the caller.
pub async fn gather_from(bus_dir: &Path, manager: &UserManager) -> Report {
    let systemd = manager.states().await;
    let mut rows = Vec::new();
    for w in WORKERS {
        let unit = w.binary;
        let socket = crate::config::socket_path(bus_dir, w.bus_name);
        let mut row = Row {
            worker: w.bus_name.to_string(),
            unit: unit.to_string(),
            state: "-".into(),
            pid: None,
            uptime_sec: None,
            restarts: None,
            health: RowHealth::NotInstalled,
            detail: String::new(),
        };
        match systemd.as_ref().and_then(|s| s.get(unit)) {
            Some(u) if u.load == "loaded" => {
                row.state = u.active.clone();
                row.restarts = Some(u.restarts);
                row.pid = (u.main_pid != 0).then_some(u.main_pid);
                match (u.active.as_str(), u.sub.as_str()) {
                    ("active" | "reloading", _) => row_from_health(&mut row, probe(&socket).await),
                    ("failed", _) => {
                        row.health = RowHealth::Worker(Health::Failed);
                        row.detail = u.failure();
                    }
                    ("activating", "auto-restart") => {
                        row.health = RowHealth::Worker(Health::Degraded);
                        row.detail = format!("restarting after a failure: {}", u.failure());
                    }
                    ("activating", _) => {
                        row.health = RowHealth::Worker(Health::Degraded);
                        row.detail = "starting".into();
                    }
                    _ if u.socket == "failed" => {
                        row.health = RowHealth::Worker(Health::Failed);
                        row.detail =
                            format!("socket failed; see journalctl --user -u {unit}.socket");
                    }
                    _ if u.socket == "listening" => {
                        row.health = RowHealth::Idle;
                        row.detail = "waiting on its socket".into();
                    }
                    _ => {
                        row.health = RowHealth::Stopped;
                        row.detail = format!("start it: systemctl --user start {unit}.socket");
                    }
                }
            }
            Some(_) | None if systemd.is_some() => {
                // Installed by hand, not as a unit: a socket in the bus dir may still answer.
                if socket.exists() {
                    row_from_health(&mut row, probe(&socket).await);
                }
            }
            // launchd owns the sockets: only a job it says runs is asked.
            _ if cfg!(target_os = "macos") => match supervisor::launchd_job(&w.launchd_label()) {
                Some(job) if job.running => {
                    row.state = "running".into();
                    row.pid = job.pid;
                    row_from_health(&mut row, probe(&socket).await);
                }
                Some(_) => {
                    row.state = "loaded".into();
                    row.health = RowHealth::Idle;
                    row.detail = "waiting on its socket (launchd)".into();
                }
                None => {
                    row.detail =
                        format!("not loaded in launchd: vj-status start {}", w.short_name());
                }
            },
            _ => {
                if socket.exists() {
                    row_from_health(&mut row, probe(&socket).await);
                } else {
                    row.health = RowHealth::NotRunning;
                    row.detail = format!("no socket at {}", socket.display());
                }
            }
        }
        rows.push(row);
    }
    Report {
        systemd: systemd.is_some(),
        bus_dir: bus_dir.to_path_buf(),
        workers: rows,
    }
}

/// `42s`, `3m07s`, `2h05m`; `-` when unknown.
pub fn fmt_uptime(sec: Option<f64>) -> String {
    let Some(s) = sec else { return "-".into() };
    let s = s as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The table a person reads.
pub fn table(report: &Report) -> String {
    let header = [
        "WORKER", "UNIT", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "DETAIL",
    ];
    let rows: Vec<[String; 8]> = report
        .workers
        .iter()
        .map(|r| {
            [
                r.worker.clone(),
                r.unit.clone(),
                r.state.clone(),
                r.pid.map_or("-".into(), |p| p.to_string()),
                fmt_uptime(r.uptime_sec),
                r.restarts.map_or("-".into(), |n| n.to_string()),
                r.health.to_string(),
                r.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    if !report.systemd {
        out.push_str(&format!(
            "(no systemd user manager answered: looked in {} only)\n",
            report.bus_dir.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_unit_says_why() {
        let failed = |text: &str, result: &str, code, status| UnitState {
            status_text: text.into(),
            result: result.into(),
            exit_code: code,
            exit_status: status,
            ..UnitState::default()
        };
        assert_eq!(
            failed("failed: unknown config key `audio.sourse`", "exit-code", 1, 78).failure(),
            "failed: unknown config key `audio.sourse` (exited 78: a config error; fix it, then start it again)"
        );
        assert_eq!(failed("", "signal", 2, 9).failure(), "killed by SIGKILL");
        assert_eq!(
            failed("capturing", "start-limit-hit", 2, 9).failure(),
            "restarted too often (the start limit: 6 starts a minute); last run killed by SIGKILL; last status: capturing"
        );
    }

    fn row(health: RowHealth) -> Row {
        Row {
            worker: "w".into(),
            unit: "u".into(),
            state: "-".into(),
            pid: None,
            uptime_sec: None,
            restarts: None,
            health,
            detail: String::new(),
        }
    }

    #[test]
    fn exit_code_is_0_ok_1_bad_2_unreachable() {
        use RowHealth::*;
        let report = |h: &[RowHealth]| Report {
            systemd: true,
            bus_dir: PathBuf::new(),
            workers: h.iter().map(|h| row(*h)).collect(),
        };
        assert_eq!(
            report(&[Worker(Health::Ok), Idle, NotInstalled]).exit_code(),
            0
        );
        assert_eq!(
            report(&[Worker(Health::Ok), Worker(Health::Degraded)]).exit_code(),
            1
        );
        assert_eq!(report(&[Idle, Worker(Health::Failed)]).exit_code(), 1);
        assert_eq!(report(&[NotInstalled, Unreachable]).exit_code(), 2);
        assert_eq!(serde_json::to_value(NotInstalled).unwrap(), "not installed");
    }

    #[test]
    fn the_table_lines_up_and_says_when_systemd_is_absent() {
        let mut r = row(RowHealth::Worker(Health::Ok));
        r.detail = "capturing".into();
        let t = table(&Report {
            systemd: false,
            bus_dir: PathBuf::from("/x"),
            workers: vec![r],
        });
        let lines: Vec<_> = t.lines().collect();
        assert!(lines[0].starts_with("WORKER"));
        assert_eq!(lines[0].find("HEALTH"), lines[1].find("ok"));
        assert!(lines[2].contains("no systemd user manager"));
    }
}
