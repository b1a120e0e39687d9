//! What is playing, as the suite says it over OSC: `/karaoke/track` and `/karaoke/pos`.
//!
//! The playback monitors produce these messages and the lyrics fetcher consumes them, so the
//! encoding and decoding live here once, with the exact types of SPEC section 4.

use rosc::{OscMessage, OscType};
use serde::Serialize;

pub const TRACK_ADDR: &str = "/karaoke/track";
pub const POS_ADDR: &str = "/karaoke/pos";

/// The track a playback source reports. `None` of these means nothing plays.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct NowPlaying {
    /// `spotify`, `virtualdj`, …
    pub source: String,
    pub artist: String,
    pub title: String,
    pub album: String,
    /// Seconds; 0 when unknown.
    pub duration_s: f32,
    pub has_lyrics: bool,
}

impl NowPlaying {
    /// Two reports are the same song when source, artist, title and album agree; duration and
    /// `has_lyrics` may be refined later without it being a new track.
    pub fn same_song(&self, other: &NowPlaying) -> bool {
        self.source == other.source
            && self.artist == other.artist
            && self.title == other.title
            && self.album == other.album
    }
}

/// Where playback is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Position {
    pub seconds: f32,
    pub playing: bool,
}

/// `/karaoke/track` `issssfi`; `None` is the "nothing plays" message `0,"","","","",0,0`.
pub fn track_message(track: Option<&NowPlaying>) -> OscMessage {
    let empty = NowPlaying::default();
    let (active, t) = match track {
        Some(t) => (1, t),
        None => (0, &empty),
    };
    OscMessage {
        addr: TRACK_ADDR.to_string(),
        args: vec![
            OscType::Int(active),
            OscType::String(t.source.clone()),
            OscType::String(t.artist.clone()),
            OscType::String(t.title.clone()),
            OscType::String(t.album.clone()),
            OscType::Float(t.duration_s),
            OscType::Int(i32::from(t.has_lyrics)),
        ],
    }
}

/// `/karaoke/pos` `fi`.
pub fn position_message(pos: Position) -> OscMessage {
    OscMessage {
        addr: POS_ADDR.to_string(),
        args: vec![
            OscType::Float(pos.seconds),
            OscType::Int(i32::from(pos.playing)),
        ],
    }
}

/// A `/karaoke/*` message that does not have the shape SPEC section 4 gives it.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{addr}: expected types {expected}, got {got}")]
pub struct ShapeError {
    pub addr: String,
    pub expected: &'static str,
    pub got: String,
}

/// What a `/karaoke/track` or `/karaoke/pos` message says.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaybackEvent {
    /// `Some` = a track is active; `None` = nothing plays.
    Track(Option<NowPlaying>),
    Position(Position),
}

/// Reads a `/karaoke/track` or `/karaoke/pos` message; `Ok(None)` for any other address.
/// Accepts `d`/`h` where `f`/`i` are specified, since some senders widen numbers.
pub fn parse_playback(msg: &OscMessage) -> Result<Option<PlaybackEvent>, ShapeError> {
    let shape_error = |expected| ShapeError {
        addr: msg.addr.clone(),
        expected,
        got: crate::osc::type_tags(&msg.args),
    };
    match msg.addr.as_str() {
        TRACK_ADDR => {
            let a = &msg.args;
            let bad = || shape_error("issssfi");
            if a.len() != 7 {
                return Err(bad());
            }
            let active = int(&a[0]).ok_or_else(bad)?;
            let text = |i: usize| match &a[i] {
                OscType::String(s) => Ok(s.clone()),
                _ => Err(bad()),
            };
            let track = NowPlaying {
                source: text(1)?,
                artist: text(2)?,
                title: text(3)?,
                album: text(4)?,
                duration_s: float(&a[5]).ok_or_else(bad)?,
                has_lyrics: int(&a[6]).ok_or_else(bad)? != 0,
            };
            Ok(Some(PlaybackEvent::Track((active != 0).then_some(track))))
        }
        POS_ADDR => {
            let a = &msg.args;
            let bad = || shape_error("fi");
            if a.len() != 2 {
                return Err(bad());
            }
            Ok(Some(PlaybackEvent::Position(Position {
                seconds: float(&a[0]).ok_or_else(bad)?,
                playing: int(&a[1]).ok_or_else(bad)? != 0,
            })))
        }
        _ => Ok(None),
    }
}

fn int(v: &OscType) -> Option<i64> {
    match v {
        OscType::Int(i) => Some(i64::from(*i)),
        OscType::Long(i) => Some(*i),
        OscType::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn float(v: &OscType) -> Option<f32> {
    match v {
        OscType::Float(f) if f.is_finite() => Some(*f),
        OscType::Double(d) if d.is_finite() => Some(*d as f32),
        OscType::Int(i) => Some(*i as f32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn song() -> NowPlaying {
        NowPlaying {
            source: "spotify".into(),
            artist: "Daft Punk".into(),
            title: "One More Time".into(),
            album: "Discovery".into(),
            duration_s: 320.5,
            has_lyrics: true,
        }
    }

    #[test]
    fn track_message_has_the_specified_types_and_round_trips() {
        let msg = track_message(Some(&song()));
        assert_eq!(crate::osc::type_tags(&msg.args), "issssfi");
        assert_eq!(
            parse_playback(&msg).unwrap(),
            Some(PlaybackEvent::Track(Some(song())))
        );
    }

    #[test]
    fn nothing_playing_is_the_empty_track() {
        let msg = track_message(None);
        assert_eq!(msg.args[0], OscType::Int(0));
        assert_eq!(msg.args[2], OscType::String(String::new()));
        assert_eq!(
            parse_playback(&msg).unwrap(),
            Some(PlaybackEvent::Track(None))
        );
    }

    #[test]
    fn position_round_trips() {
        let pos = Position {
            seconds: 12.25,
            playing: true,
        };
        let msg = position_message(pos);
        assert_eq!(crate::osc::type_tags(&msg.args), "fi");
        assert_eq!(
            parse_playback(&msg).unwrap(),
            Some(PlaybackEvent::Position(pos))
        );
    }

    #[test]
    fn a_misshapen_message_names_the_address_and_types() {
        let msg = OscMessage {
            addr: POS_ADDR.into(),
            args: vec![OscType::String("x".into())],
        };
        let err = parse_playback(&msg).unwrap_err();
        assert_eq!(err.to_string(), "/karaoke/pos: expected types fi, got s");
    }

    #[test]
    fn other_addresses_are_not_playback() {
        let msg = OscMessage {
            addr: "/audio/beat".into(),
            args: vec![],
        };
        assert_eq!(parse_playback(&msg).unwrap(), None);
    }
}
