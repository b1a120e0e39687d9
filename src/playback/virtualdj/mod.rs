//! vj-virtualdj: follows VirtualDJ's now-playing / tracklist / history file with notify.
//! `parse` reads the formats (pure), `locate` finds the file, `worker` watches and announces.

mod config;
pub mod locate;
pub mod parse;
pub mod worker;

pub use config::VirtualDjConfig;
pub use parse::{parse_played, PlayedEntry, PlayedFile};
pub use worker::VirtualDjMonitor;
