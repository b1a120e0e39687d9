//! The one table of the suite's workers: bus name, binary, units, config section and the OSC
//! port each receives on. The runtime, `vj-status` and the tests read it; `tests/registry.rs`
//! checks `units/`, `launchd/` and `etc/vj.toml` against it, so a name or port changed in one
//! place only fails `make test`.

use crate::config::{self, ConfigError};

/// One worker of the suite.
#[derive(Debug)]
pub struct WorkerInfo {
    /// Its name on the bus: socket file, state file, heartbeats (`osc_debugger`).
    pub bus_name: &'static str,
    /// Binary and unit name: `vj-oscdebug` runs as `vj-oscdebug.service`, its control socket is
    /// `vj-oscdebug.socket`, its launchd agent `net.vjsuite.oscdebug`.
    pub binary: &'static str,
    /// The `vj.toml` section it reads and `set_config` edits.
    pub config_section: &'static str,
    /// The OSC it receives on its own socket unit, `<binary>-osc.socket` (fd name `osc`).
    pub osc_in: Option<OscIn>,
    /// The TCP port it serves HTTP on from its own socket unit, `<binary>-http.socket` (fd
    /// name `http`, `ListenStream=127.0.0.1:<port>`); its section's `listen` key names it, and
    /// its OSC input's key is then `osc_listen`.
    pub http_port: Option<u16>,
    /// Started with `vj.target` rather than on first contact, because it emits on its own.
    pub starts_with_target: bool,
    /// Checks its section of a merged config table: `(table, section, origin)`, see
    /// [`config::check_all`].
    pub check_config: fn(&toml::Table, &str, &str) -> Result<(), ConfigError>,
}

/// A worker's OSC input: a UDP port on 127.0.0.1 that `[osc]` sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OscIn {
    pub port: u16,
    /// The `[[osc.routes]]` prefix that feeds it; `None` = it is an `[osc] targets` entry and
    /// receives everything.
    pub route: Option<&'static str>,
}

impl WorkerInfo {
    pub fn service(&self) -> String {
        format!("{}.service", self.binary)
    }

    /// The control socket's unit.
    pub fn control_socket(&self) -> String {
        format!("{}.socket", self.binary)
    }

    /// The OSC input's socket unit, if it has one.
    pub fn osc_socket(&self) -> Option<String> {
        self.osc_in.map(|_| format!("{}-osc.socket", self.binary))
    }

    /// The HTTP listener's socket unit, if it has one.
    pub fn http_socket(&self) -> Option<String> {
        self.http_port
            .map(|_| format!("{}-http.socket", self.binary))
    }

    /// The key of its section that names its OSC input when not socket-activated.
    pub fn osc_listen_key(&self) -> &'static str {
        if self.http_port.is_some() {
            "osc_listen"
        } else {
            "listen"
        }
    }

    /// Every socket unit it has: control, then OSC and HTTP if it has them.
    pub fn sockets(&self) -> Vec<String> {
        let mut s = vec![self.control_socket()];
        s.extend(self.osc_socket());
        s.extend(self.http_socket());
        s
    }

    /// Its name without the `vj-` prefix (`oscdebug`).
    pub fn short_name(&self) -> &'static str {
        self.binary.strip_prefix("vj-").unwrap_or(self.binary)
    }

    pub fn launchd_label(&self) -> String {
        format!("net.vjsuite.{}", self.short_name())
    }

    /// Matches the bus name (`osc_debugger`), the unit (`vj-oscdebug`, `vj-oscdebug.service`)
    /// or the short name (`oscdebug`).
    pub fn is_called(&self, name: &str) -> bool {
        let name = name.trim_end_matches(".service");
        name == self.bus_name || name == self.binary || name == self.short_name()
    }
}

/// The `check_config` of a worker whose section is `S`.
pub fn check<S: config::Section>(
    table: &toml::Table,
    name: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    config::section::<S>(table, name, origin).map(drop)
}

pub const AUDIO: WorkerInfo = WorkerInfo {
    bus_name: "audio_analyzer",
    binary: "vj-audio",
    config_section: "audio",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: check::<crate::audio::AudioConfig>,
};

pub const SPOTIFY: WorkerInfo = WorkerInfo {
    bus_name: "spotify_monitor",
    binary: "vj-spotify",
    config_section: "spotify",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: check::<crate::playback::spotify::SpotifyConfig>,
};

pub const VIRTUALDJ: WorkerInfo = WorkerInfo {
    bus_name: "virtualdj_monitor",
    binary: "vj-virtualdj",
    config_section: "virtualdj",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: check::<crate::playback::virtualdj::VirtualDjConfig>,
};

pub const LYRICS: WorkerInfo = WorkerInfo {
    bus_name: "lyrics_fetcher",
    binary: "vj-lyrics",
    config_section: "lyrics",
    osc_in: Some(OscIn {
        port: 9002,
        route: Some("/karaoke/"),
    }),
    http_port: None,
    starts_with_target: false,
    check_config: check::<crate::lyrics::LyricsConfig>,
};

pub const OSC_DEBUGGER: WorkerInfo = WorkerInfo {
    bus_name: "osc_debugger",
    binary: "vj-oscdebug",
    config_section: "osc_debugger",
    osc_in: Some(OscIn {
        port: 9001,
        route: None,
    }),
    http_port: None,
    starts_with_target: false,
    check_config: check::<crate::oscdebug::OscDebuggerConfig>,
};

/// The OSCQuery server: it receives everything the suite sends (an `[osc] targets` entry),
/// serves the namespace over HTTP, and runs the control-over-OSC input. Started with the
/// target: mDNS must answer before anyone has connected.
pub const OSCQUERY: WorkerInfo = WorkerInfo {
    bus_name: "oscquery_server",
    binary: "vj-oscquery",
    config_section: "oscquery",
    osc_in: Some(OscIn {
        port: 9003,
        route: None,
    }),
    http_port: Some(9010),
    starts_with_target: true,
    check_config: check::<crate::oscquery::OscQueryConfig>,
};

/// Every worker of the suite, in the order `vj-status` shows them.
pub const WORKERS: [&WorkerInfo; 6] = [
    &AUDIO,
    &SPOTIFY,
    &VIRTUALDJ,
    &LYRICS,
    &OSC_DEBUGGER,
    &OSCQUERY,
];

/// The worker called `name` (any of the names [`WorkerInfo::is_called`] takes).
pub fn find(name: &str) -> Option<&'static WorkerInfo> {
    WORKERS.into_iter().find(|w| w.is_called(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_found_by_any_of_their_names() {
        for n in [
            "osc_debugger",
            "vj-oscdebug",
            "vj-oscdebug.service",
            "oscdebug",
        ] {
            assert_eq!(find(n).map(|w| w.bus_name), Some("osc_debugger"), "{n}");
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn names_are_unique_and_every_section_is_in_the_defaults() {
        let defaults = config::defaults();
        for (i, a) in WORKERS.iter().enumerate() {
            assert!(
                defaults.contains_key(a.config_section),
                "{}",
                a.config_section
            );
            (a.check_config)(&defaults, a.config_section, "built-in defaults").unwrap();
            for b in &WORKERS[i + 1..] {
                assert_ne!(a.bus_name, b.bus_name);
                assert_ne!(a.binary, b.binary);
                assert_ne!(a.config_section, b.config_section);
                if let (Some(x), Some(y)) = (a.osc_in, b.osc_in) {
                    assert_ne!(x.port, y.port);
                }
            }
        }
    }
}
