//! How a worker lives under the OS supervisor: activated sockets, sd-notify readiness and
//! watchdog, logging to the journal, signals, credentials and atomic files; real-time
//! scheduling for a thread whose timing is seen; and a worker's identity there (`unit`).

pub mod activation;
pub mod backoff;
pub mod credentials;
pub mod files;
pub mod logging;
pub mod notify;
pub mod realtime;
pub mod signals;
pub mod stop;
pub mod unit;

use std::sync::{Mutex, MutexGuard};

/// The worker's own exit status for a config error (sysexits.h `EX_CONFIG`): the units carry
/// `RestartPreventExitStatus=78`, so systemd does not retry what cannot work.
pub const EX_CONFIG: i32 = 78;

/// Locks `m`, also after a thread panicked holding it: every value the suite keeps under a
/// lock is whole at every instant, so a panic elsewhere must not take the control plane down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
