//! The playback monitors: what VirtualDJ or Spotify plays, told to the suite as `/karaoke/track`
//! (on every change, "nothing plays" included) and `/karaoke/pos` (4 Hz while something plays).

pub mod clock;
pub mod spotify;
pub mod virtualdj;

pub use clock::{Announcer, PlaybackClock};
