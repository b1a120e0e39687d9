//! `vj-status`'s view of the suite: which workers exist, what systemd says of their units, and
//! what the running ones say of themselves — without waking a worker that is not running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::bus::client::Client;

/// Every worker of the suite: bus name and unit (binary) name.
pub const WORKERS: &[(&str, &str)] = &[
    ("audio_analyzer", "vj-audio"),
    ("spotify_monitor", "vj-spotify"),
    ("virtualdj_monitor", "vj-virtualdj"),
    ("lyrics_fetcher", "vj-lyrics"),
    ("osc_debugger", "vj-oscdebug"),
];

/// How long a probe of one worker may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Finds a worker by bus name (`osc_debugger`), unit (`vj-oscdebug`, `vj-oscdebug.service`)
/// or short name (`oscdebug`).
pub fn find_worker(name: &str) -> Option<(&'static str, &'static str)> {
    let name = name.trim_end_matches(".service");
    WORKERS
        .iter()
        .copied()
        .find(|(bus, unit)| *bus == name || *unit == name || unit.strip_prefix("vj-") == Some(name))
}

/// What systemd says of a worker's units.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub sub: String,
    pub main_pid: u32,
    pub restarts: u32,
    /// The control socket unit's state (`listening`, `failed`, …).
    pub socket: String,
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
    /// `ok`, `degraded`, `failed`, `idle` (waiting on its socket), `stopped`, `not installed`,
    /// `not running` (no systemd, no socket), `unreachable` (a socket nobody answers on).
    pub health: String,
    pub detail: String,
}

impl Row {
    /// Counts against exit code 0.
    pub fn is_bad(&self) -> bool {
        matches!(self.health.as_str(), "degraded" | "failed" | "unreachable")
    }

    /// Someone answered for this worker (it, or systemd holding its socket).
    pub fn is_reachable(&self) -> bool {
        !matches!(
            self.health.as_str(),
            "not installed" | "not running" | "unreachable"
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

/// Asks the user manager about every worker's service and control socket in one call.
/// `None` when no manager answers.
pub fn systemd_states() -> Option<HashMap<String, UnitState>> {
    let mut args = vec![
        "--user".to_string(),
        "show".into(),
        "--property=Id,LoadState,ActiveState,SubState,MainPID,NRestarts".into(),
    ];
    for (_, unit) in WORKERS {
        args.push(format!("{unit}.service"));
        args.push(format!("{unit}.socket"));
    }
    let out = std::process::Command::new("systemctl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(parse_show(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `systemctl show` blocks into per-worker states (service + its control socket).
pub fn parse_show(text: &str) -> HashMap<String, UnitState> {
    let mut units: HashMap<String, HashMap<String, String>> = HashMap::new();
    for block in text.split("\n\n") {
        let props: HashMap<String, String> = block
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(id) = props.get("Id") {
            units.insert(id.clone(), props);
        }
    }
    let mut states = HashMap::new();
    for (_, unit) in WORKERS {
        let Some(service) = units.get(&format!("{unit}.service")) else {
            continue;
        };
        let get = |k: &str| service.get(k).cloned().unwrap_or_default();
        let socket = units
            .get(&format!("{unit}.socket"))
            .filter(|s| s.get("LoadState").map(String::as_str) == Some("loaded"))
            .and_then(|s| s.get("SubState").cloned())
            .unwrap_or_default();
        states.insert(
            unit.to_string(),
            UnitState {
                load: get("LoadState"),
                active: get("ActiveState"),
                sub: get("SubState"),
                main_pid: get("MainPID").parse().unwrap_or(0),
                restarts: get("NRestarts").parse().unwrap_or(0),
                socket,
            },
        );
    }
    states
}

/// Asks a running worker for `health`.
pub async fn probe(socket: &Path) -> Result<Map<String, Value>, String> {
    let ask = async {
        let mut client = Client::connect(socket).await.map_err(|e| e.to_string())?;
        client.timeout = PROBE_TIMEOUT;
        let ack = client
            .request("health", Map::new())
            .await
            .map_err(|e| e.to_string())?;
        match ack.data {
            Value::Object(m) if ack.success => Ok(m),
            _ => Err(ack.message.unwrap_or_else(|| "health failed".into())),
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, ask)
        .await
        .unwrap_or_else(|_| Err(format!("no reply within {PROBE_TIMEOUT:?}")))
}

fn row_from_health(row: &mut Row, health: Result<Map<String, Value>, String>) {
    match health {
        Ok(h) => {
            row.health = h
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            row.detail = h
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            row.uptime_sec = h.get("uptime_sec").and_then(Value::as_f64);
            if row.pid.is_none() {
                row.pid = h.get("pid").and_then(Value::as_u64).map(|p| p as u32);
            }
        }
        Err(e) => {
            row.health = "unreachable".into();
            row.detail = e;
        }
    }
}

/// Builds the report. With systemd, only workers whose service is running are probed, so looking
/// never starts a worker; without it, every socket in the bus dir is probed.
pub async fn gather(bus_dir: &Path) -> Report {
    let systemd = systemd_states();
    let mut rows = Vec::new();
    for (bus, unit) in WORKERS {
        let socket = crate::config::socket_path(bus_dir, bus);
        let mut row = Row {
            worker: bus.to_string(),
            unit: unit.to_string(),
            state: "-".into(),
            pid: None,
            uptime_sec: None,
            restarts: None,
            health: "not installed".into(),
            detail: String::new(),
        };
        match systemd.as_ref().and_then(|s| s.get(*unit)) {
            Some(u) if u.load == "loaded" => {
                row.state = u.active.clone();
                row.restarts = Some(u.restarts);
                row.pid = (u.main_pid != 0).then_some(u.main_pid);
                match (u.active.as_str(), u.sub.as_str()) {
                    ("active" | "reloading", _) => row_from_health(&mut row, probe(&socket).await),
                    ("failed", _) => {
                        row.health = "failed".into();
                        row.detail =
                            format!("unit failed ({}); see journalctl --user -u {unit}", u.sub);
                    }
                    ("activating", "auto-restart") => {
                        row.health = "degraded".into();
                        row.detail = "restarting after a failure".into();
                    }
                    ("activating", _) => {
                        row.health = "degraded".into();
                        row.detail = "starting".into();
                    }
                    _ if u.socket == "failed" => {
                        row.health = "failed".into();
                        row.detail =
                            format!("socket failed; see journalctl --user -u {unit}.socket");
                    }
                    _ if u.socket == "listening" => {
                        row.health = "idle".into();
                        row.detail = "waiting on its socket".into();
                    }
                    _ => {
                        row.health = "stopped".into();
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
            _ => {
                if socket.exists() {
                    row_from_health(&mut row, probe(&socket).await);
                } else {
                    row.health = "not running".into();
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

fn fmt_uptime(sec: Option<f64>) -> String {
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
                r.health.clone(),
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

    const SHOW: &str = "Id=vj-audio.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\n\n\
Id=vj-audio.socket\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n\n\
Id=vj-oscdebug.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=3\n\n\
Id=vj-oscdebug.socket\nLoadState=loaded\nActiveState=active\nSubState=running\n\n\
Id=vj-lyrics.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\n\n\
Id=vj-lyrics.socket\nLoadState=loaded\nActiveState=active\nSubState=listening\n";

    #[test]
    fn parses_systemctl_show_per_worker() {
        let s = parse_show(SHOW);
        assert_eq!(s["vj-oscdebug"].main_pid, 4242);
        assert_eq!(s["vj-oscdebug"].restarts, 3);
        assert_eq!(s["vj-oscdebug"].active, "active");
        assert_eq!(s["vj-lyrics"].socket, "listening");
        assert_eq!(s["vj-audio"].load, "not-found");
        assert!(!s.contains_key("vj-spotify"));
    }

    #[test]
    fn finds_workers_by_any_of_their_names() {
        for n in [
            "osc_debugger",
            "vj-oscdebug",
            "vj-oscdebug.service",
            "oscdebug",
        ] {
            assert_eq!(find_worker(n), Some(("osc_debugger", "vj-oscdebug")), "{n}");
        }
        assert_eq!(find_worker("nope"), None);
    }

    fn row(health: &str) -> Row {
        Row {
            worker: "w".into(),
            unit: "u".into(),
            state: "-".into(),
            pid: None,
            uptime_sec: None,
            restarts: None,
            health: health.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn exit_code_is_0_ok_1_bad_2_unreachable() {
        let report = |h: &[&str]| Report {
            systemd: true,
            bus_dir: PathBuf::new(),
            workers: h.iter().map(|h| row(h)).collect(),
        };
        assert_eq!(report(&["ok", "idle", "not installed"]).exit_code(), 0);
        assert_eq!(report(&["ok", "degraded"]).exit_code(), 1);
        assert_eq!(report(&["idle", "failed"]).exit_code(), 1);
        assert_eq!(report(&["not installed", "unreachable"]).exit_code(), 2);
    }

    #[test]
    fn the_table_lines_up_and_says_when_systemd_is_absent() {
        let mut r = row("ok");
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
