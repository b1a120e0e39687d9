//! The echo worker: the smallest worker there is, written by following docs/ARCHITECTURE.md's
//! "A new worker". It answers `echo {text}` with the text and sends it as `/echo/text s`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rosc::{OscMessage, OscType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use vj::bus::Outcome;
use vj::config::NoSettings;
use vj::osc::OscOut;
use vj::service::unit::WorkerInfo;
use vj::worker::{Context, Handle, Health, Worker};

/// Its entry: every worker declares its own beside its `impl Worker` (a suite worker's is then
/// listed in src/registry.rs; this one is outside the suite).
pub const ECHO: WorkerInfo = WorkerInfo {
    bus_name: "echo",
    binary: "vj-echo",
    config_section: "echo",
    osc_in: None,
    http_port: None,
    starts_with_target: false,
    check_config: vj::config::check::<NoSettings>,
};

/// Its commands: one variant per `cmd`, the arguments as fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoCommand {
    Echo { text: String },
}

pub struct Echo;

pub struct EchoHandle {
    osc: Arc<OscOut>,
    echoes: AtomicU64,
}

impl Worker for Echo {
    const INFO: &'static WorkerInfo = &ECHO;
    type Config = NoSettings;
    type Handle = EchoHandle;

    async fn start(ctx: &Context<NoSettings>) -> anyhow::Result<(Self, EchoHandle)> {
        let handle = EchoHandle {
            osc: ctx.osc.clone(),
            echoes: AtomicU64::new(0),
        };
        Ok((Echo, handle))
    }

    async fn run(self, ctx: Context<NoSettings>) -> anyhow::Result<()> {
        ctx.status.set(Health::Ok, "echoing");
        let mut watchdog = ctx.watchdog.ticker();
        let mut stop = ctx.stop.clone();
        loop {
            tokio::select! {
                _ = watchdog.tick() => ctx.watchdog.pet(),
                _ = stop.wait() => return Ok(()),
            }
        }
    }
}

#[derive(Serialize)]
struct State {
    echoes: u64,
}

impl Handle for EchoHandle {
    type Command = EchoCommand;

    fn state(&self) -> impl Serialize {
        State {
            echoes: self.echoes.load(Ordering::Relaxed),
        }
    }

    async fn command(&self, cmd: EchoCommand) -> Outcome {
        match cmd {
            EchoCommand::Echo { text } => {
                self.osc.send(&OscMessage {
                    addr: "/echo/text".into(),
                    args: vec![OscType::String(text.clone())],
                });
                self.echoes.fetch_add(1, Ordering::Relaxed);
                Outcome::ok(json!({ "echo": text }))
            }
        }
    }
}
