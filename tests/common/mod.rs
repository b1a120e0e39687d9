//! Test harness: a real systemd user manager per test, in a box of its own (HOME, XDG_* dirs,
//! runtime dir), with the suite installed into it by `scripts/install.sh` — the same script
//! `make install` runs — from the binaries cargo built for this test run.
//!
//! On a desktop with its own manager this still starts a private one (scripts/user-manager.sh),
//! so tests never touch the user's units. Nor their ports: every socket of a box listens on a
//! free port of its own (a drop-in per socket unit), and the box's `vj.toml` sends to those, so
//! a test runs beside the suite `make run` left up on 9001-9003 and 9010.

#![allow(dead_code)]

pub mod netns;
pub mod pulse;
pub mod stamped;

use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static BOXES: AtomicU32 = AtomicU32::new(0);

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put the binaries of this test run.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_vj-status"))
        .parent()
        .expect("binaries live in a directory")
        .to_path_buf()
}

/// Where boxes go: not under /tmp (PrivateTmp= would hide it), nor /run (the sandbox cannot
/// exec from it there), and short (Unix socket
/// paths are limited to 108 bytes).
fn boxes_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("VJ_TEST_BOXES") {
        return PathBuf::from(dir);
    }
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/var/lib/vjt")
    } else {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/vjt")
    }
}

/// Polls `f` until it is true or `timeout` passes; says whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A UDP port nobody uses right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// A TCP port nobody uses right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// A generated clip as the raw interleaved stereo S16_LE that ALSA's `file` plugin reads.
pub fn alsa_raw(genre: vj::audio::synth::Genre, seed: u64, secs: f64) -> Vec<u8> {
    let clip = vj::audio::synth::generate(genre, seed, 44_100, secs);
    let mut bytes = Vec::with_capacity(clip.samples.len() * 4);
    for &x in &clip.samples {
        let v = (x.clamp(-1.0, 1.0) * 32767.0) as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// A mono 16-bit WAV of `samples` (-1..1, clipped) at `rate`.
pub fn write_wav(path: &Path, samples: &[f32], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Makes `infile` the `default` capture device of `home`: ALSA's `file` plugin over `null`
/// (cpal's ALSA host lists only `default` and hardware cards).
pub fn alsa_file_pcm(home: &Path, infile: &Path) {
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.!default {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{}\"; format \"raw\" }}\n",
            infile.display()
        ),
    )
    .unwrap();
}

/// How many of the captured messages have OSC address `addr`.
pub fn count<T>(msgs: &[(T, vj::osc::CapturedMessage)], addr: &str) -> usize {
    msgs.iter().filter(|(_, m)| m.address == addr).count()
}

/// A worker binary run by hand, as a developer would: its HOME, XDG dirs, bus dir and
/// `vj.toml` all in `dir`, and nothing of systemd's environment.
pub fn worker_command(binary: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut c = Command::new(binary);
    c.env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("VJ_BUS_DIR", dir.join("bus"))
        .env("VJ_CONFIG", dir.join("vj.toml"));
    for var in [
        "NOTIFY_SOCKET",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "WATCHDOG_USEC",
        "CREDENTIALS_DIRECTORY",
        "JOURNAL_STREAM",
    ] {
        c.env_remove(var);
    }
    c
}

/// A private systemd user manager with vj-suite installed.
pub struct UserManager {
    pub root: PathBuf,
    pub home: PathBuf,
    pub runtime: PathBuf,
    env: Vec<(String, PathBuf)>,
    /// The box's own port of each socket unit that listens on one, instead of the default.
    ports: Vec<(String, u16)>,
}

impl UserManager {
    /// Starts a manager in a fresh box and installs the suite (units not started), every socket
    /// on a port of the box's own and its `vj.toml` sending there.
    pub fn start() -> UserManager {
        let mut m = Self::start_bare(None);
        m.script("install.sh", &[bin_dir().to_str().expect("utf-8 path")]);
        m.own_ports();
        m.write_config("");
        m
    }

    /// Moves every socket unit that listens on a port (the OSC inputs, the HTTP listener) to a
    /// free one, in a drop-in (`ports.conf`; a test's own `test.conf` sorts after it): the user's
    /// own suite (`make run`) may hold the default ports.
    pub fn own_ports(&mut self) {
        for w in vj::registry::WORKERS {
            let udp = w
                .osc_socket()
                .map(|u| (u, "ListenDatagram", free_udp_port()));
            let tcp = w
                .http_socket()
                .map(|u| (u, "ListenStream", free_tcp_port()));
            for (unit, key, port) in udp.into_iter().chain(tcp) {
                let dir = self.unit_dir().join(format!("{unit}.d"));
                std::fs::create_dir_all(&dir).unwrap();
                let text = format!("[Socket]\n{key}=\n{key}=127.0.0.1:{port}\n");
                std::fs::write(dir.join("ports.conf"), text).unwrap();
                self.ports.push((unit, port));
            }
        }
        self.ok(&["daemon-reload"]);
    }

    /// The box's port of a socket unit (`vj-oscdebug-osc.socket`), as `own_ports` chose it.
    pub fn port(&self, socket_unit: &str) -> u16 {
        self.ports
            .iter()
            .find(|(u, _)| u == socket_unit)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("{socket_unit} has no port of the box's own"))
    }

    /// The config keys that name the box's ports: `[osc]` sends to its OSC inputs (everything
    /// to the debugger and the OSCQuery server, `/karaoke/` to the lyrics fetcher), and each
    /// worker's `listen` keys name its sockets (what it binds when run by hand).
    fn port_config(&self) -> toml::Table {
        let mut t = toml::Table::new();
        let (mut targets, mut routes) = (Vec::new(), Vec::new());
        for w in vj::registry::WORKERS {
            let section = t
                .entry(w.config_section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let section = section.as_table_mut().unwrap();
            if let (Some(unit), Some(osc)) = (w.osc_socket(), w.osc_in) {
                let addr = format!("127.0.0.1:{}", self.port(&unit));
                section.insert(w.osc_listen_key().into(), addr.clone().into());
                match osc.route {
                    // As etc/vj.toml sends to the suite's own inputs: a bundle per frame.
                    None => {
                        let mut target = toml::Table::new();
                        target.insert("addr".into(), addr.into());
                        target.insert("bundle".into(), true.into());
                        targets.push(toml::Value::Table(target));
                    }
                    Some(prefix) => {
                        let mut r = toml::Table::new();
                        r.insert("prefix".into(), prefix.into());
                        r.insert("targets".into(), vec![toml::Value::from(addr)].into());
                        routes.push(toml::Value::Table(r));
                    }
                }
            }
            if let Some(unit) = w.http_socket() {
                let addr = format!("127.0.0.1:{}", self.port(&unit));
                section.insert("listen".into(), addr.into());
            }
        }
        let mut osc = toml::Table::new();
        osc.insert("targets".into(), targets.into());
        osc.insert("routes".into(), routes.into());
        t.insert("osc".into(), osc.into());
        t
    }

    fn unit_dir(&self) -> PathBuf {
        self.home.join(".config/systemd/user")
    }

    /// Starts a manager with nothing installed in the box, in network namespace `netns` (made
    /// with `ip netns add`) if given: its units all run there.
    pub fn start_bare(netns: Option<&str>) -> UserManager {
        let n = BOXES.fetch_add(1, Ordering::SeqCst);
        let root = boxes_root().join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let home = root.join("h");
        let runtime = root.join("r");
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d).expect("box dirs");
        }
        let env = vec![
            ("HOME".to_string(), home.clone()),
            ("XDG_RUNTIME_DIR".to_string(), runtime.clone()),
            ("XDG_CONFIG_HOME".to_string(), home.join(".config")),
            ("XDG_CACHE_HOME".to_string(), home.join(".cache")),
            ("XDG_STATE_HOME".to_string(), home.join(".local/state")),
        ];
        let m = UserManager {
            root,
            home,
            runtime,
            env,
            ports: Vec::new(),
        };
        let script = repo().join("scripts/user-manager.sh");
        let out = match netns {
            Some(ns) => m
                .command("nsenter")
                .arg(format!("--net=/run/netns/{ns}"))
                .arg("--")
                .arg(script)
                .arg("start")
                .output(),
            None => m.command(script).arg("start").output(),
        }
        .expect("run user-manager.sh");
        assert!(
            out.status.success(),
            "user-manager.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        m
    }

    /// Installs the suite into the box as `make install` does.
    pub fn install(&self) {
        self.script("install.sh", &[bin_dir().to_str().expect("utf-8 path")]);
    }

    fn script(&self, name: &str, args: &[&str]) {
        let out = self
            .command(repo().join("scripts").join(name))
            .args(args)
            .output()
            .expect("run a script");
        assert!(
            out.status.success(),
            "{name} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command with this box's environment (and nothing of the caller's XDG_* or VJ_*).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for var in [
            "VJ_CONFIG",
            "VJ_BUS_DIR",
            "DBUS_SESSION_BUS_ADDRESS",
            "NOTIFY_SOCKET",
        ] {
            c.env_remove(var);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.stdin(Stdio::null());
        c
    }

    pub fn env(&self) -> &[(String, PathBuf)] {
        &self.env
    }

    pub fn systemctl(&self, args: &[&str]) -> Output {
        self.command("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .expect("systemctl")
    }

    /// `systemctl --user` that must succeed.
    pub fn ok(&self, args: &[&str]) {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl --user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One property of a unit (`ActiveState`, `MainPID`, `NRestarts`).
    pub fn show(&self, unit: &str, property: &str) -> String {
        let out = self.systemctl(&["show", unit, "--value", "-p", property]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn main_pid(&self, unit: &str) -> u32 {
        self.show(unit, "MainPID").parse().unwrap_or(0)
    }

    /// Writes the user's `vj.toml`: `toml`, and where it does not say otherwise the box's ports
    /// (`[osc] targets` and `routes`, each `listen` key). A file that is not TOML is written as it is.
    pub fn write_config(&self, toml: &str) {
        let dir = self.home.join(".config/vj");
        std::fs::create_dir_all(&dir).unwrap();
        let text = match toml.parse::<toml::Table>() {
            Ok(mut table) if !self.ports.is_empty() => {
                for (name, ours) in self.port_config() {
                    let theirs = table
                        .entry(name)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let (Some(theirs), toml::Value::Table(ours)) = (theirs.as_table_mut(), ours)
                    {
                        for (k, v) in ours {
                            theirs.entry(k).or_insert(v);
                        }
                    }
                }
                toml::to_string(&table).expect("a table serializes")
            }
            _ => toml.to_string(),
        };
        std::fs::write(dir.join("vj.toml"), text).unwrap();
    }

    /// Adds a drop-in to an installed unit and reloads the manager.
    pub fn drop_in(&self, unit: &str, text: &str) {
        let dir = self.unit_dir().join(format!("{unit}.d"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test.conf"), text).unwrap();
        self.ok(&["daemon-reload"]);
    }

    /// Moves a socket unit's datagram port (tests run side by side; 9001 is not theirs).
    pub fn move_udp_port(&self, socket_unit: &str, port: u16) {
        self.drop_in(
            socket_unit,
            &format!("[Socket]\nListenDatagram=\nListenDatagram=127.0.0.1:{port}\n"),
        );
    }

    /// A worker's control socket.
    pub fn bus_socket(&self, bus_name: &str) -> PathBuf {
        self.runtime.join("vj-bus").join(format!("{bus_name}.sock"))
    }

    /// Runs `vj-status` as the user would.
    pub fn vj_status(&self, args: &[&str]) -> Output {
        self.command(self.home.join(".local/bin/vj-status"))
            .args(args)
            .output()
            .expect("vj-status")
    }

    /// What a binary logged (the manager's journald lives in its mount namespace; the cgroup
    /// the manager runs in hides unit names from journald, so this goes by identifier).
    pub fn journal(&self, binary: &str) -> String {
        let pid = std::fs::read_to_string(self.runtime.join("vj-user-manager/manager.pid"))
            .unwrap_or_default();
        let out = self
            .command("nsenter")
            .args([
                "-t",
                pid.trim(),
                "-m",
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
            ])
            .args(["-t", binary])
            .output()
            .expect("journalctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = self.systemctl(&["stop", "vj.target"]);
        let _ = self
            .command(repo().join("scripts/user-manager.sh"))
            .arg("stop")
            .output();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A UDP receiver on an ephemeral port that decodes what arrives with the suite's decoder.
pub struct OscReceiver {
    pub socket: UdpSocket,
}

impl OscReceiver {
    pub fn bind() -> OscReceiver {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        OscReceiver { socket }
    }

    pub fn addr(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// Every message that arrives within `window`.
    pub fn collect(&self, window: Duration) -> Vec<vj::osc::CapturedMessage> {
        let end = Instant::now() + window;
        let mut out = Vec::new();
        let mut buf = [0u8; 65_536];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.extend(vj::osc::decode(&buf[..n]).unwrap_or_default());
            }
        }
        out
    }
}

/// Sends one OSC message to `addr`.
pub fn send_osc(addr: &str, address: &str, args: Vec<rosc::OscType>) {
    let bytes = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: address.into(),
        args,
    }))
    .unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&bytes, addr)
        .unwrap();
}

/// A blocking control-plane request, as a Python-stdlib client would make it.
pub fn request(socket: &Path, body: &serde_json::Value) -> serde_json::Value {
    try_request(socket, body).unwrap_or_else(|e| panic!("request {body} to {socket:?}: {e}"))
}

/// The same, with failures as errors: connect errors say `connect: …`.
pub fn try_request(socket: &Path, body: &serde_json::Value) -> Result<serde_json::Value, String> {
    request_within(socket, body, Duration::from_secs(10))
}

/// The same, waiting at most `timeout` for each read of the reply.
pub fn request_within(
    socket: &Path,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    use std::io::{Read, Write};
    let mut s =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    let io = |e: std::io::Error| e.to_string();
    s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(io)?;
    let b = serde_json::to_vec(body).unwrap();
    s.write_all(&(b.len() as u32).to_be_bytes()).map_err(io)?;
    s.write_all(&b).map_err(io)?;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(io)?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).map_err(io)?;
        let v: serde_json::Value = serde_json::from_slice(&buf).map_err(|e| e.to_string())?;
        if v["type"] != "heartbeat" {
            return Ok(v);
        }
    }
}

/// vj-oscdebug run by hand, as a developer would (no systemd), in a temp dir; killed on drop.
pub struct ByHand {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl ByHand {
    /// Starts it on a free OSC port; `extra` is more of the `[osc_debugger]` section.
    pub fn start(extra: &str) -> ByHand {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        std::fs::write(
            dir.path().join("vj.toml"),
            format!("[osc_debugger]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n"),
        )
        .unwrap();
        Self::spawn(dir)
    }

    pub fn spawn(dir: tempfile::TempDir) -> ByHand {
        let child = worker_command(env!("CARGO_BIN_EXE_vj-oscdebug"), dir.path())
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = ByHand { child, dir };
        assert!(
            wait_until(Duration::from_secs(10), || UnixStream::connect(me.socket())
                .is_ok()),
            "vj-oscdebug did not come up"
        );
        me
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("bus/osc_debugger.sock")
    }

    /// The UDP port it captures OSC on.
    pub fn osc_port(&self) -> u16 {
        let text = std::fs::read_to_string(self.dir.path().join("vj.toml")).unwrap();
        let at = text.find("127.0.0.1:").unwrap() + "127.0.0.1:".len();
        text[at..].split('"').next().unwrap().parse().unwrap()
    }

    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration, tempfile::TempDir) {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid"),
            rustix::process::Signal::TERM,
        )
        .expect("kill");
        let t = std::time::Instant::now();
        let status = self.child.wait().unwrap();
        let elapsed = t.elapsed();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (status, elapsed, dir)
    }
}

impl Drop for ByHand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds of CPU (user + system) process `pid` has used so far; 0 once it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces and ends at the last ')'.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / ticks
}
