//! What each fuzz target does with its input, shared by the fuzz targets (`fuzz_targets/`) and
//! the regression test that replays `fuzz/regressions/<target>/*` (`tests/fuzz_regressions.rs`).
//! Each must return for any input: an error is fine, a panic is a bug.

#![allow(dead_code)]

/// Control frames as a worker reads them: split a byte stream into frames, parse each request
/// and build the reply it would get.
pub fn control_frame(data: &[u8]) {
    let mut buf = bytes::BytesMut::from(data);
    loop {
        match vj::bus::frame::parse(&mut buf) {
            Ok(Some(body)) => match vj::bus::message::Command::parse(&body) {
                Ok(cmd) => {
                    let _ = cmd.opt_u64("count");
                    let _ = cmd.opt_str("prefix");
                    let reply = vj::bus::message::Outcome::unknown(&cmd.cmd);
                    let _ = vj::bus::message::ack_json(&reply, &cmd.msg_id);
                }
                Err(bad) => {
                    let _ = vj::bus::message::error_json(&bad.error, &bad.msg_id);
                }
            },
            Ok(None) | Err(vj::bus::frame::FrameError::TooLarge(_)) => return,
            Err(_) => {}
        }
    }
}

/// One UDP datagram as the OSC debugger and the lyrics fetcher receive it.
pub fn osc_decode(data: &[u8]) {
    if let Ok(messages) = vj::osc::decode(data) {
        for m in &messages {
            let _ = serde_json::to_string(m);
        }
    }
    if let Ok((_, rosc::OscPacket::Message(msg))) = rosc::decoder::decode_udp(data) {
        let _ = vj::karaoke::parse_playback(&msg);
    }
    let mut capture = vj::oscdebug::OscCapture::new(4);
    capture.record(data, std::time::Instant::now());
    let _ = capture.stats(std::time::Instant::now());
}

/// A user's vj.toml.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(user) = text.parse::<toml::Table>() else {
        return;
    };
    let mut table = vj::config::defaults();
    if vj::config::merge(&mut table, user, "").is_ok() {
        let _ = vj::config::Config::from_table(table, "fuzz");
    }
}
