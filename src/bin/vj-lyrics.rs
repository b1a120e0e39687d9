//! `vj-lyrics`: the lyrics fetcher worker (bus name `lyrics_fetcher`).

fn main() -> std::process::ExitCode {
    vj::worker::main::<vj::lyrics::LyricsFetcher>(&vj::registry::WORKERS)
}
