//! The control protocol over a real socket, against the real vj-oscdebug started by hand (as a
//! developer would, without systemd): every error reply of SPEC section 3, other clients
//! undisturbed, pipelining, msg_id kinds, heartbeats, a Python-stdlib client, set_config kept
//! across a restart, and SIGTERM.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{request, ByHand};
use serde_json::{json, Value};

/// A raw connection: frames out, frames in.
struct Conn(UnixStream);

impl Conn {
    fn open(path: &Path) -> Conn {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn(s)
    }

    fn send_bytes(&mut self, body: &[u8]) {
        self.0
            .write_all(&(body.len() as u32).to_be_bytes())
            .unwrap();
        self.0.write_all(body).unwrap();
    }

    fn send(&mut self, v: &Value) {
        self.send_bytes(&serde_json::to_vec(v).unwrap());
    }

    /// The next frame that is not a heartbeat; `None` when the worker hung up.
    fn recv(&mut self) -> Option<Value> {
        loop {
            let mut len = [0u8; 4];
            self.0.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
            self.0.read_exact(&mut buf).ok()?;
            let v: Value = serde_json::from_slice(&buf).expect("the worker sends JSON");
            if v["type"] != "heartbeat" {
                return Some(v);
            }
        }
    }

    fn ask(&mut self, v: Value) -> Value {
        self.send(&v);
        self.recv().expect("a reply")
    }
}

fn cmd(name: &str, id: Value) -> Value {
    json!({"type": "command", "cmd": name, "msg_id": id})
}

#[test]
fn every_error_reply_and_other_clients_are_not_disturbed() {
    let w = ByHand::start("");
    let mut bystander = Conn::open(&w.socket());
    let mut c = Conn::open(&w.socket());

    let check_bystander = |b: &mut Conn, n: i64| {
        let r = b.ask(cmd("health", json!(n)));
        assert_eq!(
            (r["type"].clone(), r["msg_id"].clone()),
            (json!("ack"), json!(n))
        );
    };

    c.send_bytes(b"{not json");
    let r = c.recv().unwrap();
    assert_eq!(r["type"], "error");
    assert!(
        r["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{r}"
    );
    check_bystander(&mut bystander, 1);

    c.send_bytes(b"[1, 2]");
    let r = c.recv().unwrap();
    assert_eq!(r["error"], "expected a JSON object, got an array");

    let r = c.ask(json!({"cmd": "get_state", "msg_id": "a"}));
    assert_eq!(
        (r["type"].clone(), r["error"].clone()),
        (json!("error"), json!("missing field: type"))
    );
    assert_eq!(r["msg_id"], "a", "the msg_id comes back even on an error");

    let r = c.ask(json!({"type": "command", "msg_id": "b"}));
    assert_eq!(r["error"], "missing field: cmd");

    let r = c.ask(json!({"type": "event", "cmd": "x", "msg_id": "c"}));
    assert_eq!(r["type"], "error");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("unknown message type: \"event\""),
        "{r}"
    );

    let r = c.ask(cmd("frobnicate", json!("d")));
    assert_eq!(r["type"], "ack");
    assert_eq!(r["success"], false);
    assert_eq!(r["message"], "Unknown command: frobnicate");

    let r =
        c.ask(json!({"type": "command", "cmd": "get_messages", "count": "lots", "msg_id": "e"}));
    assert_eq!(r["success"], false);
    assert!(r["message"].as_str().unwrap().contains("`count`"), "{r}");

    let r = c.ask(json!({"type": "command", "cmd": "set_config", "capasity": 3, "msg_id": "f"}));
    assert_eq!(r["success"], false);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("`osc_debugger.capasity`"),
        "{r}"
    );

    // The connection is still usable after all that.
    let r = c.ask(cmd("get_state", json!("g")));
    assert_eq!(r["success"], true);
    check_bystander(&mut bystander, 2);

    // Over the limit: an error, then the worker hangs up (framing is lost).
    c.0.write_all(&(1_048_577u32).to_be_bytes()).unwrap();
    let r = c.recv().unwrap();
    assert_eq!(r["type"], "error");
    assert!(
        r["error"].as_str().unwrap().starts_with("frame too large"),
        "{r}"
    );
    assert!(
        c.recv().is_none(),
        "connection closed after an oversized frame"
    );

    check_bystander(&mut bystander, 3);
    assert_eq!(
        request(&w.socket(), &cmd("health", json!(4)))["data"]["status"],
        "ok"
    );
}

#[test]
fn pipelined_requests_come_back_with_their_own_msg_id() {
    let w = ByHand::start("");
    let mut c = Conn::open(&w.socket());
    let ids: Vec<Value> = (0..50)
        .map(|i| match i % 3 {
            0 => json!(format!("s{i}")),
            1 => json!(i),
            _ => json!(i as f64 + 0.5),
        })
        .collect();
    for id in &ids {
        c.send(&cmd("get_stats", id.clone()));
    }
    c.send(&json!({"type": "command", "cmd": "health", "msg_id": null}));
    let mut got: Vec<Value> = (0..=ids.len())
        .map(|_| c.recv().unwrap()["msg_id"].clone())
        .collect();
    assert!(got.contains(&Value::Null));
    got.retain(|v| !v.is_null());
    let key = |v: &Value| v.to_string();
    got.sort_by_key(key);
    let mut want = ids.clone();
    want.sort_by_key(key);
    assert_eq!(got, want);
}

#[test]
fn heartbeats_arrive_every_5_seconds_with_stats() {
    let w = ByHand::start("");
    let mut c = Conn::open(&w.socket());
    let mut len = [0u8; 4];
    c.0.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    c.0.read_exact(&mut buf).unwrap();
    let hb: Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(hb["type"], "heartbeat");
    assert_eq!(hb["worker"], "osc_debugger");
    assert_eq!(hb["pid"], w.child.id());
    assert!(hb["uptime_sec"].as_f64().unwrap() >= 4.0, "{hb}");
    assert!(hb["stats"]["packets"].is_u64(), "{hb}");
}

#[test]
fn a_python_stdlib_client_works_unchanged() {
    let w = ByHand::start("");
    // The shape of python-vj's vj_bus client: socket, struct, json and nothing else.
    let script = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def send(obj):
    data = json.dumps(obj).encode("utf-8")
    s.sendall(struct.pack(">I", len(data)) + data)
def recv():
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return json.loads(s.recv(n, socket.MSG_WAITALL).decode("utf-8"))
send({"type": "command", "cmd": "get_state", "msg_id": "py-1"})
send({"type": "command", "cmd": "health", "msg_id": "py-2"})
replies = {}
while len(replies) < 2:
    m = recv()
    if m.get("type") == "ack":
        replies[m["msg_id"]] = m
assert replies["py-1"]["success"] is True, replies
assert replies["py-1"]["data"]["worker"] == "osc_debugger", replies
assert replies["py-2"]["data"]["status"] == "ok", replies
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(w.socket())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn set_config_is_kept_across_a_restart_and_sigterm_exits_cleanly() {
    let w = ByHand::start("");
    let r = request(
        &w.socket(),
        &json!({"type": "command", "cmd": "set_config", "capacity": 7}),
    );
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["data"]["config"]["capacity"], 7);

    let (status, elapsed, dir) = w.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(elapsed < Duration::from_secs(2), "SIGTERM took {elapsed:?}");
    assert!(
        !dir.path().join("bus/osc_debugger.sock").exists(),
        "a socket it bound itself is removed on exit"
    );

    let w = ByHand::spawn(dir);
    let r = request(&w.socket(), &cmd("get_state", json!(1)));
    assert_eq!(r["data"]["config"]["capacity"], 7);
    assert_eq!(r["data"]["capacity"], 7);
}

#[test]
fn restart_reinitialises_in_process_and_keeps_serving() {
    let w = ByHand::start("");
    let before = request(&w.socket(), &cmd("get_state", json!(1)));
    let r = request(&w.socket(), &cmd("restart", json!(2)));
    assert_eq!(r["success"], true, "{r}");
    let after = request(&w.socket(), &cmd("get_state", json!(3)));
    assert_eq!(after["data"]["pid"], before["data"]["pid"], "same process");
    assert_eq!(after["data"]["status"], "ok");
}

#[test]
#[cfg_attr(not(vj_root), ignore = "needs root, to act as another user")]
fn a_peer_of_another_uid_is_refused() {
    assert!(
        rustix::process::geteuid().is_root(),
        "built as root, run as another user: build and run the tests as the same user"
    );
    use std::os::unix::fs::PermissionsExt;
    let w = ByHand::start("");
    // Open the door that 0700/0600 normally keeps shut, to see the uid check itself.
    let perm = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    perm(w.dir.path(), 0o755).unwrap();
    perm(&w.dir.path().join("bus"), 0o755).unwrap();
    perm(&w.socket(), 0o666).unwrap();
    let script = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
data = json.dumps({"type": "command", "cmd": "get_state", "msg_id": 1}).encode()
try:
    s.sendall(struct.pack(">I", len(data)) + data)
    print("reply" if s.recv(4) else "closed")
except ConnectionError:
    print("closed")
"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(w.socket())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The worker's own user is still served.
    assert_eq!(
        request(&w.socket(), &cmd("health", json!(1)))["success"],
        true
    );
}

#[test]
fn the_257th_connection_waits_until_one_of_256_closes() {
    use std::io::{Read, Write};
    let w = ByHand::start("");
    // 256 served connections, each answered once so it is surely being served.
    let mut held: Vec<std::os::unix::net::UnixStream> = (0..256)
        .map(|i| {
            let mut s = std::os::unix::net::UnixStream::connect(w.socket()).unwrap();
            let body = serde_json::to_vec(&cmd("health", json!(i))).unwrap();
            s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
            s.write_all(&body).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut reply).unwrap();
            s
        })
        .collect();
    // The 257th is accepted by the kernel (the backlog) but not served...
    let (tx, rx) = std::sync::mpsc::channel();
    let sock = w.socket();
    std::thread::spawn(move || {
        let _ = tx.send(common::try_request(&sock, &cmd("health", json!("late"))));
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "served beyond 256 connections"
    );
    // ...until one of the 256 goes.
    drop(held.pop());
    let late = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("served once one closed");
    assert_eq!(late.unwrap()["msg_id"], "late");
}
