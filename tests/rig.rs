//! A rig of several machines, built as network namespaces on one switch (tests/common/netns.rs):
//! host 0 runs the suite under a real systemd user manager — the sandboxed units as installed,
//! vj-audio on its demo loop and vj-oscquery — and the other hosts are the visuals machines
//! and a controller, with peers nobody here wrote (Python's socket module, requests,
//! websockets and zeroconf):
//!
//! - two receivers get the same multicast stream (`[osc] targets` with a group, ttl, interface);
//! - an OSCQuery client reads the namespace with exact type strings and streams `/audio/bpm`
//!   over `LISTEN` (and `IGNORE` stops it);
//! - an mDNS browser finds `_oscjson._tcp` and `_osc._udp` under the configured name;
//! - `/vj/audio_analyzer/health` (one of `[control.osc] commands` by default) is accepted from
//!   the allowed host (the reply comes back as OSC) and refused from another, which is counted
//!   and logged once.
//!
//! Needs root (ip netns): without it each test is ignored, and `cargo test` lists it as such with
//! the reason (build.rs sets `vj_root`). What can run on loopback runs for everyone elsewhere:
//! the OSCQuery client in tests/hostile.rs, the allowed and refused controllers in
//! tests/control_osc.rs; only multicast and mDNS between hosts need the namespaces.

mod common;
#[path = "oscquery_common/client.rs"]
mod oscquery_client;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::netns::Lan;
use common::{request, wait_until, UserManager};
use serde_json::{json, Value};

const PYTHON: &str = "/usr/bin/python3";
const GROUP: &str = "239.77.0.9";
const GROUP_PORT: u16 = 9000;
const NAME: &str = "vj rig test";

/// The suite on host 0 of `lan`, under its own user manager in that namespace.
fn suite(lan: &Lan) -> UserManager {
    let m = UserManager::start_bare(Some(&lan.hosts[0]));
    m.install();
    let a = lan.addr(0);
    m.write_config(&format!(
        r#"[osc]
targets = [{{ addr = "{GROUP}:{GROUP_PORT}", ttl = 1, interface = "{a}" }}, "127.0.0.1:9003"]
routes = []
[audio]
source = "demo"
[oscquery]
name = "{NAME}"
[control.osc]
listen = "{a}:9020"
allow = ["{b}/32"]
reply = true
"#,
        b = lan.addr(1)
    ));
    m.drop_in(
        "vj-oscquery-http.socket",
        &format!("[Socket]\nListenStream=\nListenStream={a}:9010\n"),
    );
    m.ok(&["start", "vj-audio.service", "vj-oscquery.service"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            m.show("vj-oscquery.service", "StatusText")
                .starts_with("OSCQuery on")
                && m.show("vj-audio.service", "StatusText").contains("demo")
        }),
        "oscquery: {:?}, audio: {:?}\n{}",
        m.show("vj-oscquery.service", "StatusText"),
        m.show("vj-audio.service", "StatusText"),
        m.journal("vj-oscquery")
    );
    m
}

/// Runs a Python script on host `i`; its last stdout line is JSON.
fn python(lan: &Lan, i: usize, script: &str, args: &[&str]) -> Value {
    let out = lan
        .command(i, PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python on host {i}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn spawn_python(lan: &Lan, i: usize, script: &str, args: &[&str]) -> Child {
    lan.command(i, PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

fn finish(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap()
}

const RECEIVER: &str = r#"
import json, socket, sys, time
group, port, iface, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(iface))
s.settimeout(0.2)
got, end = [], time.time() + secs
while time.time() < end:
    try:
        got.append(s.recv(65536).hex())
    except socket.timeout:
        pass
print(json.dumps(got))
"#;

#[test]
#[cfg_attr(not(vj_root), ignore = "needs root, to build network namespaces")]
fn two_receivers_get_the_same_multicast_stream() {
    let lan = Lan::new(3);
    let m = suite(&lan);
    let port = GROUP_PORT.to_string();
    let receivers: Vec<Child> = [1, 2]
        .iter()
        .map(|&i| spawn_python(&lan, i, RECEIVER, &[GROUP, &port, &lan.addr(i), "3"]))
        .collect();
    let got: Vec<Vec<String>> = receivers
        .into_iter()
        .map(|c| serde_json::from_value(finish(c)).unwrap())
        .collect();
    let mut seen = Vec::new();
    for packets in &got {
        let mut by_addr: HashMap<String, (usize, String)> = HashMap::new();
        for hex in packets {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            for msg in vj::osc::decode(&bytes).unwrap() {
                let e = by_addr.entry(msg.address).or_insert((0, msg.types));
                e.0 += 1;
            }
        }
        seen.push(by_addr);
    }
    for (i, by_addr) in seen.iter().enumerate() {
        let levels = by_addr.get("/audio/levels").cloned().unwrap_or_default();
        assert_eq!(levels.1, "ffffffff", "receiver {i}: {by_addr:?}");
        assert!(
            levels.0 >= 100,
            "receiver {i} got {} level frames in 3 s",
            levels.0
        );
        assert_eq!(by_addr["/audio/bpm"].1, "ff");
    }
    // The same stream: the very same datagrams (levels change every frame) reached both.
    let a: HashSet<&String> = got[0].iter().collect();
    let b: HashSet<&String> = got[1].iter().collect();
    let both = a.intersection(&b).count();
    assert!(
        both * 10 >= a.len().min(b.len()) * 9,
        "{both} datagrams in common of {} and {}",
        a.len(),
        b.len()
    );
    let state = request(
        &m.bus_socket("audio_analyzer"),
        &json!({"type": "command", "cmd": "get_state", "msg_id": 1}),
    );
    let targets = &state["data"]["osc"]["targets"];
    assert_eq!(
        targets[0]["addr"],
        format!("{GROUP}:{GROUP_PORT}"),
        "{state}"
    );
    assert_eq!(targets[0]["health"], "ok", "{state}");
}

#[test]
#[cfg_attr(not(vj_root), ignore = "needs root, to build network namespaces")]
fn an_oscquery_client_reads_the_namespace_and_listens_to_the_tempo() {
    let lan = Lan::new(2);
    let _m = suite(&lan);
    let base = format!("http://{}:9010", lan.addr(0));
    let r = python(&lan, 1, oscquery_client::SCRIPT, &[&base]);
    oscquery_client::check(&r, NAME, 9020);
}

const BROWSER: &str = r#"
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf
found = {}
class Listener(ServiceListener):
    def add_service(self, zc, type_, name):
        info = zc.get_service_info(type_, name, timeout=3000)
        if info:
            found[name] = {"type": type_, "port": info.port, "addresses": info.parsed_addresses()}
    def update_service(self, zc, type_, name):
        self.add_service(zc, type_, name)
    def remove_service(self, zc, type_, name):
        pass
zc = Zeroconf(ip_version=IPVersion.V4Only)
ServiceBrowser(zc, ["_oscjson._tcp.local.", "_osc._udp.local."], Listener())
end = time.time() + float(sys.argv[1])
while time.time() < end and len(found) < 2:
    time.sleep(0.2)
zc.close()
print(json.dumps(found))
"#;

#[test]
#[cfg_attr(not(vj_root), ignore = "needs root, to build network namespaces")]
fn an_mdns_browser_on_another_host_finds_both_services() {
    let lan = Lan::new(2);
    let m = suite(&lan);
    let found = python(&lan, 1, BROWSER, &["15"]);
    let a = lan.addr(0);
    let json_name = format!("{NAME}._oscjson._tcp.local.");
    let osc_name = format!("{NAME}._osc._udp.local.");
    assert_eq!(found[&json_name]["port"], 9010, "{found}");
    assert_eq!(found[&osc_name]["port"], 9020, "{found}");
    for name in [&json_name, &osc_name] {
        assert!(
            found[name]["addresses"]
                .as_array()
                .unwrap()
                .contains(&json!(a)),
            "{found}"
        );
    }
    let state = request(
        &m.bus_socket("oscquery_server"),
        &json!({"type": "command", "cmd": "get_state", "msg_id": 1}),
    );
    assert_eq!(
        state["data"]["mdns"].as_array().unwrap().len(),
        2,
        "{state}"
    );
}

const CONTROLLER: &str = r#"
import json, socket, sys
address, host, port, local, times, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
def pad(b):
    return b + b"\0" * (4 - len(b) % 4)
msg = pad(address.encode()) + pad(b",")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((local, 0))
s.settimeout(wait)
for _ in range(times):
    s.sendto(msg, (host, port))
try:
    print(json.dumps({"reply": s.recv(65536).hex()}))
except socket.timeout:
    print(json.dumps({"reply": None}))
"#;

#[test]
#[cfg_attr(not(vj_root), ignore = "needs root, to build network namespaces")]
fn control_over_osc_is_accepted_from_the_allowed_host_only() {
    let lan = Lan::new(3);
    let m = suite(&lan);
    let a = lan.addr(0);
    let cmd = "/vj/audio_analyzer/health";
    let allowed = python(
        &lan,
        1,
        CONTROLLER,
        &[cmd, &a, "9020", &lan.addr(1), "1", "10"],
    );
    let hex = allowed["reply"]
        .as_str()
        .expect("a reply to the allowed host");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let reply = &vj::osc::decode(&bytes).unwrap()[0];
    assert_eq!(reply.address, format!("{cmd}/reply"));
    assert_eq!(reply.types, "iss");
    assert_eq!(reply.args[0], 1, "the analyzer ran it: {reply:?}");
    let data: Value = serde_json::from_str(reply.args[2].as_str().unwrap()).unwrap();
    assert_eq!(data["worker"], "audio_analyzer", "{data}");

    let refused = python(
        &lan,
        2,
        CONTROLLER,
        &[cmd, &a, "9020", &lan.addr(2), "3", "2"],
    );
    assert_eq!(
        refused["reply"],
        Value::Null,
        "nothing goes back to a refused sender"
    );
    let state = request(
        &m.bus_socket("oscquery_server"),
        &json!({"type": "command", "cmd": "get_state", "msg_id": 1}),
    );
    let control = &state["data"]["control_osc"];
    assert_eq!(control["accepted"], 1, "{state}");
    assert_eq!(control["refused"][lan.addr(2)], 3, "{state}");
    let journal = m.journal("vj-oscquery");
    assert_eq!(
        journal.matches("control over OSC refused").count(),
        1,
        "logged once per sender:\n{journal}"
    );
}
