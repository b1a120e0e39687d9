//! The trait a worker implements and the one runtime that runs any worker under the OS
//! supervisor: activated sockets, the control server, common commands, heartbeats, readiness,
//! status, config changes and clean shutdown live here once.
//!
//! A worker is its domain logic plus `impl Worker` (its lifecycle: `start`, then `run` owning
//! its state) and `impl Handle` (the control plane's window on it while it runs); its binary is
//! `vj::worker::main::<W>()`.

mod runtime;
mod status;

pub use crate::service::stop::Stop;
pub use runtime::{load_overrides, main, serve};
pub use status::{Health, Status, StatusLine};

use std::collections::HashMap;
use std::future::Future;
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bus::Outcome;
use crate::config::{Common, Section};
use crate::osc::OscOut;
use crate::service::activation::Activated;
use crate::service::lock;
use crate::service::notify::Watchdog;
use crate::service::unit::WorkerInfo;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A worker: domain logic the runtime can start, run and restart.
pub trait Worker: Sized + Send + 'static {
    /// Its row of the registry: bus name, binary, config section.
    const INFO: &'static WorkerInfo;
    /// Its `vj.toml` section (`NoSettings` for none).
    type Config: Section;
    /// What the control plane asks while `run` owns the worker.
    type Handle: Handle;

    /// Builds the worker and its handle; an error here is a failed start (the supervisor
    /// retries).
    fn start(
        ctx: &Context<Self::Config>,
    ) -> impl Future<Output = anyhow::Result<(Self, Self::Handle)>> + Send;

    /// The work loop, until `ctx.stop`. It pets `ctx.watchdog` as it goes.
    fn run(self, ctx: Context<Self::Config>) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The control plane's window on a running worker: cheap to share, safe to ask at any time.
pub trait Handle: Send + Sync + 'static {
    /// The worker's own commands beyond `get_state`, `health`, `set_config` and `restart`: a
    /// serde enum, one variant per `cmd` (see [`crate::bus::command`]); [`NoCommand`] for none.
    type Command: DeserializeOwned + Send + 'static;

    /// Worker specifics for `get_state` (an object, merged into the common fields).
    fn state(&self) -> impl Serialize;

    /// Named checks for `health` (`{"capture": "ok"}`); health itself comes from the worker's
    /// [`Status`] (a handle that needs it holds a clone of `ctx.status`).
    fn checks(&self) -> impl Serialize {
        serde_json::Map::new()
    }

    /// Counters for heartbeats.
    fn stats(&self) -> impl Serialize {
        serde_json::Map::new()
    }

    /// Runs one of the worker's own commands.
    fn command(&self, cmd: Self::Command) -> impl Future<Output = Outcome> + Send;
}

/// The command type of a worker that has no commands of its own.
#[derive(Debug, Deserialize)]
pub enum NoCommand {}

/// What a worker is given to run with.
pub struct Context<C> {
    /// The worker's live config section; `set_config` sends a new one.
    pub config: watch::Receiver<Arc<C>>,
    /// OSC output to every target and route.
    pub osc: Arc<OscOut>,
    /// The sections every worker reads (`[bus]`, `[osc]`), as loaded at start.
    pub common: Arc<Common>,
    /// The whole merged config table as loaded at start: a section only one worker serves
    /// (`[control]`, read by vj-oscquery) is read from it by that worker.
    pub table: Arc<toml::Table>,
    /// Every worker of the suite (`registry::WORKERS`, handed down by the binary): the one that
    /// forwards commands to the others finds them here.
    pub suite: &'static [&'static WorkerInfo],
    /// Pet it from the work loop (see [`Watchdog::ticker`]).
    pub watchdog: Watchdog,
    pub status: Arc<Status>,
    pub stop: Stop,
    sockets: Arc<Mutex<Sockets>>,
}

impl<C> Clone for Context<C> {
    fn clone(&self) -> Self {
        Context {
            config: self.config.clone(),
            osc: self.osc.clone(),
            common: self.common.clone(),
            table: self.table.clone(),
            suite: self.suite,
            watchdog: self.watchdog.clone(),
            status: self.status.clone(),
            stop: self.stop.clone(),
            sockets: self.sockets.clone(),
        }
    }
}

impl<C> Context<C> {
    /// The current config section.
    pub fn config(&self) -> Arc<C> {
        self.config.borrow().clone()
    }

    /// The datagram socket called `name`: the activated one, else bound to `fallback`
    /// (`host:port`). The same socket survives an in-process `restart`.
    pub fn udp_socket(&self, name: &str, fallback: &str) -> std::io::Result<UdpSocket> {
        let mut sockets = lock(&self.sockets);
        if let Some(s) = sockets.udp.get(name) {
            return s.try_clone();
        }
        let socket = match sockets.activated.udp_socket(name)? {
            Some(s) => s,
            None => UdpSocket::bind(fallback).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot bind {fallback} for {name}: {e}"))
            })?,
        };
        socket.set_nonblocking(true)?;
        // A 4 MiB receive buffer (the kernel caps it at `net.core.rmem_max`) queues a burst of
        // OSC rather than dropping it while the worker is busy. Best effort.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
        if let Ok(local) = socket.local_addr() {
            self.osc.exclude_own(local);
        }
        sockets.udp.insert(name.to_string(), socket.try_clone()?);
        Ok(socket)
    }

    /// The stream listener called `name`: the activated one, else bound to `fallback`
    /// (`ip:port`). Survives an in-process `restart`; non-blocking, for tokio.
    pub fn tcp_listener(&self, name: &str, fallback: &str) -> std::io::Result<TcpListener> {
        let mut sockets = lock(&self.sockets);
        if let Some(l) = sockets.tcp.get(name) {
            return l.try_clone();
        }
        let listener = match sockets.activated.tcp_listener(name)? {
            Some(l) => l,
            None => TcpListener::bind(fallback).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen on {fallback} for {name}: {e}"),
                )
            })?,
        };
        listener.set_nonblocking(true)?;
        sockets.tcp.insert(name.to_string(), listener.try_clone()?);
        Ok(listener)
    }
}

struct Sockets {
    activated: Activated,
    udp: HashMap<String, UdpSocket>,
    tcp: HashMap<String, TcpListener>,
}
