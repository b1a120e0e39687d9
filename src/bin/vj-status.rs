//! `vj-status`: the operator's view of vj-suite. Exit 0 all ok, 1 any degraded/failed, 2 nothing
//! reachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use vj::bus::client::Client;
use vj::status::supervisor::{self, Action, Supervisor};
use vj::status::{record, replay};
use vj::worker::Health;
use vj::{config, registry};

/// Shows the health of every vj-suite worker, one row each, without waking idle ones.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Print JSON for scripts instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Show one worker's full state (bus name, unit or short name: osc_debugger, vj-oscdebug, oscdebug).
    worker: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send any command to a worker: `vj-status send lyrics fetch_lyrics artist=Daft\ Punk title=One\ More\ Time`.
    /// Values are JSON when they parse as JSON (numbers, true, null), else strings.
    Send {
        worker: String,
        cmd: String,
        /// key=value arguments.
        args: Vec<String>,
    },
    /// Show what the OSC debugger captured, oldest first.
    Osc {
        /// Keep printing new messages as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// How many recent messages to show first.
        #[arg(long, short = 'n', default_value_t = 20)]
        count: u64,
        /// Only addresses starting with this (`/audio/`).
        prefix: Option<String>,
    },
    /// Record every OSC message the suite sends, with its send time, into FILE (zstd-compressed
    /// SLIP-framed OSC bundles: see the README's "Rehearse") until Ctrl-C or --for.
    Record {
        file: PathBuf,
        /// Only addresses starting with this (`/audio/`); may be given more than once.
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// Stop after this long: `10m`, `90s`, `1h30m`.
        #[arg(long = "for", value_name = "DURATION", value_parser = record::parse_duration)]
        duration: Option<Duration>,
    },
    /// Send a recording again with its timing, to the [osc] targets and routes (or --to) until
    /// its end or Ctrl-C.
    Replay {
        file: PathBuf,
        /// Send here instead of the [osc] targets and routes; may be given more than once.
        #[arg(long = "to", value_name = "HOST:PORT")]
        to: Vec<String>,
        /// 0.5 to 4; 2 = twice as fast.
        #[arg(long, default_value = "1", value_parser = replay::parse_speed)]
        speed: f64,
        /// Start again at the end (from --from), until Ctrl-C.
        #[arg(long = "loop")]
        looped: bool,
        /// Start this far into the recording: MM:SS, H:MM:SS or seconds.
        #[arg(long, value_name = "MM:SS", value_parser = replay::parse_position)]
        from: Option<Duration>,
    },
    /// Start a worker (its sockets and the service), or `all`: systemctl --user / launchctl.
    Start { worker: String },
    /// Stop a worker and its sockets, or `all`, so nothing starts it until `start`.
    Stop { worker: String },
    /// Restart a worker's service, or `all`; its sockets stay open meanwhile.
    Restart { worker: String },
    /// Show a worker's log: the journal on Linux, the agent's log file on macOS.
    Logs {
        worker: String,
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
        /// How many of the last lines to show first.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vj-status: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vj-status: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn connect(worker: &str) -> anyhow::Result<Client> {
    let w = registry::find(worker).ok_or_else(|| {
        let names: Vec<_> = registry::WORKERS.iter().map(|w| w.bus_name).collect();
        anyhow!(
            "no worker called {worker:?}; the workers are {}",
            names.join(", ")
        )
    })?;
    let path = config::socket_path(&config::configured_bus_dir(), w.bus_name);
    let (bus, socket) = (w.bus_name, w.control_socket());
    Client::connect(&path).await.with_context(|| {
        format!("{bus} is not reachable (is {socket} started? `systemctl --user start {socket}`)")
    })
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn parse_args(args: &[String]) -> anyhow::Result<Map<String, Value>> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| anyhow!("argument {a:?} is not key=value"))?;
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
            Ok((k.to_string(), value))
        })
        .collect()
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match (cli.command, cli.worker) {
        (Some(Cmd::Send { worker, cmd, args }), _) => {
            let args = parse_args(&args)?;
            let mut client = connect(&worker).await?;
            let ack = client.request(&cmd, args).await?;
            if cli.json || ack.success {
                print_json(&serde_json::json!({
                    "success": ack.success, "message": ack.message, "data": ack.data
                }));
            } else {
                eprintln!("{}", ack.message.unwrap_or_default());
            }
            Ok(if ack.success { 0 } else { 1 })
        }
        (
            Some(Cmd::Osc {
                follow,
                count,
                prefix,
            }),
            _,
        ) => osc(follow, count, prefix.unwrap_or_default(), cli.json).await,
        (
            Some(Cmd::Record {
                file,
                prefixes,
                duration,
            }),
            _,
        ) => {
            let plan = record::RecordPlan {
                file,
                prefixes,
                duration,
            };
            record_show(plan, cli.json).await
        }
        (
            Some(Cmd::Replay {
                file,
                to,
                speed,
                looped,
                from,
            }),
            _,
        ) => {
            let mut plan = replay::ReplayPlan::new(file);
            plan.speed = speed;
            plan.looped = looped;
            plan.from = from.unwrap_or_default();
            replay_show(plan, to, cli.json).await
        }
        (Some(Cmd::Start { worker }), _) => act(Action::Start, &worker).await,
        (Some(Cmd::Stop { worker }), _) => act(Action::Stop, &worker).await,
        (Some(Cmd::Restart { worker }), _) => act(Action::Restart, &worker).await,
        (
            Some(Cmd::Logs {
                worker,
                follow,
                lines,
            }),
            _,
        ) => {
            let w = supervisor::targets(&worker)
                .map_err(|e| anyhow!(e))?
                .into_iter()
                .next()
                .filter(|_| worker != "all")
                .ok_or_else(|| anyhow!("logs shows one worker at a time, not all"))?;
            let inv =
                supervisor::logs(w, lines, follow, &Supervisor::here()).map_err(|e| anyhow!(e))?;
            // The log reader takes over: its output, its exit code, Ctrl-C ends it.
            use std::os::unix::process::CommandExt;
            let e = inv.command().exec();
            Err(anyhow!("cannot run {}: {e}", inv.program))
        }
        (None, Some(worker)) => {
            let mut client = connect(&worker).await?;
            let ack = client.request("get_state", Map::new()).await?;
            print_json(&ack.data);
            let status = ack.data.get("status").cloned().map(serde_json::from_value);
            Ok(if ack.success && matches!(status, Some(Ok(Health::Ok))) {
                0
            } else {
                1
            })
        }
        (None, None) => {
            let report = vj::status::gather(&config::configured_bus_dir()).await;
            if cli.json {
                print_json(&serde_json::to_value(&report)?);
            } else {
                print!("{}", vj::status::table(&report));
            }
            Ok(report.exit_code())
        }
    }
}

async fn act(action: Action, worker: &str) -> anyhow::Result<u8> {
    let workers = supervisor::targets(worker).map_err(|e| anyhow!(e))?;
    let plan = supervisor::plan(action, &workers, &Supervisor::here());
    supervisor::run(&plan).await.map_err(|e| anyhow!(e))?;
    let names: Vec<_> = workers.iter().map(|w| w.binary).collect();
    println!("{} {}", action.done(), names.join(" "));
    Ok(0)
}

async fn osc(follow: bool, count: u64, prefix: String, json: bool) -> anyhow::Result<u8> {
    let mut client = connect("osc_debugger").await?;
    let mut since = 0u64;
    let mut count = count;
    loop {
        let mut args = Map::new();
        args.insert("count".into(), count.max(1).into());
        args.insert("prefix".into(), prefix.clone().into());
        args.insert("since".into(), since.into());
        let ack = client.request("get_messages", args).await?;
        if !ack.success {
            return Err(anyhow!("{}", ack.message.unwrap_or_default()));
        }
        for m in ack.data["messages"].as_array().into_iter().flatten() {
            if json {
                println!("{m}");
            } else {
                let args: Vec<String> = m["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a.to_string())
                    .collect();
                println!(
                    "{:>8}  {:<28} {:<8} {}",
                    m["seq"],
                    m["address"].as_str().unwrap_or(""),
                    m["types"].as_str().unwrap_or(""),
                    args.join(" ")
                );
            }
        }
        if !follow {
            return Ok(0);
        }
        since = ack.data["last_seq"].as_u64().unwrap_or(since);
        // Following asks for everything new, a few times a second.
        count = 10_000;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn note(text: String) {
    eprintln!("vj-status: {text}");
}

async fn record_show(plan: record::RecordPlan, json: bool) -> anyhow::Result<u8> {
    let (_, common) = config::suite(&vj::registry::owners())?;
    let header = record::header(&plan.prefixes)?;
    let socket = config::socket_path(
        &config::configured_bus_dir(),
        registry::OSC_DEBUGGER.bus_name,
    );
    let stop = vj::service::signals::terminated();
    let s = record::record(&plan, &socket, header, &common.osc.targets, stop, note).await?;
    if json {
        print_json(&serde_json::to_value(&s)?);
    } else {
        println!("{s}");
    }
    Ok(if s.missed > 0 { 1 } else { 0 })
}

async fn replay_show(plan: replay::ReplayPlan, to: Vec<String>, json: bool) -> anyhow::Result<u8> {
    let osc = if to.is_empty() {
        config::suite(&vj::registry::owners())?.1.osc
    } else {
        config::OscConfig {
            targets: to.into_iter().map(config::OscTarget::plain).collect(),
            routes: Vec::new(),
        }
    };
    let out = vj::osc::OscOut::new(&osc)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        vj::service::signals::terminated().await;
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let summary =
        tokio::task::spawn_blocking(move || replay::replay(&plan, &out, &stop, note)).await??;
    if json {
        print_json(&serde_json::to_value(&summary)?);
    } else {
        println!("{summary}");
    }
    if let Some(damage) = &summary.damage {
        eprintln!("vj-status: {damage}");
        return Ok(1);
    }
    Ok(0)
}
