//! Who may use the OSCQuery server: the `Host` a request names (DNS rebinding: a web page whose
//! own name is re-pointed at this machine sends its name, not ours) and the browser `Origin`
//! behind a request or a WebSocket (any page the VJ opens could otherwise read and stream).
//! Pure: the transport asks, and answers a refusal with its status and one-line reason.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use super::config::OscQueryConfig;

/// A refused request: 421 (not our name) or 403 (not an allowed origin), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
}

/// The names and origins the server answers.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Lower-case host names (`localhost`, `allowed_hosts`, this machine's names when bound
    /// beyond loopback).
    names: HashSet<String>,
    /// The address listened on; unspecified (`0.0.0.0`) means every address of the machine.
    listen: IpAddr,
    /// Lower-case `scheme://host[:port]`.
    origins: HashSet<String>,
}

/// `Host` without its port and IPv6 brackets, lower-case, without a trailing dot (read as an
/// URI authority by the http crate; what it cannot read is kept whole, and matches nothing).
fn host_part(host: &str) -> String {
    let h = host.trim();
    let name = match h.parse::<hyper::http::uri::Authority>() {
        // A Host carries no user info (`x@localhost` is no name of ours).
        Ok(a) if !a.as_str().contains('@') => a
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => h.to_string(),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Gate {
    /// `machine`: this machine's names (`studio`, `studio.local`), served when bound beyond
    /// loopback (the mDNS advertisement gives clients `studio.local`).
    pub fn new(config: &OscQueryConfig, listen: SocketAddr, machine: &[String]) -> Gate {
        let mut names: HashSet<String> =
            config.allowed_hosts.iter().map(|h| host_part(h)).collect();
        names.insert("localhost".into());
        if !listen.ip().is_loopback() {
            names.extend(machine.iter().map(|m| host_part(m)));
        }
        Gate {
            names,
            listen: listen.ip(),
            origins: config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    fn host_ok(&self, host: &str) -> bool {
        let name = host_part(host);
        match name.parse::<IpAddr>() {
            // An address is no name a page can re-point: ours (loopback, the one listened on,
            // any of the machine's when bound to all) is fine.
            Ok(ip) => ip.is_loopback() || ip == self.listen || self.listen.is_unspecified(),
            Err(_) => self.names.contains(&name),
        }
    }

    /// Checks a request's `Host` and `Origin` headers; `Ok(Some(origin))` when a browser
    /// origin is allowed (echoed in `Access-Control-Allow-Origin`). No `Host` (HTTP/1.0) and
    /// no `Origin` (a native client) are fine: neither comes from a browser.
    pub fn check(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Option<String>, Refused> {
        if let Some(h) = host {
            if !self.host_ok(h) {
                return Err(Refused {
                    status: 421,
                    reason: format!(
                        "Host {:?} is not this server's name; add it to [oscquery] allowed_hosts",
                        truncate(h)
                    ),
                });
            }
        }
        let Some(o) = origin else { return Ok(None) };
        let key = o.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&key) {
            Ok(Some(o.trim().to_string()))
        } else {
            Err(Refused {
                status: 403,
                reason: format!(
                    "Origin {:?} is not allowed; add it to [oscquery] allowed_origins",
                    truncate(o)
                ),
            })
        }
    }
}

/// A header as quoted in a reason: at most 100 characters.
fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(listen: &str, hosts: &[&str], origins: &[&str]) -> Gate {
        let mut c: OscQueryConfig = crate::config::builtin("oscquery");
        c.allowed_hosts = hosts.iter().map(|s| s.to_string()).collect();
        c.allowed_origins = origins.iter().map(|s| s.to_string()).collect();
        Gate::new(
            &c,
            listen.parse().unwrap(),
            &["studio".into(), "studio.local".into()],
        )
    }

    #[test]
    fn only_our_own_names_pass_by_default() {
        let g = gate("127.0.0.1:9010", &[], &[]);
        for ok in [
            "127.0.0.1:9010",
            "localhost:9010",
            "LOCALHOST",
            "[::1]:9010",
            "localhost.",
        ] {
            assert_eq!(g.check(Some(ok), None), Ok(None), "{ok}");
        }
        let e = g.check(Some("evil.example:9010"), None).unwrap_err();
        assert_eq!(e.status, 421);
        assert!(e.reason.contains("\"evil.example:9010\"") && e.reason.contains("allowed_hosts"));
        for bad in [
            "studio.local:9010",
            "192.168.1.4:9010",
            "localhost.evil.example",
            "evil@localhost:9010",
            "localhost:9010:9010",
        ] {
            assert!(g.check(Some(bad), None).is_err(), "{bad}");
        }
        assert_eq!(g.check(None, None), Ok(None), "HTTP/1.0 without Host");
    }

    #[test]
    fn beyond_loopback_the_machines_names_and_allowed_hosts_pass() {
        let g = gate("0.0.0.0:9010", &["Visuals.lan"], &[]);
        for ok in [
            "studio.local:9010",
            "studio",
            "192.168.1.4:9010",
            "visuals.lan:9010",
        ] {
            assert_eq!(g.check(Some(ok), None), Ok(None), "{ok}");
        }
        assert!(g.check(Some("evil.example"), None).is_err());
        let one = gate("10.0.0.2:9010", &[], &[]);
        assert!(one.check(Some("10.0.0.2:9010"), None).is_ok());
        assert!(one.check(Some("10.0.0.3:9010"), None).is_err());
    }

    #[test]
    fn browser_origins_only_when_listed() {
        let g = gate("127.0.0.1:9010", &[], &["http://localhost:8080"]);
        assert_eq!(
            g.check(Some("localhost:9010"), Some("http://localhost:8080")),
            Ok(Some("http://localhost:8080".into()))
        );
        for bad in [
            "https://evil.example",
            "null",
            "http://localhost:8081",
            "http://127.0.0.1:9010",
        ] {
            let e = g.check(Some("localhost:9010"), Some(bad)).unwrap_err();
            assert_eq!(e.status, 403, "{bad}");
            assert!(e.reason.contains("allowed_origins"));
        }
        let none = gate("127.0.0.1:9010", &[], &[]);
        assert!(
            none.check(None, Some("http://localhost:8080")).is_err(),
            "none by default"
        );
    }
}
