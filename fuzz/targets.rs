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
                    use vj::bus::command::decode;
                    let (name, args) = (&cmd.cmd, &cmd.args);
                    let _ = decode::<vj::oscdebug::DebuggerCommand>(name, args);
                    let _ = decode::<vj::audio::worker::AudioCommand>(name, args);
                    let _ = decode::<vj::lyrics::LyricsCommand>(name, args);
                    let reply = match decode::<vj::worker::NoCommand>(name, args) {
                        Ok(never) => match never {},
                        Err(rejected) => rejected.outcome(name),
                    };
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
        let _ = vj::config::check_all(&table, "fuzz", &vj::registry::owners());
    }
}

/// LRC text as LRCLIB returns it (any bytes, read as UTF-8 with replacement).
pub fn lrc(data: &[u8]) {
    let lyrics = vj::lyrics::lrc::parse(&String::from_utf8_lossy(data));
    let _ = format!("{lyrics:?}");
}

/// A VirtualDJ now-playing / tracklist / m3u file, or the tail of one.
pub fn virtualdj(data: &[u8]) {
    let _ = vj::playback::virtualdj::parse_played(data);
    let tail = vj::playback::virtualdj::parse::drop_partial_first_line(data, false);
    let _ = vj::playback::virtualdj::parse_played(tail);
}

/// HTTP bodies from the services on the internet: Spotify's player state, LRCLIB's records.
pub fn http_body(data: &[u8]) {
    let _ = vj::playback::spotify::web_api::parse_player(data);
    if let Ok(record) = serde_json::from_slice::<vj::lyrics::lrclib::LrclibRecord>(data) {
        let _ = vj::lyrics::lrclib::choose(vec![record], 180.0);
    }
    if let Ok(records) = serde_json::from_slice::<Vec<vj::lyrics::lrclib::LrclibRecord>>(data) {
        let _ = vj::lyrics::lrclib::choose(records, 180.0);
    }
}

/// The arguments of a `set_config` as a client sends them (a JSON object), laid onto each
/// worker's section of the defaults and checked the way the runtime does.
pub fn set_config(data: &[u8]) {
    let Ok(serde_json::Value::Object(args)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    let table = vj::config::defaults();
    for w in vj::registry::WORKERS {
        let section = w.config_section;
        let _ = vj::config::set_config(&table, section, args.clone(), |t| {
            (w.check_config)(t, section, "fuzz")
        });
    }
}

/// One datagram on the control-over-OSC input: each message read as `/vj/<bus>/<cmd> args…`,
/// its arguments decoded, checked against the default and a wide `[control.osc] commands`,
/// then decoded as the worker's command enum would be.
pub fn control_osc(data: &[u8]) {
    let Ok(messages) = vj::osc::decode_messages(data) else {
        return;
    };
    let wide: Vec<String> = ["set_config", "restart", "tap", "nudge", "set_tempo"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let default = vj::config::builtin::<vj::oscquery::ControlConfig>("control")
        .osc
        .commands;
    for msg in &messages {
        let Ok(vj::oscquery::control::Parsed::Call { bus, cmd, args }) =
            vj::oscquery::control::parse(msg, &vj::registry::WORKERS)
        else {
            continue;
        };
        let _ = vj::oscquery::policy::check(&default, bus, &cmd, &args);
        if vj::oscquery::policy::check(&wide, bus, &cmd, &args).is_ok() {
            use vj::bus::command::decode;
            let _ = decode::<vj::audio::worker::AudioCommand>(&cmd, &args);
            let _ = decode::<vj::lyrics::LyricsCommand>(&cmd, &args);
            let _ = decode::<vj::oscdebug::DebuggerCommand>(&cmd, &args);
        }
    }
}

/// What an OSCQuery client controls in a request: the Host and Origin headers and the target,
/// split at the first two newlines, through the gate and, when let in, the namespace's answer.
pub fn oscquery_request(data: &[u8]) {
    // The gate and the namespace are built once, as the server builds them at its start; each
    // input is then only what a request costs (parsing vj.toml per input held this at 400/s).
    static SERVER: std::sync::OnceLock<(
        vj::oscquery::gate::Gate,
        vj::oscquery::namespace::Namespace,
    )> = std::sync::OnceLock::new();
    let (gate, ns) = SERVER.get_or_init(|| {
        let mut config = vj::config::builtin::<vj::oscquery::OscQueryConfig>("oscquery");
        config.allowed_hosts = vec!["visuals.lan".into()];
        config.allowed_origins = vec!["http://localhost:8080".into()];
        let gate = vj::oscquery::gate::Gate::new(
            &config,
            "0.0.0.0:9010".parse().unwrap(),
            &["studio".into(), "studio.local".into()],
        );
        (gate, vj::oscquery::namespace::Namespace::default())
    });
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (host, origin, target) = (parts.next(), parts.next(), parts.next().unwrap_or("/"));
    if gate.check(host, origin.filter(|o| !o.is_empty())).is_err() {
        return;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let q = vj::oscquery::http::Query {
        method: "GET",
        path,
        query,
    };
    let _ = vj::oscquery::http::answer(&q, ns, &serde_json::json!({}));
}

/// A show recording as `vj-status replay` reads it (zstd-compressed or plain SLIP-framed OSC
/// bundles): every entry up to the first damage, the header, the notes.
pub fn recording(data: &[u8]) {
    let Ok(reader) = vj::osc::recording::Reader::new(data) else {
        return;
    };
    for entry in reader {
        match entry {
            Ok(e) => {
                let _ = vj::osc::recording::Header::from_entry(&e);
                let _ = e.is_note();
            }
            Err(damage) => {
                let _ = damage.to_string();
            }
        }
    }
}
