//! A worker's health and its one-line detail: what `STATUS=`, `health`, `get_state`,
//! `vj-status` and the console all show.

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::service::notify;

/// A worker's health, as `health` and `vj-status` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Degraded,
    Failed,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Failed => "failed",
        })
    }
}

/// Health with the detail line beside it. The line a person reads says the health first when
/// it is not ok: "degraded: LRCLIB unreachable, retry in 8s".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub health: Health,
    pub detail: String,
}

impl StatusLine {
    pub fn new(health: Health, detail: impl Into<String>) -> Self {
        StatusLine {
            health,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.health {
            Health::Ok => f.write_str(&self.detail),
            h => write!(f, "{h}: {}", self.detail),
        }
    }
}

/// The one status object of a running worker; systemd hears of every change (`STATUS=`).
#[derive(Debug)]
pub struct Status {
    inner: Mutex<StatusLine>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            inner: Mutex::new(StatusLine::new(Health::Ok, "starting")),
        }
    }
}

impl Status {
    /// Sets health and detail (without a "degraded:" prefix: the line adds it); systemd hears
    /// of it only when it changed.
    pub fn set(&self, health: Health, detail: impl Into<String>) {
        self.set_line(StatusLine::new(health, detail));
    }

    pub fn set_line(&self, new: StatusLine) {
        let health = new.health;
        let mut cur = crate::service::lock(&self.inner);
        if *cur == new {
            return;
        }
        let line = new.to_string();
        match health {
            Health::Ok => info!(status = %line, "status: {line}"),
            _ => warn!(status = %line, "status: {line}"),
        }
        notify::status(&line);
        *cur = new;
    }

    pub fn get(&self) -> StatusLine {
        crate::service::lock(&self.inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_health_unless_ok() {
        assert_eq!(
            StatusLine::new(Health::Ok, "capturing").to_string(),
            "capturing"
        );
        assert_eq!(
            StatusLine::new(Health::Degraded, "LRCLIB unreachable").to_string(),
            "degraded: LRCLIB unreachable"
        );
        assert_eq!(
            serde_json::from_str::<Health>("\"failed\"").unwrap(),
            Health::Failed
        );
    }
}
