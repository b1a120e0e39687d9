//! OSC out and in: the sender that fans messages out to every configured target and route, and
//! the decoder the debugger and the lyrics fetcher use, and `recording`, the show recording
//! format of `vj-status record` and `replay`. The wire codec itself is `rosc`'s.

mod decode;
pub mod recording;
mod send;

pub use decode::{arg_json, args_from_json, decode, decode_messages, CapturedMessage, DecodeError};
pub use send::{OscOut, SendStats, TargetHealth, TargetState};

use rosc::OscType;

/// The OSC type tag string of a message's arguments (`"issssfi"`), arrays in `[` `]`.
pub fn type_tags(args: &[OscType]) -> String {
    let mut tags = String::with_capacity(args.len());
    push_tags(args, &mut tags);
    tags
}

fn push_tags(args: &[OscType], tags: &mut String) {
    for arg in args {
        match arg {
            OscType::Int(_) => tags.push('i'),
            OscType::Float(_) => tags.push('f'),
            OscType::String(_) => tags.push('s'),
            OscType::Blob(_) => tags.push('b'),
            OscType::Time(_) => tags.push('t'),
            OscType::Long(_) => tags.push('h'),
            OscType::Double(_) => tags.push('d'),
            OscType::Char(_) => tags.push('c'),
            OscType::Color(_) => tags.push('r'),
            OscType::Midi(_) => tags.push('m'),
            OscType::Bool(true) => tags.push('T'),
            OscType::Bool(false) => tags.push('F'),
            OscType::Nil => tags.push('N'),
            OscType::Inf => tags.push('I'),
            OscType::Array(a) => {
                tags.push('[');
                push_tags(&a.content, tags);
                tags.push(']');
            }
        }
    }
}
