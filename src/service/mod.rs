//! How a worker lives under the OS supervisor: activated sockets, sd-notify readiness and
//! watchdog, logging to the journal, signals, credentials and atomic files; real-time
//! scheduling for a thread whose timing is seen.

pub mod activation;
pub mod backoff;
pub mod credentials;
pub mod files;
pub mod logging;
pub mod notify;
pub mod realtime;
pub mod signals;
pub mod stop;
