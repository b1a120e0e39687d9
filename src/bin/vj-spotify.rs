//! `vj-spotify`: the Spotify monitor worker (bus name `spotify_monitor`);
//! `vj-spotify login [--port N]` stores a refresh token with the PKCE flow.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => vj::worker::main::<vj::playback::spotify::SpotifyMonitor>("vj-spotify"),
        Some("login") => login(&args[1..]),
        Some("-h" | "--help") => {
            println!("vj-spotify          run the worker (bus name spotify_monitor)\nvj-spotify login [--port N]\n                    authorize with Spotify (PKCE) and store the refresh token;\n                    the redirect is http://127.0.0.1:N/callback (default N = {})", vj::playback::spotify::login::DEFAULT_PORT);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("vj-spotify: unknown argument {other:?}; try `vj-spotify --help`");
            ExitCode::from(2)
        }
    }
}

fn login(args: &[String]) -> ExitCode {
    let mut port = vj::playback::spotify::login::DEFAULT_PORT;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next().map(|p| p.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("vj-spotify login: usage: vj-spotify login [--port N]");
                return ExitCode::from(2);
            }
        }
    }
    let config = match vj::config::Config::load("spotify", None) {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("vj-spotify login: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vj-spotify login: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    match rt.block_on(vj::playback::spotify::login::login(
        &config.spotify,
        port,
        &mut out,
    )) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vj-spotify login: {e}");
            ExitCode::FAILURE
        }
    }
}
