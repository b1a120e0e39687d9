//! vj-spotify: what Spotify plays, from the Web API (`web_api`), MPRIS on Linux (`mpris`) or
//! AppleScript on macOS (`applescript`); `worker` announces it, `login` stores the token.

#[cfg(target_os = "macos")]
pub mod applescript;
mod config;
pub mod login;
#[cfg(target_os = "linux")]
pub mod mpris;
pub mod web_api;
pub mod worker;

use crate::karaoke::NowPlaying;
use crate::worker::Health;

pub use config::{SpotifyConfig, SpotifySource};
pub use worker::SpotifyMonitor;

/// What a source tells the worker's loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A full snapshot of what plays (`track: None` = nothing, an episode or an ad).
    Playing {
        track: Option<NowPlaying>,
        /// Seconds into the song when the source was asked; `None` = unknown.
        progress_s: Option<f64>,
        playing: bool,
        kind: String,
    },
    /// The source's health, as a one-line status.
    Health(Health, String),
}

/// Which source `spotify.source` means on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    WebApi,
    Mpris,
    AppleScript,
}

impl SourceKind {
    /// `auto`: the Web API when it is set up (client id and refresh token), else the desktop
    /// player (MPRIS on Linux, AppleScript on macOS), else the Web API (which says what is missing).
    pub fn choose(source: SpotifySource, web_api_ready: bool) -> SourceKind {
        match source {
            SpotifySource::WebApi => SourceKind::WebApi,
            SpotifySource::Mpris => SourceKind::Mpris,
            SpotifySource::AppleScript => SourceKind::AppleScript,
            SpotifySource::Auto if web_api_ready => SourceKind::WebApi,
            SpotifySource::Auto if cfg!(target_os = "linux") => SourceKind::Mpris,
            SpotifySource::Auto if cfg!(target_os = "macos") => SourceKind::AppleScript,
            SpotifySource::Auto => SourceKind::WebApi,
        }
    }
}
