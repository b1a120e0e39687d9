//! The runtime that serves any [`Worker`] as a service process: it loads the config, takes the
//! activated sockets, starts the worker, answers the common commands and hands the rest to the
//! worker's [`Handle`], restarts it in-process, and stops cleanly on SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::{Context, Handle, Sockets, Status, Stop, Worker, VERSION};
use crate::bus::command::{self, Rejected};
use crate::bus::message::{self, Command, Outcome};
use crate::bus::server::{self, Handler, Reply};
use crate::config;
use crate::osc::OscOut;
use crate::service::activation::{self, Activated};
use crate::service::lock;
use crate::service::notify::{self, Watchdog};
use crate::service::unit::WorkerInfo;
use crate::service::{files, logging, signals};

/// SIGTERM to exit: systemd is told `STOPPING=1` and the process is gone well within 2 s.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// The commands every worker answers, in the runtime.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CommonCommand {
    GetState,
    Health,
    SetConfig(Map<String, Value>),
    Restart,
}

/// The running instance of a worker and how to stop it.
struct Instance {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Instance {
    /// Asks the instance to stop; one that misses [`STOP_GRACE`] is aborted (dropped at its
    /// next await), so it never runs beside the next instance holding sockets or state.
    async fn end(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            warn!("the worker did not stop within {STOP_GRACE:?}; aborted");
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

struct Runtime<W: Worker> {
    started: Instant,
    handle: Mutex<Option<Arc<W::Handle>>>,
    instance: tokio::sync::Mutex<Option<Instance>>,
    config_tx: watch::Sender<Arc<W::Config>>,
    /// The merged config table `set_config` edits, and the overrides it has saved.
    table: Mutex<(toml::Table, toml::Table)>,
    config_file: Option<PathBuf>,
    /// What each instance is given; its `stop` is the process's.
    ctx: Context<W::Config>,
    /// Told when the work loop ends on its own (an error, or a bug): the process exits.
    failed: tokio::sync::mpsc::UnboundedSender<String>,
}

fn overrides_path(bus_name: &str) -> PathBuf {
    config::state_dir().join(format!("{bus_name}.json"))
}

/// The `set_config` changes a worker saved (a table of its own section), if any: the runtime
/// applies them at start, and `vj-status record` writes the config in effect with them.
pub fn load_overrides(bus_name: &str) -> Option<toml::Table> {
    let path = overrides_path(bus_name);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "ignoring the unreadable saved config {}: {e}", path.display());
            None
        }
    }
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl<W: Worker> Runtime<W> {
    fn current(&self) -> Option<Arc<W::Handle>> {
        lock(&self.handle).clone()
    }

    fn uptime(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0
    }

    async fn launch(self: &Arc<Self>) -> anyhow::Result<()> {
        let (stop, stop_rx) = Stop::channel();
        let mut ctx = self.ctx.clone();
        // Stop on the process's stop or on this instance's own (restart).
        let mut process = self.ctx.stop.clone();
        let stop_tx = stop.clone();
        tokio::spawn(async move {
            process.wait().await;
            let _ = stop_tx.send(true);
        });
        ctx.stop = stop_rx.clone();
        let (worker, handle) = W::start(&ctx).await?;
        *lock(&self.handle) = Some(Arc::new(handle));
        let failed = self.failed.clone();
        let run = worker.run(ctx);
        let task = tokio::spawn(async move {
            let result = run.await;
            if stop_rx.requested() {
                return;
            }
            let why = match result {
                Ok(()) => "the work loop ended".to_string(),
                Err(e) => format!("{e:#}"),
            };
            let _ = failed.send(why);
        });
        *self.instance.lock().await = Some(Instance { stop, task });
        Ok(())
    }

    async fn restart(self: &Arc<Self>) -> Outcome {
        if let Some(old) = self.instance.lock().await.take() {
            old.end().await;
        }
        match self.launch().await {
            Ok(()) => {
                info!("{} restarted in-process", W::INFO.bus_name);
                Outcome::ok(json!({"restarted": true}))
            }
            Err(e) => {
                let _ = self.failed.send(format!("restart failed: {e:#}"));
                Outcome::fail(format!("restart failed: {e:#}"))
            }
        }
    }

    fn set_config(&self, args: Map<String, Value>) -> Outcome {
        let section = W::INFO.config_section;
        let mut guard = lock(&self.table);
        let (table, over, new) = match config::set_config(&guard.0, section, args, |t| {
            config::section::<W::Config>(t, section, "set_config")
        }) {
            Ok(applied) => applied,
            Err(e) => return Outcome::fail(e),
        };
        let mut saved = guard.1.clone();
        config::overlay(&mut saved, over);
        let path = overrides_path(W::INFO.bus_name);
        let bytes = serde_json::to_vec_pretty(&saved).unwrap_or_default();
        if let Err(e) = files::write_atomic(&path, &bytes, 0o600) {
            return Outcome::fail(format!(
                "set_config: cannot save to {}: {e}",
                path.display()
            ));
        }
        *guard = (table, saved);
        let shown = to_json(&new);
        info!(config = %shown, "set_config changed [{section}]: {shown}");
        self.config_tx.send_replace(Arc::new(new));
        Outcome::ok(json!({ "config": shown }))
    }

    fn common(&self) -> Map<String, Value> {
        let line = self.ctx.status.get();
        let mut m = Map::new();
        m.insert("worker".into(), W::INFO.bus_name.into());
        m.insert("pid".into(), std::process::id().into());
        m.insert("uptime_sec".into(), self.uptime().into());
        m.insert("version".into(), VERSION.into());
        m.insert("status".into(), json!(line.health));
        m.insert("detail".into(), line.to_string().into());
        m
    }

    async fn dispatch(self: Arc<Self>, cmd: Command) -> Outcome {
        let Some(handle) = self.current() else {
            return Outcome::fail("the worker is restarting; try again");
        };
        let common = match command::decode::<CommonCommand>(&cmd.cmd, &cmd.args) {
            Ok(c) => c,
            Err(Rejected::Unknown) => {
                return match command::decode::<<W::Handle as Handle>::Command>(&cmd.cmd, &cmd.args)
                {
                    Ok(own) => handle.command(own).await,
                    Err(rejected) => rejected.outcome(&cmd.cmd),
                }
            }
            Err(rejected) => return rejected.outcome(&cmd.cmd),
        };
        match common {
            CommonCommand::GetState => {
                // The worker's own state before the status line: a worker sets its line before
                // it publishes what the line reports (vj-audio's rate), so a state read first
                // is never newer than the line read after it.
                let own = to_json(handle.state());
                let mut m = self.common();
                m.insert("config".into(), to_json(&*self.ctx.config()));
                m.insert(
                    "config_file".into(),
                    self.config_file
                        .as_ref()
                        .map_or(Value::Null, |p| p.display().to_string().into()),
                );
                m.insert("osc".into(), to_json(self.ctx.osc.stats()));
                if let Value::Object(own) = own {
                    m.extend(own);
                }
                Outcome::ok(Value::Object(m))
            }
            CommonCommand::Health => {
                // The checks before the line, as in get_state.
                let checks = to_json(handle.checks());
                let mut m = self.common();
                m.insert("checks".into(), checks);
                Outcome::ok(Value::Object(m))
            }
            CommonCommand::SetConfig(args) => self.set_config(args),
            CommonCommand::Restart => self.restart().await,
        }
    }
}

impl<W: Worker> Handler for Runtime<W> {
    fn handle(self: Arc<Self>, cmd: Command) -> Reply {
        Box::pin(self.dispatch(cmd))
    }

    fn heartbeat(&self) -> Vec<u8> {
        let stats = self.current().map_or(json!({}), |h| to_json(h.stats()));
        message::heartbeat_json(W::INFO.bus_name, self.uptime(), &stats)
    }
}

/// Runs worker `W` as a service process: the whole of a worker binary's `main`. `suite` is every
/// worker of the suite (`registry::WORKERS`): whose sections config checks, and whom
/// [`Context::suite`] names.
pub fn main<W: Worker>(suite: &'static [&'static WorkerInfo]) -> ExitCode {
    logging::init(W::INFO.binary);
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
    match rt.block_on(serve::<W>(suite)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{} failed: {e:#}", W::INFO.binary);
            notify::status(&format!("failed: {e:#}"));
            if e.downcast_ref::<config::ConfigError>().is_none() {
                ExitCode::FAILURE
            } else if launchd_job() {
                // launchd's KeepAlive { SuccessfulExit = false } respawns any failed exit and has
                // no RestartPreventExitStatus=: a clean exit leaves the job waiting on its socket
                // instead of looping on a config that cannot work. (Untested: no macOS here.)
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::service::EX_CONFIG as u8)
            }
        }
    }
}

/// Whether launchd runs this process (it names the job in `XPC_SERVICE_NAME`).
fn launchd_job() -> bool {
    cfg!(target_os = "macos") && std::env::var_os("XPC_SERVICE_NAME").is_some()
}

/// Serves worker `W` until SIGTERM/SIGINT.
pub async fn serve<W: Worker>(suite: &'static [&'static WorkerInfo]) -> anyhow::Result<()> {
    let started = Instant::now();
    let info = W::INFO;
    let mut activated = Activated::from_env();
    let owners: Vec<config::Owner> = suite.iter().map(|w| w.owner()).collect();
    // The saved set_config, read once: laid on at load, and kept to add the next one to.
    let overrides = load_overrides(info.bus_name);
    let loaded = config::load::<W::Config>(info.config_section, overrides.clone(), &owners)?;
    if let Some(e) = &loaded.overrides_rejected {
        warn!(error = %e, "the saved set_config no longer applies ({e}); running without it");
    }
    // Another worker's section is that worker's to fail on; this one says so once and runs.
    for e in &loaded.elsewhere {
        warn!(section = %e.section, "{e}; {} runs on", info.binary);
    }

    let (listener, bound_path) = match activated.unix_listener(activation::CONTROL)? {
        Some(l) => (l, None),
        None => {
            let path = config::socket_path(&config::bus_dir(&loaded.common.bus), info.bus_name);
            let l = activation::bind_control(&path)
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
            (l, Some(path))
        }
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;

    let osc = Arc::new(OscOut::new(&loaded.common.osc)?);
    let (stop_tx, stop) = Stop::channel();
    let (config_tx, config_rx) = watch::channel(Arc::new(loaded.section));
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
    let saved = loaded
        .overrides_rejected
        .is_none()
        .then_some(overrides)
        .flatten()
        .unwrap_or_default();
    let loaded_table = Arc::new(loaded.table.clone());
    let runtime = Arc::new(Runtime::<W> {
        started,
        handle: Mutex::new(None),
        instance: tokio::sync::Mutex::new(None),
        config_tx,
        table: Mutex::new((loaded.table, saved)),
        config_file: loaded.file,
        ctx: Context {
            config: config_rx,
            osc,
            common: Arc::new(loaded.common.clone()),
            table: loaded_table,
            suite,
            watchdog: Watchdog::from_env(),
            status: Arc::new(Status::default()),
            stop: stop.clone(),
            sockets: Arc::new(Mutex::new(Sockets {
                activated,
                udp: HashMap::new(),
                tcp: HashMap::new(),
            })),
        },
        failed: failed_tx,
    });

    runtime.launch().await?;
    let serving = tokio::spawn(server::serve(listener, runtime.clone(), stop));
    notify::ready(&runtime.ctx.status.get().to_string());
    let pid = std::process::id();
    info!(
        worker = info.bus_name,
        pid, "{} ready (pid {pid})", info.bus_name
    );

    let outcome = tokio::select! {
        _ = signals::terminated() => {
            info!("stopping: SIGTERM or SIGINT received");
            Ok(())
        }
        Some(why) = failed_rx.recv() => Err(anyhow::anyhow!("{} failed: {why}", info.bus_name)),
    };
    notify::stopping();
    let _ = stop_tx.send(true);
    let instance = runtime.instance.lock().await.take();
    if let Some(i) = instance {
        i.end().await;
    }
    // The connections were told with the instance; what is left of the 2 s goes to them.
    let _ = tokio::time::timeout(Duration::from_millis(300), serving).await;
    if let Some(path) = bound_path {
        let _ = std::fs::remove_file(path);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BusConfig, Common, NoSettings, OscConfig};
    use crate::worker::NoCommand;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Instances of [`Stubborn`] whose work loop is still alive.
    static RUNNING: AtomicUsize = AtomicUsize::new(0);

    /// A worker whose loop never looks at its stop (a bug, or a loop stuck awaiting I/O).
    struct Stubborn;
    struct Alive;
    impl Drop for Alive {
        fn drop(&mut self) {
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }
    struct StubbornHandle;

    impl Handle for StubbornHandle {
        type Command = NoCommand;
        fn state(&self) -> impl serde::Serialize {
            Map::new()
        }
        async fn command(&self, cmd: NoCommand) -> Outcome {
            match cmd {}
        }
    }

    impl Worker for Stubborn {
        const INFO: &'static WorkerInfo = &WorkerInfo {
            bus_name: "stubborn",
            binary: "vj-stubborn",
            config_section: "stubborn",
            osc_in: None,
            http_port: None,
            starts_with_target: false,
            check_config: crate::config::check::<NoSettings>,
        };
        type Config = NoSettings;
        type Handle = StubbornHandle;
        async fn start(_: &Context<NoSettings>) -> anyhow::Result<(Self, StubbornHandle)> {
            Ok((Stubborn, StubbornHandle))
        }
        async fn run(self, _: Context<NoSettings>) -> anyhow::Result<()> {
            RUNNING.fetch_add(1, Ordering::SeqCst);
            let _alive = Alive;
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    #[tokio::test]
    async fn a_worker_that_misses_its_stop_grace_is_aborted_before_the_next_starts() {
        let (_stop_tx, stop) = Stop::channel();
        let (config_tx, config) = watch::channel(Arc::new(NoSettings {}));
        let (failed, _failed_rx) = tokio::sync::mpsc::unbounded_channel();
        let osc = OscConfig {
            targets: vec![],
            routes: vec![],
        };
        let runtime = Arc::new(Runtime::<Stubborn> {
            started: Instant::now(),
            handle: Mutex::new(None),
            instance: tokio::sync::Mutex::new(None),
            config_tx,
            table: Mutex::new((toml::Table::new(), toml::Table::new())),
            config_file: None,
            ctx: Context {
                config,
                osc: Arc::new(OscOut::new(&osc).unwrap()),
                common: Arc::new(Common {
                    bus: BusConfig { dir: String::new() },
                    osc,
                }),
                table: Arc::new(toml::Table::new()),
                suite: &[],
                watchdog: Watchdog::from_env(),
                status: Arc::new(Status::default()),
                stop,
                sockets: Arc::new(Mutex::new(super::super::Sockets {
                    activated: Activated::from_env(),
                    udp: HashMap::new(),
                    tcp: HashMap::new(),
                })),
            },
            failed,
        });
        runtime.launch().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(RUNNING.load(Ordering::SeqCst), 1);
        let outcome = runtime.restart().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(outcome.success, "{:?}", outcome.message);
        assert_eq!(
            RUNNING.load(Ordering::SeqCst),
            1,
            "the old instance was aborted, not left beside the new one"
        );
    }
}
