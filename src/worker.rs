//! The trait a worker implements and the one runtime that runs any worker under the OS
//! supervisor: activated sockets, the control server, common commands, heartbeats, readiness,
//! status, config changes and clean shutdown live here once.
//!
//! A worker is its domain logic plus `impl Worker`; its binary is `worker::main::<W>()`.

use std::collections::HashMap;
use std::future::Future;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::bus::message::{self, Command, Outcome};
use crate::bus::server::{self, Handler, Reply};
use crate::config::{self, Config};
use crate::osc::OscOut;
use crate::service::activation::{self, Activated};
use crate::service::notify::{self, Watchdog};
use crate::service::{files, logging, signals};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// SIGTERM to exit: systemd is told `STOPPING=1` and the process is gone well within 2 s.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// A worker's health, as `health` and `vj-status` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Degraded,
    Failed,
}

/// The one-line state a worker shows in `STATUS=`, `get_state` and `vj-status`.
#[derive(Debug)]
pub struct Status {
    inner: Mutex<(Health, String)>,
}

impl Status {
    fn new() -> Self {
        Status {
            inner: Mutex::new((Health::Ok, "starting".into())),
        }
    }

    /// Sets health and line; systemd hears of it only when it changed.
    pub fn set(&self, health: Health, line: impl Into<String>) {
        let line = line.into();
        let mut cur = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if cur.0 == health && cur.1 == line {
            return;
        }
        match health {
            Health::Ok => info!(status = %line, "status"),
            _ => warn!(status = %line, "status"),
        }
        notify::status(&line);
        *cur = (health, line);
    }

    pub fn get(&self) -> (Health, String) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a worker is given to run with.
#[derive(Clone)]
pub struct Context {
    /// The live config; `set_config` sends a new one.
    pub config: watch::Receiver<Arc<Config>>,
    /// OSC output to every target and route.
    pub osc: Arc<OscOut>,
    /// Pet it from the work loop (see [`Watchdog::ticker`]).
    pub watchdog: Watchdog,
    pub status: Arc<Status>,
    /// Turns true when the worker must stop (SIGTERM, or `restart`).
    pub shutdown: watch::Receiver<bool>,
    sockets: Arc<Mutex<Sockets>>,
}

impl Context {
    /// The current config.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// The datagram socket called `name`: the activated one, else bound to `fallback`
    /// (`host:port`). The same socket survives an in-process `restart`.
    pub fn udp_socket(&self, name: &str, fallback: &str) -> std::io::Result<UdpSocket> {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
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
        grow_receive_buffer(&socket);
        if let Ok(local) = socket.local_addr() {
            self.osc.exclude_own(local);
        }
        sockets.udp.insert(name.to_string(), socket.try_clone()?);
        Ok(socket)
    }

    /// Resolves when the worker must stop.
    pub async fn stopped(&mut self) {
        let _ = self.shutdown.wait_for(|s| *s).await;
    }
}

/// Asks for a 4 MiB receive buffer (the kernel caps it at `net.core.rmem_max`) so a burst of
/// OSC is queued rather than dropped while the worker is busy. Best effort.
fn grow_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 << 20;
    // SAFETY: setsockopt reads `size` for the given length; failure leaves the socket as it was.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

struct Sockets {
    activated: Activated,
    udp: HashMap<String, UdpSocket>,
}

/// A worker: domain logic the runtime can start, run, ask and restart.
pub trait Worker: Sized + Send + Sync + 'static {
    /// Its name on the bus (`osc_debugger`): socket file, state file, heartbeats.
    const BUS_NAME: &'static str;
    /// The config section `set_config` edits (`osc_debugger`).
    const CONFIG_SECTION: &'static str;

    /// Builds the worker; an error here is a failed start (the supervisor retries).
    fn start(ctx: &Context) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// The work loop, until `ctx.shutdown`. It pets `ctx.watchdog` as it goes.
    fn run(self: Arc<Self>, ctx: Context) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Worker specifics for `get_state` (merged into the common fields).
    fn state(&self) -> Map<String, Value>;

    /// Named checks for `health` (`{"device": "ok"}`); health itself comes from [`Status`].
    fn checks(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Counters for heartbeats.
    fn stats(&self) -> Value {
        json!({})
    }

    /// Commands beyond the common ones; `None` = unknown.
    fn command(self: Arc<Self>, cmd: Command) -> impl Future<Output = Option<Outcome>> + Send {
        let _ = cmd;
        async { None }
    }
}

/// The running instance of a worker and how to stop it.
struct Instance<W> {
    worker: Arc<W>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Runtime<W: Worker> {
    started: Instant,
    current: RwLock<Option<Arc<W>>>,
    instance: tokio::sync::Mutex<Option<Instance<W>>>,
    config_tx: watch::Sender<Arc<Config>>,
    /// The merged config table `set_config` edits, and the overrides it has saved.
    table: Mutex<(toml::Table, toml::Table)>,
    config_file: Option<PathBuf>,
    ctx: Context,
    /// Told when the work loop ends on its own (an error, or a bug): the process exits.
    failed: tokio::sync::mpsc::UnboundedSender<String>,
}

fn overrides_path(bus_name: &str) -> PathBuf {
    config::state_dir().join(format!("{bus_name}.json"))
}

fn load_overrides(bus_name: &str) -> Option<toml::Table> {
    let path = overrides_path(bus_name);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "ignoring unreadable saved config");
            None
        }
    }
}

/// Lays `over` onto `base` without checking keys (they were checked when first set).
fn overlay(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl<W: Worker> Runtime<W> {
    fn worker(&self) -> Option<Arc<W>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn uptime(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0
    }

    async fn launch(self: &Arc<Self>) -> anyhow::Result<()> {
        let (stop, stop_rx) = watch::channel(false);
        let mut ctx = self.ctx.clone();
        // Stop on the process's shutdown or on this instance's own stop (restart).
        let mut process_shutdown = self.ctx.shutdown.clone();
        let stop_tx = stop.clone();
        tokio::spawn(async move {
            let _ = process_shutdown.wait_for(|s| *s).await;
            let _ = stop_tx.send(true);
        });
        ctx.shutdown = stop_rx.clone();
        let worker = Arc::new(W::start(&ctx).await?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(worker.clone());
        let failed = self.failed.clone();
        let run = worker.clone().run(ctx);
        let task = tokio::spawn(async move {
            let result = run.await;
            if *stop_rx.borrow() {
                return;
            }
            let why = match result {
                Ok(()) => "the work loop ended".to_string(),
                Err(e) => format!("{e:#}"),
            };
            let _ = failed.send(why);
        });
        *self.instance.lock().await = Some(Instance { worker, stop, task });
        Ok(())
    }

    async fn restart(self: &Arc<Self>) -> Outcome {
        if let Some(old) = self.instance.lock().await.take() {
            let _ = old.stop.send(true);
            if tokio::time::timeout(STOP_GRACE, old.task).await.is_err() {
                return Outcome::fail("restart: the worker did not stop in time");
            }
            drop(old.worker);
        }
        match self.launch().await {
            Ok(()) => {
                info!("restarted in-process");
                Outcome::ok(json!({"restarted": true}))
            }
            Err(e) => {
                let _ = self.failed.send(format!("restart failed: {e:#}"));
                Outcome::fail(format!("restart failed: {e:#}"))
            }
        }
    }

    fn set_config(&self, args: Map<String, Value>) -> Outcome {
        if args.is_empty() {
            return Outcome::fail(format!(
                "set_config needs at least one key of [{}]",
                W::CONFIG_SECTION
            ));
        }
        let over: toml::Table = match toml::Table::try_from(Value::Object(args)) {
            Ok(t) => t,
            Err(e) => return Outcome::fail(format!("set_config: {e}")),
        };
        let mut guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut table = guard.0.clone();
        let checked = config::merge_section(&mut table, W::CONFIG_SECTION, over.clone())
            .and_then(|()| Config::from_table(table.clone(), "set_config"));
        let config = match checked {
            Ok(c) => c,
            Err(e) => return Outcome::fail(e.to_string()),
        };
        let mut saved = guard.1.clone();
        overlay(&mut saved, over);
        let path = overrides_path(W::BUS_NAME);
        let bytes = serde_json::to_vec_pretty(&saved).unwrap_or_default();
        if let Err(e) = files::write_atomic(&path, &bytes, 0o600) {
            return Outcome::fail(format!(
                "set_config: cannot save to {}: {e}",
                path.display()
            ));
        }
        *guard = (table, saved);
        let section = config.section_json(W::CONFIG_SECTION);
        info!(config = %section, "config changed");
        self.config_tx.send_replace(Arc::new(config));
        Outcome::ok(json!({ "config": section }))
    }

    fn common(&self) -> Map<String, Value> {
        let (health, line) = self.ctx.status.get();
        let mut m = Map::new();
        m.insert("worker".into(), W::BUS_NAME.into());
        m.insert("pid".into(), std::process::id().into());
        m.insert("uptime_sec".into(), self.uptime().into());
        m.insert("version".into(), VERSION.into());
        m.insert("status".into(), json!(health));
        m.insert("detail".into(), line.into());
        m
    }

    async fn dispatch(self: Arc<Self>, cmd: Command) -> Outcome {
        let Some(worker) = self.worker() else {
            return Outcome::fail("the worker is restarting; try again");
        };
        match cmd.cmd.as_str() {
            "get_state" => {
                let mut m = self.common();
                let config = self.ctx.config().section_json(W::CONFIG_SECTION);
                m.insert("config".into(), config);
                m.insert(
                    "config_file".into(),
                    self.config_file
                        .as_ref()
                        .map_or(Value::Null, |p| p.display().to_string().into()),
                );
                m.insert("osc".into(), json!(self.ctx.osc.stats()));
                m.extend(worker.state());
                Outcome::ok(Value::Object(m))
            }
            "health" => {
                let mut m = self.common();
                m.insert("checks".into(), Value::Object(worker.checks()));
                Outcome::ok(Value::Object(m))
            }
            "set_config" => self.set_config(cmd.args),
            "restart" => self.restart().await,
            name => {
                let name = name.to_string();
                worker
                    .command(cmd)
                    .await
                    .unwrap_or_else(|| Outcome::unknown(&name))
            }
        }
    }
}

impl<W: Worker> Handler for Runtime<W> {
    fn handle(self: Arc<Self>, cmd: Command) -> Reply {
        Box::pin(self.dispatch(cmd))
    }

    fn heartbeat(&self) -> Vec<u8> {
        let stats = self.worker().map_or(json!({}), |w| w.stats());
        message::heartbeat_json(W::BUS_NAME, self.uptime(), &stats)
    }
}

/// Runs worker `W` as a service process: the whole of a worker binary's `main`.
pub fn main<W: Worker>(binary: &str) -> ExitCode {
    logging::init(binary);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve::<W>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            notify::status(&format!("failed: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Serves worker `W` until SIGTERM/SIGINT.
pub async fn serve<W: Worker>() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut activated = Activated::from_env();
    let loaded = Config::load(W::CONFIG_SECTION, load_overrides(W::BUS_NAME))?;
    if let Some(e) = &loaded.overrides_rejected {
        warn!(error = %e, "saved set_config no longer applies; running without it");
    }
    let config = loaded.config;

    let (listener, bound_path) = match activated.unix_listener(activation::CONTROL)? {
        Some(l) => (l, None),
        None => {
            let path = config::socket_path(&config::bus_dir(&config), W::BUS_NAME);
            let l = activation::bind_control(&path)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
            (l, Some(path))
        }
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;

    let osc = Arc::new(OscOut::new(&config.osc)?);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
    let saved = loaded
        .overrides_rejected
        .is_none()
        .then(|| load_overrides(W::BUS_NAME))
        .flatten()
        .unwrap_or_default();
    let runtime = Arc::new(Runtime::<W> {
        started,
        current: RwLock::new(None),
        instance: tokio::sync::Mutex::new(None),
        config_tx,
        table: Mutex::new((loaded.table, saved)),
        config_file: loaded.file,
        ctx: Context {
            config: config_rx,
            osc,
            watchdog: Watchdog::from_env(),
            status: Arc::new(Status::new()),
            shutdown: shutdown.clone(),
            sockets: Arc::new(Mutex::new(Sockets {
                activated,
                udp: HashMap::new(),
            })),
        },
        failed: failed_tx,
    });

    runtime.launch().await?;
    let serving = tokio::spawn(server::serve(listener, runtime.clone(), shutdown.clone()));
    let (_, line) = runtime.ctx.status.get();
    notify::ready(&line);
    info!(worker = W::BUS_NAME, pid = std::process::id(), "ready");

    let outcome = tokio::select! {
        _ = signals::terminated() => {
            info!("stopping on signal");
            Ok(())
        }
        Some(why) = failed_rx.recv() => Err(anyhow::anyhow!("{} failed: {why}", W::BUS_NAME)),
    };
    notify::stopping();
    let _ = shutdown_tx.send(true);
    let instance = runtime.instance.lock().await.take();
    let _ = tokio::time::timeout(STOP_GRACE, async {
        if let Some(i) = instance {
            let _ = i.task.await;
        }
        let _ = serving.await;
    })
    .await;
    if let Some(path) = bound_path {
        let _ = std::fs::remove_file(path);
    }
    outcome
}
