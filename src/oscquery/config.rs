//! `[oscquery]` and `[control.osc]` of `vj.toml`.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::config::Section;

/// `[oscquery]`: where the namespace is served and what it is called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscQueryConfig {
    /// HTTP and WebSocket, when not socket-activated (the socket unit's `ListenStream=` wins).
    pub listen: String,
    /// Where the suite's own OSC arrives (an `[osc] targets` entry), when not socket-activated.
    pub osc_listen: String,
    /// The instance name: `HOST_INFO` `NAME`, and the mDNS/DNS-SD service name.
    pub name: String,
    /// `Host` names served besides `localhost`, the addresses listened on and, when advertised,
    /// this machine's `.local` name (DNS rebinding: a web page's own name is refused).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s that may read the namespace and open the `LISTEN` WebSocket
    /// (`http://localhost:8080`); none by default. A client without `Origin` is not a browser.
    pub allowed_origins: Vec<String>,
}

impl Section for OscQueryConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, v) in [("listen", &self.listen), ("osc_listen", &self.osc_listen)] {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("oscquery.{key} must be ip:port, not {v:?}"))?;
        }
        for h in &self.allowed_hosts {
            if h.is_empty() || h.contains(['/', ' ', '@']) {
                return Err(format!(
                    "oscquery.allowed_hosts: {h:?} is not a host name (like \"visuals.local\")"
                ));
            }
        }
        for o in &self.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(format!(
                    "oscquery.allowed_origins: {o:?} is not an origin (scheme://host[:port], like \"http://localhost:8080\")"
                ));
            }
        }
        if self.name.trim().is_empty() || self.name.len() > 63 {
            return Err(format!(
                "oscquery.name must be 1..=63 bytes (a DNS-SD instance name), not {:?}",
                self.name
            ));
        }
        Ok(())
    }
}

/// `[control]`: ways into the suite's control plane besides the Unix sockets. Read by
/// vj-oscquery, which serves it, from its own loaded config table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    pub osc: ControlOscConfig,
}

/// `[control.osc]`: `/vj/<bus name>/<command> args…` over UDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlOscConfig {
    /// `ip:port` to receive on; `""` = off.
    pub listen: String,
    /// Senders allowed, as CIDR networks (`192.168.1.0/24`, `127.0.0.1/32`, `::1/128`).
    pub allow: Vec<String>,
    /// Send each command's result back as OSC (`/vj/<bus name>/<command>/reply`).
    pub reply: bool,
    /// The port replies go to on the sender's address; 0 = the port the command came from.
    pub reply_port: u16,
    /// The commands that may be run over OSC: a command name (`tap`) for every worker, or
    /// `<bus name>/<command>` for one. `set_config` keys that name URLs, paths or credentials
    /// are refused even when `set_config` is listed ([`super::policy`]).
    pub commands: Vec<String>,
}

impl ControlOscConfig {
    /// The address to listen on, `None` when off.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        (!self.listen.is_empty())
            .then(|| self.listen.parse().ok())
            .flatten()
    }

    /// The allow list, parsed (validated at load, so nothing is dropped here).
    pub fn networks(&self) -> Vec<Cidr> {
        self.allow.iter().filter_map(|c| c.parse().ok()).collect()
    }
}

impl Section for ControlConfig {
    fn validate(&self) -> Result<(), String> {
        let c = &self.osc;
        if !c.listen.is_empty() && c.listen.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "control.osc.listen must be ip:port or \"\" (off), not {:?}",
                c.listen
            ));
        }
        for cmd in &c.commands {
            let name = cmd.rsplit('/').next().unwrap_or_default();
            if name.is_empty() || cmd.split('/').count() > 2 {
                return Err(format!(
                    "control.osc.commands: {cmd:?} is not a command (\"tap\") or <bus name>/<command> (\"audio_analyzer/tap\")"
                ));
            }
        }
        for a in &c.allow {
            a.parse::<Cidr>()
                .map_err(|e| format!("control.osc.allow: {e}"))?;
        }
        Ok(())
    }
}

/// An IP network, `address/prefix` (ipnet); a bare address is one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        if let Ok(host) = s.parse::<IpAddr>() {
            return Ok(Cidr(host.into()));
        }
        match s.parse::<ipnet::IpNet>() {
            Ok(net) => Ok(Cidr(net)),
            Err(_) => match s.split_once('/') {
                Some((ip, _)) if ip.parse::<IpAddr>().is_ok() => {
                    let max = if ip.contains(':') { 128 } else { 32 };
                    Err(format!("{s:?}: the prefix must be 0..={max}"))
                }
                _ => Err(format!("{s:?} is not an IP network (like 192.168.1.0/24)")),
            },
        }
    }
}

impl Cidr {
    /// Does the network hold `ip`? An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, what a
    /// dual-stack socket reports) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_hold_what_their_prefix_says() {
        let lan: Cidr = "192.168.1.0/24".parse().unwrap();
        assert!(lan.contains(ip("192.168.1.77")));
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(lan.contains(ip("::ffff:192.168.1.5")), "v4-mapped");
        let host: Cidr = "10.0.0.1".parse().unwrap();
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        let lo6: Cidr = "::1/128".parse().unwrap();
        assert!(lo6.contains(ip("::1")));
        assert!("10.0.0.0/33"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("0..=32"));
        assert!("lan"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("not an IP network"));
    }

    #[test]
    fn the_defaults_are_valid_and_control_is_off() {
        let o: OscQueryConfig = crate::config::builtin("oscquery");
        assert_eq!(o.listen, "127.0.0.1:9010");
        let c: ControlConfig = crate::config::builtin("control");
        assert_eq!(c.osc.listen_addr(), None);
        let nets = c.osc.networks();
        assert!(!nets.is_empty());
        assert!(nets
            .iter()
            .all(|n| n.contains(ip("127.0.0.1")) || n.contains(ip("::1"))));
        assert!(!nets.iter().any(|n| n.contains(ip("192.168.1.2"))));
        assert!(c.osc.commands.iter().any(|c| c == "tap"));
        assert!(!c
            .osc
            .commands
            .iter()
            .any(|c| c == "set_config" || c == "restart"));
        assert!(o.allowed_origins.is_empty(), "no browser origin by default");
    }
}
