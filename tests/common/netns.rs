//! Other machines for a test: network namespaces joined by veth pairs to a bridge (a switch
//! that floods multicast), addresses from 10.77.0.0/24 on those veths only, as TESTING.md
//! says. Nothing a test sends here can leave through the machine's real interfaces. Every
//! namespace is deleted on drop, also when the test fails.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static NETS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().expect("ip runs")
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Hosts on one switch. `hosts[i]` is namespace `name(i)` with address `10.77.0.{i+1}` on
/// its `eth0`.
pub struct Lan {
    tag: String,
    pub hosts: Vec<String>,
    /// The bridge's namespace (none for a host on its own).
    switch: Option<String>,
}

impl Lan {
    pub fn new(hosts: usize) -> Lan {
        let n = NETS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let switch = format!("vjsw{tag}");
        let mut lan = Lan {
            tag: tag.clone(),
            hosts: Vec::new(),
            switch: Some(switch.clone()),
        };
        ip_ok(&["netns", "add", &switch]);
        let sw = |args: &[&str]| {
            let mut a = vec!["-n", switch.as_str()];
            a.extend_from_slice(args);
            ip_ok(&a);
        };
        sw(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        sw(&["link", "set", "br0", "up"]);
        for i in 0..hosts {
            let ns = format!("vjh{tag}x{i}");
            ip_ok(&["netns", "add", &ns]);
            lan.hosts.push(ns.clone());
            let (a, b) = (format!("vja{tag}{i}"), format!("vjb{tag}{i}"));
            ip_ok(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
            ip_ok(&["link", "set", &a, "netns", &ns]);
            ip_ok(&["link", "set", &b, "netns", &switch]);
            sw(&["link", "set", &b, "master", "br0"]);
            sw(&["link", "set", &b, "up"]);
            let h = |args: &[&str]| {
                let mut v = vec!["-n", ns.as_str()];
                v.extend_from_slice(args);
                ip_ok(&v);
            };
            h(&["link", "set", &a, "name", "eth0"]);
            h(&[
                "addr",
                "add",
                &format!("10.77.0.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
            h(&["link", "set", "eth0", "up"]);
            h(&["link", "set", "lo", "up"]);
            // Multicast (OSC groups, mDNS) leaves by eth0: there is no default route.
            h(&["route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        lan
    }

    /// One host with loopback only (no veth, no way out at all), multicast enabled on `lo`
    /// with the 224.0.0.0/4 route through it: peers that find each other by multicast, run in
    /// this one namespace, meet over loopback.
    pub fn loopback_only() -> Lan {
        let n = NETS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let ns = format!("vjh{tag}x0");
        ip_ok(&["netns", "add", &ns]);
        let lan = Lan {
            tag,
            hosts: vec![ns.clone()],
            switch: None,
        };
        ip_ok(&["-n", &ns, "link", "set", "lo", "multicast", "on"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "lo"]);
        lan
    }

    /// The address of host `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// A command run in host `i`'s network namespace (and nothing else of it changed).
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.hosts[i]))
            .arg("--")
            .arg(program);
        c
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(self.switch.as_ref()) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
