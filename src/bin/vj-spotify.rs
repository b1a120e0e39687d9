//! `vj-spotify`: the Spotify monitor worker (bus name `spotify_monitor`);
//! `vj-spotify login [--port N]` stores a refresh token with the PKCE flow.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vj::playback::spotify::{login, SpotifyConfig, SpotifyMonitor};

/// What Spotify plays, over OSC; run without a command to serve (bus name spotify_monitor).
#[derive(Parser)]
#[command(name = "vj-spotify", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Authorize with Spotify (PKCE) and store the refresh token; the redirect is
    /// http://127.0.0.1:PORT/callback.
    Login {
        #[arg(long, default_value_t = login::DEFAULT_PORT)]
        port: u16,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        None => vj::worker::main::<SpotifyMonitor>(&vj::registry::WORKERS),
        Some(Cmd::Login { port }) => match run_login(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vj-spotify login: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_login(port: u16) -> anyhow::Result<()> {
    let config =
        vj::config::load::<SpotifyConfig>("spotify", None, &vj::registry::owners())?.section;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(login::login(&config, port, &mut std::io::stdout()))?;
    Ok(())
}
