//! A worker as the OS supervisor and the bus know it: bus name, binary and units, config
//! section and the OSC and HTTP ports its socket units hold. Each worker module declares its
//! own (`audio::worker::AUDIO`, …); `registry` lists them.

use crate::config::ConfigError;

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
    /// `config::check_all`.
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

impl WorkerInfo {
    /// Its section, as config is told about it (config names no worker).
    pub fn owner(&self) -> crate::config::Owner {
        crate::config::Owner {
            section: self.config_section,
            binary: self.binary,
            check: self.check_config,
        }
    }
}
