//! vj-suite: small, independent, socket-activated services that describe live music over OSC.
//!
//! The library holds everything; `src/bin/*` are thin entry points. See docs/ARCHITECTURE.md.

pub mod audio;
pub mod bus;
pub mod config;
pub mod console;
pub mod karaoke;
pub mod lyrics;
pub mod osc;
pub mod oscdebug;
pub mod oscquery;
pub mod playback;
pub mod registry;
pub mod service;
pub mod status;
pub mod worker;
