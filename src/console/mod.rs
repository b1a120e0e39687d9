//! `vj-console`: the live operator console — every worker with start/stop/restart keys and its
//! log, the audio analysis, what plays, the lyric lines and the OSC traffic, on one screen.
//!
//! `app` is the state and the layout, `panels/` one component per panel (state, keys, pure
//! drawing), `feed` the I/O thread (systemd, the debugger's push subscription, commands),
//! `term` the terminal and the event loop. Without a terminal it prints one plain snapshot.

pub mod app;
pub mod feed;
mod input;
pub mod panels;
pub mod screen;
pub mod telemetry;
pub mod term;
pub mod ui;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::Map;

use crate::bus::client;
use crate::config::{self, BusConfig};
use crate::registry::OSC_DEBUGGER;

/// The live vj-suite console. Keys: ? in the console. Without a terminal on stdout it prints
/// one plain snapshot and exits like vj-status (0 all ok, 1 any degraded/failed, 2 nothing
/// reachable).
#[derive(Parser, Debug)]
#[command(name = "vj-console", version)]
pub struct Cli {
    /// Redraws a second.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f64,
    /// Quit after this many seconds and print what was drawn and the CPU it took (to measure).
    #[arg(long, value_name = "SECONDS")]
    pub quit_after: Option<f64>,
}

/// Where the suite sends, from the config the workers read.
fn targets() -> Vec<String> {
    match config::load::<BusConfig>("bus", None, &crate::registry::owners()) {
        Ok(l) => panels::osc::describe_targets(&l.common.osc),
        Err(e) => {
            let mut t = panels::osc::describe_targets(&config::builtin("osc"));
            t.push(format!("(config error: {e})"));
            t
        }
    }
}

/// CPU seconds used so far, user and system: by this process, and by the children it waited
/// for (`systemctl`, `journalctl`).
fn cpu_seconds() -> (f64, f64) {
    let of = |who| {
        let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a whole rusage into the pointer we pass, which points to one.
        if unsafe { libc::getrusage(who, ru.as_mut_ptr()) } != 0 {
            return 0.0;
        }
        // SAFETY: zeroed is a valid rusage, and getrusage succeeded in filling it.
        let ru = unsafe { ru.assume_init() };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(ru.ru_utime) + secs(ru.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let bus_dir = config::configured_bus_dir();
    if !std::io::stdout().is_terminal() {
        return snapshot(bus_dir);
    }
    let feed = match feed::Feed::start(bus_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vj-console: cannot start its I/O thread: {e}");
            return ExitCode::from(2);
        }
    };
    let mut app = app::App::new(targets());
    let cpu0 = cpu_seconds();
    let quit_after = cli.quit_after.map(Duration::from_secs_f64);
    match term::run(&mut app, &feed, cli.fps, quit_after) {
        Ok(drawn) => {
            if let Some(why) = app.quit.filter(|w| *w != "q") {
                eprintln!("vj-console: quit on {why}");
            }
            if quit_after.is_some() {
                let secs = drawn.elapsed.as_secs_f64();
                let (own, children) = cpu_seconds();
                let (own, children) = (own - cpu0.0, children - cpu0.1);
                eprintln!(
                    "vj-console: {} frames in {secs:.1} s ({:.1} fps); CPU {own:.2} s itself ({:.1} % of a core), {children:.2} s in systemctl/journalctl ({:.1} %)",
                    drawn.frames,
                    drawn.frames as f64 / secs,
                    100.0 * own / secs,
                    100.0 * children / secs,
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vj-console: {e}");
            ExitCode::from(2)
        }
    }
}

/// One plain snapshot: the workers, and what the debugger holds if it runs.
fn snapshot(bus_dir: std::path::PathBuf) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vj-console: {e}");
            return ExitCode::from(2);
        }
    };
    let mut app = app::App::new(targets());
    let report = rt.block_on(crate::status::gather(&bus_dir));
    let code = report.exit_code();
    let running = feed::is_running(&report, OSC_DEBUGGER.bus_name);
    app.workers.report = Some(report);
    if running {
        let socket = config::socket_path(&bus_dir, OSC_DEBUGGER.bus_name);
        let stats = rt
            .block_on(client::ask(
                &socket,
                "get_stats",
                Map::new(),
                Duration::from_secs(3),
            ))
            .map(|ack| ack.data)
            .map_err(|e| e.to_string());
        match stats {
            Ok(s) => {
                app.no_telemetry = None;
                app.seed(&s);
            }
            Err(e) => app.no_telemetry = Some(e),
        }
    } else {
        app.no_telemetry = Some(format!("{} is not running", OSC_DEBUGGER.bus_name));
    }
    print!("{}", app.snapshot());
    ExitCode::from(code)
}
