//! vj-oscquery (and the workers it forwards to) run by hand on loopback, as a developer would:
//! one temp dir holds the config, the bus dir and the state of every process started here,
//! each on free ports, its log (stderr) kept in a file. No root, no systemd.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
pub mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub use common::{request, wait_until, worker_command};

pub const PYTHON: &str = "/usr/bin/python3";

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes of one test and the dir they share.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub osc: u16,
    pub control: u16,
    children: Vec<(String, Child)>,
}

impl Rig {
    /// A config with vj-oscquery on free ports, control over OSC on a free port (with
    /// replies), no OSC targets, and `extra` appended (more keys of `[control.osc]` first:
    /// the text goes right after that section's keys).
    pub fn new(control_extra: &str, extra: &str) -> Rig {
        Rig::with_keys("", control_extra, extra)
    }

    /// The same with more keys of `[oscquery]`.
    fn with_keys(oscquery_extra: &str, control_extra: &str, extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let (http, osc, control) = (
            free_tcp_port(),
            common::free_udp_port(),
            common::free_udp_port(),
        );
        std::fs::write(
            dir.path().join("vj.toml"),
            format!(
                "[osc]\ntargets = []\nroutes = []\n[oscquery]\nlisten = \"127.0.0.1:{http}\"\nosc_listen = \"127.0.0.1:{osc}\"\n{oscquery_extra}\n\
                 [control.osc]\nlisten = \"127.0.0.1:{control}\"\nreply = true\n{control_extra}\n{extra}\n"
            ),
        )
        .unwrap();
        Rig {
            dir,
            http,
            osc,
            control,
            children: Vec::new(),
        }
    }

    /// Starts a worker binary; waits for its control socket.
    pub fn start(&mut self, binary: &str, bus_name: &str) {
        let log = std::fs::File::create(self.log_path(binary)).unwrap();
        let child = worker_command(common::bin_dir().join(binary), self.dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push((binary.to_string(), child));
        let socket = self.socket(bus_name);
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "{binary} did not come up:\n{}",
            self.log(binary)
        );
        // The control socket is bound before the worker starts; an answer means it serves
        // (and has bound its own sockets, the control-over-OSC one included).
        let health = self.ask(bus_name, "health");
        assert_eq!(health["success"], true, "{binary}: {health}");
    }

    /// vj-oscquery, up and serving HTTP.
    pub fn oscquery(control_extra: &str, extra: &str) -> Rig {
        Rig::oscquery_with("", control_extra, extra)
    }

    /// vj-oscquery with more keys of `[oscquery]`, up and serving HTTP.
    pub fn oscquery_with(oscquery_extra: &str, control_extra: &str, extra: &str) -> Rig {
        let mut rig = Rig::with_keys(oscquery_extra, control_extra, extra);
        rig.start("vj-oscquery", "oscquery_server");
        let http = rig.http;
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
            ("127.0.0.1", http)
        )
        .is_ok()));
        rig
    }

    pub fn log_path(&self, binary: &str) -> PathBuf {
        self.dir.path().join(format!("{binary}.log"))
    }

    pub fn log(&self, binary: &str) -> String {
        std::fs::read_to_string(self.log_path(binary)).unwrap_or_default()
    }

    pub fn socket(&self, bus_name: &str) -> PathBuf {
        self.dir.path().join(format!("bus/{bus_name}.sock"))
    }

    pub fn ask(&self, bus_name: &str, cmd: &str) -> Value {
        request(
            &self.socket(bus_name),
            &json!({"type": "command", "cmd": cmd, "msg_id": 1}),
        )
    }

    pub fn state(&self) -> Value {
        self.ask("oscquery_server", "get_state")["data"].clone()
    }

    pub fn pid(&self, binary: &str) -> u32 {
        self.children
            .iter()
            .find(|(b, _)| b == binary)
            .map(|(_, c)| c.id())
            .unwrap()
    }

    /// Resident memory of a process started here, in KiB.
    pub fn rss_kb(&self, binary: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(binary))).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// One raw HTTP/1.1 exchange (`Connection: close`): the whole response as text.
    pub fn raw(&self, head: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends one OSC message to vj-oscquery's value input.
    pub fn feed(&self, socket: &UdpSocket, addr: &str, args: Vec<rosc::OscType>) {
        let bytes = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
            addr: addr.into(),
            args,
        }))
        .unwrap();
        socket.send_to(&bytes, ("127.0.0.1", self.osc)).unwrap();
    }

    /// Runs a Python script with the system's python3 (requests, websockets); its last
    /// stdout line is JSON.
    pub fn python(&self, script: &str, args: &[&str]) -> Value {
        let out = std::process::Command::new(PYTHON)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "python: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A controller: sends `/vj/...` commands from its own socket and reads the replies.
pub struct Controller {
    pub socket: UdpSocket,
    to: u16,
}

impl Controller {
    pub fn new(rig: &Rig) -> Controller {
        Controller::from_address(rig, "127.0.0.1")
    }

    /// A controller sending from `ip` (any 127.x.y.z is this machine's loopback).
    pub fn from_address(rig: &Rig, ip: &str) -> Controller {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Controller {
            socket,
            to: rig.control,
        }
    }

    /// Sends a command and waits for its reply: (success, message, data).
    pub fn call(&self, addr: &str, args: Vec<rosc::OscType>) -> (i32, String, String) {
        self.try_call(addr, args, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reply to {addr}"))
    }

    pub fn try_call(
        &self,
        addr: &str,
        args: Vec<rosc::OscType>,
        wait: Duration,
    ) -> Option<(i32, String, String)> {
        let bytes = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
            addr: addr.into(),
            args,
        }))
        .unwrap();
        self.socket.send_to(&bytes, ("127.0.0.1", self.to)).unwrap();
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).ok()?;
            let Ok((_, rosc::OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n]) else {
                continue;
            };
            if m.addr != format!("{addr}/reply") {
                continue;
            }
            return match m.args.as_slice() {
                [rosc::OscType::Int(ok), rosc::OscType::String(msg), rosc::OscType::String(data)] => {
                    Some((*ok, msg.clone(), data.clone()))
                }
                other => panic!("a reply of the wrong shape: {other:?}"),
            };
        }
    }
}
