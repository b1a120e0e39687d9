//! Starting, stopping and restarting workers and reading their logs through the OS supervisor,
//! with the same words on both: systemd's user manager and the journal on Linux, launchd and
//! each agent's log file on macOS. `vj-status start|stop|restart|logs` and `vj-console`'s keys
//! run what [`plan`] and [`logs`] return.

use std::path::{Path, PathBuf};

use crate::registry::{self, WorkerInfo, WORKERS};

/// What to do to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Its sockets and the service itself, so it runs now (not only on first contact).
    Start,
    /// The service and its sockets, so nothing starts it again until `start`.
    Stop,
    /// The service; its sockets stay open and queue connections meanwhile.
    Restart,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }

    /// The word for a done action, in messages ("restarted vj-audio").
    pub fn done(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Stop => "stopped",
            Action::Restart => "restarted",
        }
    }
}

/// The supervisor of this machine, and what it needs to be addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervisor {
    /// systemd's user manager. `namespace` is the PID of a private manager whose journal lives
    /// in a mount namespace of its own (scripts/user-manager.sh): the journal is read there.
    Systemd { namespace: Option<u32> },
    /// launchd's per-user domain `gui/<uid>`, with the agents' plists in `agents`.
    Launchd { uid: u32, agents: PathBuf },
}

impl Supervisor {
    /// This machine's: launchd on macOS, else systemd (a private manager if one serves
    /// `$XDG_RUNTIME_DIR`).
    pub fn here() -> Supervisor {
        let uid = rustix::process::geteuid().as_raw();
        if cfg!(target_os = "macos") {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
            return Supervisor::Launchd {
                uid,
                agents: home.join("Library/LaunchAgents"),
            };
        }
        let namespace = std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| Path::new(&d).join("vj-user-manager/manager.pid"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists());
        Supervisor::Systemd { namespace }
    }
}

/// One command line to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    /// Its failure is expected at times and harmless (`launchctl bootstrap` of a loaded agent).
    pub may_fail: bool,
}

impl Invocation {
    fn new(program: &str, args: impl IntoIterator<Item = String>) -> Invocation {
        Invocation {
            program: program.to_string(),
            args: args.into_iter().collect(),
            may_fail: false,
        }
    }

    /// As a person would type it.
    pub fn shell_words(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args);
        c
    }
}

/// The workers `name` means: `all`, or one worker by any of its names.
pub fn targets(name: &str) -> Result<Vec<&'static WorkerInfo>, String> {
    if name == "all" {
        return Ok(WORKERS.to_vec());
    }
    registry::find(name).map(|w| vec![w]).ok_or_else(|| {
        let names: Vec<_> = WORKERS.iter().map(|w| w.bus_name).collect();
        format!(
            "no worker called {name:?}; the workers are {} (or all)",
            names.join(", ")
        )
    })
}

fn sockets(w: &WorkerInfo) -> Vec<String> {
    let mut s = vec![w.control_socket()];
    s.extend(w.osc_socket());
    s
}

/// The command lines that do `action` to `workers`.
pub fn plan(action: Action, workers: &[&WorkerInfo], sup: &Supervisor) -> Vec<Invocation> {
    match sup {
        Supervisor::Systemd { .. } => {
            let mut args = vec!["--user".to_string(), action.verb().to_string()];
            for w in workers {
                match action {
                    Action::Start => {
                        args.extend(sockets(w));
                        args.push(w.service());
                    }
                    Action::Stop => {
                        args.push(w.service());
                        args.extend(sockets(w));
                    }
                    Action::Restart => args.push(w.service()),
                }
            }
            vec![Invocation::new("systemctl", args)]
        }
        Supervisor::Launchd { uid, agents } => {
            let mut out = Vec::new();
            for w in workers {
                let service = format!("gui/{uid}/{}", w.launchd_label());
                match action {
                    Action::Start => {
                        // A stopped agent was booted out: load it again (fails, harmlessly,
                        // when it is loaded), then run it now.
                        let plist = agents.join(format!("{}.plist", w.launchd_label()));
                        let mut load = Invocation::new(
                            "launchctl",
                            [
                                "bootstrap".to_string(),
                                format!("gui/{uid}"),
                                plist.display().to_string(),
                            ],
                        );
                        load.may_fail = true;
                        out.push(load);
                        out.push(Invocation::new(
                            "launchctl",
                            ["kickstart".to_string(), service],
                        ));
                    }
                    Action::Stop => out.push(Invocation::new(
                        "launchctl",
                        ["bootout".to_string(), service],
                    )),
                    Action::Restart => out.push(Invocation::new(
                        "launchctl",
                        ["kickstart".to_string(), "-k".to_string(), service],
                    )),
                }
            }
            out
        }
    }
}

/// Runs a plan; the error says which command failed and what it printed.
pub async fn run(plan: &[Invocation]) -> Result<(), String> {
    for inv in plan {
        let out = tokio::process::Command::from(inv.command())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", inv.program))?;
        if !out.status.success() && !inv.may_fail {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("`{}` failed: {}", inv.shell_words(), err.trim()));
        }
    }
    Ok(())
}

/// What launchd says of one of its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchdJob {
    pub running: bool,
    pub pid: Option<u32>,
}

/// `launchctl print gui/<uid>/<label>`, read; `None` when launchd has no such job loaded.
pub fn launchd_job(label: &str) -> Option<LaunchdJob> {
    let uid = rustix::process::geteuid().as_raw();
    let out = std::process::Command::new("launchctl")
        .args(["print", &format!("gui/{uid}/{label}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_launchctl_print(&String::from_utf8_lossy(&out.stdout)))
}

/// The `state = …` and `pid = …` lines of `launchctl print` (the job's own, not its
/// sub-blocks', which are indented deeper).
pub fn parse_launchctl_print(text: &str) -> LaunchdJob {
    let mut job = LaunchdJob {
        running: false,
        pid: None,
    };
    for line in text.lines() {
        // The job's own keys sit one tab in.
        let Some(kv) = line.strip_prefix('\t').filter(|l| !l.starts_with('\t')) else {
            continue;
        };
        match kv.split_once(" = ") {
            Some(("state", v)) => job.running = v.trim() == "running",
            Some(("pid", v)) => job.pid = v.trim().parse().ok(),
            _ => {}
        }
    }
    job
}

/// The log file of a launchd agent: its plist's `StandardErrorPath` (else `StandardOutPath`).
pub fn plist_log_path(plist: &str) -> Option<PathBuf> {
    let value_of = |key: &str| {
        let at = plist.find(&format!("<key>{key}</key>"))?;
        let rest = &plist[at..];
        let start = rest.find("<string>")? + "<string>".len();
        let end = rest[start..].find("</string>")? + start;
        Some(PathBuf::from(rest[start..end].trim()))
    };
    value_of("StandardErrorPath").or_else(|| value_of("StandardOutPath"))
}

/// The command that prints the last `lines` lines of a worker's log, and with `follow` keeps
/// printing: journalctl on systemd (the worker's own lines and the manager's about its unit),
/// tail of the agent's log file on launchd.
pub fn logs(
    w: &WorkerInfo,
    lines: usize,
    follow: bool,
    sup: &Supervisor,
) -> Result<Invocation, String> {
    match sup {
        Supervisor::Systemd { namespace } => {
            let unit = w.service();
            let mut args = vec![
                "--no-pager".to_string(),
                "-o".into(),
                "short-iso".into(),
                "-n".into(),
                lines.to_string(),
            ];
            if follow {
                args.push("-f".into());
            }
            // Where the manager runs in a cgroup journald cannot map to units, only the
            // identifier names the worker's lines.
            args.extend([
                format!("_SYSTEMD_USER_UNIT={unit}"),
                "+".into(),
                format!("USER_UNIT={unit}"),
                "+".into(),
                format!("SYSLOG_IDENTIFIER={}", w.binary),
            ]);
            Ok(match namespace {
                None => Invocation::new("journalctl", args),
                Some(pid) => Invocation::new(
                    "nsenter",
                    [
                        "-t".to_string(),
                        pid.to_string(),
                        "-m".into(),
                        "journalctl".into(),
                    ]
                    .into_iter()
                    .chain(args),
                ),
            })
        }
        Supervisor::Launchd { agents, .. } => {
            let plist_path = agents.join(format!("{}.plist", w.launchd_label()));
            let plist = std::fs::read_to_string(&plist_path).map_err(|e| {
                format!(
                    "cannot read {}: {e} (is vj-suite installed? make install)",
                    plist_path.display()
                )
            })?;
            let log = plist_log_path(&plist).ok_or_else(|| {
                format!(
                    "{} names no StandardErrorPath or StandardOutPath",
                    plist_path.display()
                )
            })?;
            let mut args = vec!["-n".to_string(), lines.to_string()];
            if follow {
                args.push("-F".into());
            }
            args.push(log.display().to_string());
            Ok(Invocation::new("tail", args))
        }
    }
}

/// The last `lines` lines of a worker's log, for a pane: from the journal one short line per
/// entry (time, level, message and the worker's own fields, no host or PID).
pub async fn last_lines(
    w: &WorkerInfo,
    lines: usize,
    sup: &Supervisor,
) -> Result<Vec<String>, String> {
    let mut inv = logs(w, lines, false, sup)?;
    let journal = matches!(sup, Supervisor::Systemd { .. });
    if journal {
        for a in inv.args.iter_mut().filter(|a| *a == "short-iso") {
            *a = "json".into();
        }
    }
    let out = tokio::process::Command::from(inv.command())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", inv.program))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`{}` failed: {}", inv.shell_words(), err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("-- "))
        .map(|l| {
            journal
                .then(|| journal_line(l))
                .flatten()
                .unwrap_or_else(|| l.to_string())
        })
        .collect())
}

/// One `journalctl -o json` entry as a short line: `12:03:04 WARN message key=value`.
pub fn journal_line(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let o = v.as_object()?;
    let micros: i64 = o.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
    let mut line = local_time(micros / 1_000_000);
    match o.get("PRIORITY").and_then(|p| p.as_str()) {
        Some("0" | "1" | "2" | "3") => line.push_str(" ERROR"),
        Some("4") => line.push_str(" WARN"),
        _ => {}
    }
    line.push(' ');
    line.push_str(o.get("MESSAGE").and_then(|m| m.as_str()).unwrap_or(""));
    // tracing-journald's own fields are F_-prefixed; systemd's are the rest.
    let mut fields: Vec<(&String, &serde_json::Value)> =
        o.iter().filter(|(k, _)| k.starts_with("F_")).collect();
    fields.sort_by_key(|(k, _)| k.as_str());
    for (k, v) in fields {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        line.push_str(&format!(" {}={v}", k[2..].to_lowercase()));
    }
    Some(line)
}

/// `HH:MM:SS` of a Unix time, in the machine's time zone.
fn local_time(secs: i64) -> String {
    let t = secs as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r reads one time_t and fills the one tm it is given; both live here.
    let ok = !unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) }.is_null();
    if !ok {
        let s = secs.rem_euclid(86_400);
        return format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    }
    // SAFETY: zeroed is a valid tm, and localtime_r succeeded in filling it.
    let tm = unsafe { tm.assume_init() };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{AUDIO, LYRICS};

    fn words(plan: &[Invocation]) -> Vec<String> {
        plan.iter().map(Invocation::shell_words).collect()
    }

    #[test]
    fn systemd_starts_sockets_and_service_and_stops_them_all() {
        let sd = Supervisor::Systemd { namespace: None };
        assert_eq!(
            words(&plan(Action::Start, &[&LYRICS], &sd)),
            ["systemctl --user start vj-lyrics.socket vj-lyrics-osc.socket vj-lyrics.service"]
        );
        assert_eq!(
            words(&plan(Action::Stop, &[&AUDIO, &LYRICS], &sd)),
            ["systemctl --user stop vj-audio.service vj-audio.socket vj-lyrics.service vj-lyrics.socket vj-lyrics-osc.socket"]
        );
        assert_eq!(
            words(&plan(Action::Restart, &[&AUDIO], &sd)),
            ["systemctl --user restart vj-audio.service"]
        );
    }

    #[test]
    fn launchd_says_the_same_with_bootstrap_kickstart_and_bootout() {
        let ld = Supervisor::Launchd {
            uid: 501,
            agents: PathBuf::from("/Users/vj/Library/LaunchAgents"),
        };
        let start = plan(Action::Start, &[&AUDIO], &ld);
        assert_eq!(
            words(&start),
            [
                "launchctl bootstrap gui/501 /Users/vj/Library/LaunchAgents/net.vjsuite.audio.plist",
                "launchctl kickstart gui/501/net.vjsuite.audio"
            ]
        );
        assert!(start[0].may_fail && !start[1].may_fail);
        assert_eq!(
            words(&plan(Action::Stop, &[&AUDIO], &ld)),
            ["launchctl bootout gui/501/net.vjsuite.audio"]
        );
        assert_eq!(
            words(&plan(Action::Restart, &[&AUDIO], &ld)),
            ["launchctl kickstart -k gui/501/net.vjsuite.audio"]
        );
    }

    #[test]
    fn all_means_every_worker_and_a_wrong_name_lists_the_right_ones() {
        assert_eq!(targets("all").unwrap().len(), WORKERS.len());
        assert_eq!(targets("oscdebug").unwrap()[0].bus_name, "osc_debugger");
        let e = targets("nope").unwrap_err();
        assert!(e.contains("audio_analyzer") && e.contains("all"), "{e}");
    }

    #[test]
    fn journal_lines_are_read_in_the_private_managers_namespace() {
        let inv = logs(
            &AUDIO,
            20,
            true,
            &Supervisor::Systemd {
                namespace: Some(77),
            },
        )
        .unwrap();
        let w = inv.shell_words();
        assert!(
            w.starts_with("nsenter -t 77 -m journalctl --no-pager"),
            "{w}"
        );
        assert!(w.contains("-n 20 -f _SYSTEMD_USER_UNIT=vj-audio.service + USER_UNIT=vj-audio.service + SYSLOG_IDENTIFIER=vj-audio"), "{w}");
        let plain = logs(&AUDIO, 5, false, &Supervisor::Systemd { namespace: None }).unwrap();
        assert_eq!(plain.program, "journalctl");
        assert!(!plain.args.contains(&"-f".to_string()));
    }

    #[test]
    fn a_journal_entry_is_one_short_line() {
        let entry = r#"{"__REALTIME_TIMESTAMP":"1796117676540152","PRIORITY":"4","MESSAGE":"device lost","F_DEVICE":"default","F_RETRY_IN":"2s","_PID":"774","_HOSTNAME":"vm"}"#;
        let line = journal_line(entry).unwrap();
        assert!(
            line.ends_with(" WARN device lost device=default retry_in=2s"),
            "{line}"
        );
        assert_eq!(line.as_bytes()[2], b':');
        assert_eq!(journal_line("not json"), None);
    }

    #[test]
    fn launchctl_print_says_whether_the_job_runs() {
        let running = "gui/501/net.vjsuite.audio = {\n\tactive count = 1\n\tpath = /Users/vj/Library/LaunchAgents/net.vjsuite.audio.plist\n\ttype = LaunchAgent\n\tstate = running\n\n\tprogram = /Users/vj/.local/bin/vj-audio\n\tpid = 4242\n\tendpoints = {\n\t\t\"control\" = {\n\t\t\tstate = active\n\t\t}\n\t}\n}\n";
        assert_eq!(
            parse_launchctl_print(running),
            LaunchdJob {
                running: true,
                pid: Some(4242)
            }
        );
        let idle = "gui/501/net.vjsuite.lyrics = {\n\tstate = not running\n\tsockets = {\n\t\tstate = running\n\t}\n}\n";
        assert_eq!(
            parse_launchctl_print(idle),
            LaunchdJob {
                running: false,
                pid: None
            }
        );
    }

    #[test]
    fn launchd_logs_are_the_plists_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let plist = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("launchd/net.vjsuite.audio.plist"),
        )
        .unwrap()
        .replace("__HOME__", "/Users/vj");
        std::fs::write(dir.path().join("net.vjsuite.audio.plist"), plist).unwrap();
        let ld = Supervisor::Launchd {
            uid: 501,
            agents: dir.path().to_path_buf(),
        };
        assert_eq!(
            logs(&AUDIO, 30, true, &ld).unwrap().shell_words(),
            "tail -n 30 -F /Users/vj/Library/Logs/vj-suite/vj-audio.log"
        );
        let missing = logs(&LYRICS, 30, false, &ld).unwrap_err();
        assert!(missing.contains("make install"), "{missing}");
    }
}
