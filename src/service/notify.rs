//! sd-notify: `READY=1` once the worker serves, `STATUS=` one human line, `WATCHDOG=1` from
//! the work loop, `STOPPING=1` on the way out. Without `NOTIFY_SOCKET` every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(line: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(line)]);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// The watchdog, petted by the worker's own work loop: if that loop is stuck, systemd notices.
#[derive(Debug, Clone)]
pub struct Watchdog {
    period: Option<Duration>,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC`; pets at half the timeout, as sd_watchdog_enabled(3) advises.
    pub fn from_env() -> Self {
        let mut usec = 0;
        let period = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec / 2))
            .filter(|d| !d.is_zero());
        Watchdog { period }
    }

    pub fn disabled() -> Self {
        Watchdog { period: None }
    }

    /// How often the loop must call [`Watchdog::pet`]; `None` when no watchdog is set.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    pub fn pet(&self) {
        if self.period.is_some() {
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        }
    }

    /// A tick to put in the work loop's `select!`; never fires when the watchdog is off.
    pub fn ticker(&self) -> WatchdogTicker {
        WatchdogTicker {
            interval: self.period.map(|p| {
                let mut i = tokio::time::interval(p);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            }),
        }
    }
}

pub struct WatchdogTicker {
    interval: Option<tokio::time::Interval>,
}

impl WatchdogTicker {
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}
