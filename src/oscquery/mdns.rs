//! mDNS/DNS-SD: the OSCQuery server as `_oscjson._tcp` and the OSC control input as
//! `_osc._udp`, under the configured instance name — only for a service bound beyond loopback
//! (a loopback-only service is no use to another machine).

use std::net::{IpAddr, SocketAddr};

use mdns_sd::{ServiceDaemon, ServiceInfo};
use tracing::{info, warn};

pub const OSCJSON: &str = "_oscjson._tcp.local.";
pub const OSC_UDP: &str = "_osc._udp.local.";

/// The services being advertised; withdrawn on drop.
pub struct Advertiser {
    daemon: ServiceDaemon,
    pub services: Vec<String>,
}

/// Should a service bound to `addr` be advertised?
pub fn beyond_loopback(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// This machine's names as a client may write them in `Host`: `studio` and `studio.local`.
pub fn machine_names() -> Vec<String> {
    let local = host_name();
    let local = local.trim_end_matches('.');
    let bare = local.trim_end_matches(".local");
    vec![bare.to_string(), local.to_string()]
}

/// This machine's name, for the `.local.` host record.
fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{}.local.",
        if name.is_empty() { "vj-suite" } else { &name }
    )
}

fn service(ty: &str, name: &str, addr: SocketAddr) -> Result<ServiceInfo, mdns_sd::Error> {
    let ip: Vec<IpAddr> = if addr.ip().is_unspecified() {
        Vec::new()
    } else {
        vec![addr.ip()]
    };
    let info = ServiceInfo::new(
        ty,
        name,
        &host_name(),
        &ip[..],
        addr.port(),
        &[("txtvers", "1")][..],
    )?;
    Ok(if ip.is_empty() {
        info.enable_addr_auto()
    } else {
        info
    })
}

/// Advertises what is bound beyond loopback; `None` when nothing is (mDNS stays off).
pub fn advertise(
    name: &str,
    http: SocketAddr,
    control: Option<SocketAddr>,
) -> Result<Option<Advertiser>, mdns_sd::Error> {
    let wanted: Vec<(&str, SocketAddr)> = [(OSCJSON, Some(http)), (OSC_UDP, control)]
        .into_iter()
        .filter_map(|(ty, a)| a.filter(|a| beyond_loopback(*a)).map(|a| (ty, a)))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let daemon = ServiceDaemon::new()?;
    let mut services = Vec::new();
    for (ty, addr) in wanted {
        let info = service(ty, name, addr)?;
        let full = info.get_fullname().to_string();
        daemon.register(info)?;
        info!(service = %full, %addr, "advertised over mDNS");
        services.push(full);
    }
    Ok(Some(Advertiser { daemon, services }))
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        for s in &self.services {
            // Goodbye packets, so browsers forget us at once.
            if let Ok(rx) = self.daemon.unregister(s) {
                let _ = rx.recv_timeout(std::time::Duration::from_millis(500));
            }
        }
        if let Err(e) = self.daemon.shutdown() {
            warn!(error = %e, "mDNS daemon did not shut down");
        }
    }
}
