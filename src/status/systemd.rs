//! What the systemd user manager says of the workers' units: asked over the session bus (zbus)
//! where the manager is on one (`dbus-user-session`, a desktop's default), else with one
//! `systemctl --user show`, which also reaches a manager on its private socket only. (zbus cannot
//! talk on that socket itself: the manager signs its replies there with a well-known name where
//! D-Bus expects a unique one, which zbus 5 does not accept.) One connection serves every look, so
//! the console's once-a-second look costs a few small messages instead of a `systemctl` process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::UnitState;
use crate::registry::WORKERS;

/// How long one look at the manager may take.
const LOOK_TIMEOUT: Duration = Duration::from_secs(2);
const DEST: &str = "org.freedesktop.systemd1";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const SOCKET: &str = "org.freedesktop.systemd1.Socket";

/// One row of `ListUnitsByNames`: name, description, load, active and sub state, followed unit,
/// object path, job id, job type, job path.
type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// A connection to the user manager, made on first use and made again after it breaks.
#[derive(Default)]
pub struct UserManager {
    conn: Mutex<Option<zbus::Connection>>,
    /// Whether the last look had to run `systemctl` (no manager on a session bus).
    by_process: AtomicBool,
}

impl UserManager {
    /// Every worker's service and control socket, keyed by the worker's binary (its unit
    /// name). `None` when no user manager answers.
    pub async fn states(&self) -> Option<HashMap<String, UnitState>> {
        let mut conn = self.conn.lock().await;
        // A cached connection may have broken (the bus restarted): one fresh try.
        for _ in 0..2 {
            if conn.is_none() {
                *conn = tokio::time::timeout(LOOK_TIMEOUT, zbus::Connection::session())
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let Some(c) = conn.as_ref() else { break };
            match tokio::time::timeout(LOOK_TIMEOUT, look(c)).await {
                Ok(Ok(states)) => {
                    self.by_process.store(false, Ordering::Relaxed);
                    return Some(states);
                }
                // No manager on this bus (a session bus of its own, the manager elsewhere).
                Ok(Err(zbus::Error::MethodError(..))) => break,
                _ => *conn = None,
            }
        }
        drop(conn);
        self.by_process.store(true, Ordering::Relaxed);
        systemctl_show().await
    }

    /// Whether looking costs a `systemctl` process (~9 ms of CPU) rather than a few D-Bus
    /// messages: a caller that looks every second may look less often then.
    pub fn looks_by_process(&self) -> bool {
        self.by_process.load(Ordering::Relaxed)
    }
}

async fn call<R: DeserializeOwned + zbus::zvariant::Type>(
    c: &zbus::Connection,
    path: &str,
    iface: &str,
    method: &str,
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> zbus::Result<R> {
    let reply = c
        .call_method(Some(DEST), path, Some(iface), method, body)
        .await?;
    reply.body().deserialize()
}

/// One property of the unit at `path`.
async fn property<T>(c: &zbus::Connection, path: &str, iface: &str, name: &str) -> zbus::Result<T>
where
    T: TryFrom<OwnedValue>,
    T::Error: Into<zbus::Error>,
{
    let v: OwnedValue = call(
        c,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        &(iface, name),
    )
    .await?;
    T::try_from(v).map_err(Into::into)
}

/// States first, in one call for all units; then, for each loaded service, its PID and
/// restarts, and why it ended only where that is shown (failed, or restarting after a failure).
async fn look(c: &zbus::Connection) -> zbus::Result<HashMap<String, UnitState>> {
    let names: Vec<String> = WORKERS
        .iter()
        .flat_map(|w| [w.service(), w.control_socket()])
        .collect();
    let listed: Vec<ListedUnit> = call(
        c,
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "ListUnitsByNames",
        &(names,),
    )
    .await?;
    let by_name: HashMap<&str, &ListedUnit> = listed.iter().map(|u| (u.0.as_str(), u)).collect();
    let rows = WORKERS.iter().filter_map(|w| {
        let service = *by_name.get(w.service().as_str())?;
        let socket = by_name
            .get(w.control_socket().as_str())
            .filter(|s| s.2 == "loaded")
            .copied();
        Some(unit_state(c, w.binary, service, socket))
    });
    join_all(rows).await.into_iter().collect()
}

async fn unit_state(
    c: &zbus::Connection,
    binary: &str,
    service: &ListedUnit,
    socket: Option<&ListedUnit>,
) -> zbus::Result<(String, UnitState)> {
    let mut u = UnitState {
        load: service.2.clone(),
        active: service.3.clone(),
        sub: service.4.clone(),
        socket: socket.map(|s| s.4.clone()).unwrap_or_default(),
        ..UnitState::default()
    };
    if u.load == "loaded" {
        let path = service.6.as_str();
        u.main_pid = property(c, path, SERVICE, "MainPID").await?;
        u.restarts = property(c, path, SERVICE, "NRestarts").await?;
        let ended = u.active == "failed" || u.sub == "auto-restart";
        let socket_failed = socket.is_some_and(|s| s.3 == "failed");
        if ended || socket_failed {
            u.status_text = property(c, path, SERVICE, "StatusText").await?;
            u.result = property(c, path, SERVICE, "Result").await?;
            let code: i32 = property(c, path, SERVICE, "ExecMainCode").await?;
            u.exit_code = code.try_into().unwrap_or(0);
            u.exit_status = property(c, path, SERVICE, "ExecMainStatus").await?;
            if let Some(s) = socket {
                u.socket_result = property(c, s.6.as_str(), SOCKET, "Result").await?;
            }
        }
    }
    Ok((binary.to_string(), u))
}

/// `systemctl --user show` of every worker's service and control socket, in one call: for a
/// manager without a session bus. `None` when no manager answers.
async fn systemctl_show() -> Option<HashMap<String, UnitState>> {
    let mut args = vec![
        "--user".to_string(),
        "show".into(),
        "--property=Id,LoadState,ActiveState,SubState,MainPID,NRestarts,StatusText,Result,ExecMainCode,ExecMainStatus".into(),
    ];
    for w in WORKERS {
        args.push(w.service());
        args.push(w.control_socket());
    }
    let out = tokio::process::Command::new("systemctl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(parse_show(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `systemctl show` blocks into per-worker states (service + its control socket).
fn parse_show(text: &str) -> HashMap<String, UnitState> {
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
    for w in WORKERS {
        let Some(service) = units.get(&w.service()) else {
            continue;
        };
        let get = |k: &str| service.get(k).cloned().unwrap_or_default();
        let socket_unit = units
            .get(&w.control_socket())
            .filter(|s| s.get("LoadState").map(String::as_str) == Some("loaded"));
        let socket_get = |k: &str| {
            socket_unit
                .and_then(|s| s.get(k).cloned())
                .unwrap_or_default()
        };
        states.insert(
            w.binary.to_string(),
            UnitState {
                load: get("LoadState"),
                active: get("ActiveState"),
                sub: get("SubState"),
                main_pid: get("MainPID").parse().unwrap_or(0),
                restarts: get("NRestarts").parse().unwrap_or(0),
                socket: socket_get("SubState"),
                socket_result: socket_get("Result"),
                status_text: get("StatusText"),
                result: get("Result"),
                exit_code: get("ExecMainCode").parse().unwrap_or(0),
                exit_status: get("ExecMainStatus").parse().unwrap_or(0),
            },
        );
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "Id=vj-audio.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\n\n\\
Id=vj-audio.socket\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n\n\\
Id=vj-oscdebug.service\nLoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=3\n\n\\
Id=vj-oscdebug.socket\nLoadState=loaded\nActiveState=active\nSubState=running\n\n\\
Id=vj-lyrics.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\n\n\\
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
}
