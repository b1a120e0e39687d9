//! A private sound server on a socket in a temp dir, as Linux desktops have one: PulseAudio,
//! or PipeWire with its session manager (WirePlumber) and pipewire-pulse, which answers the
//! same protocol. Clients reach either with `PULSE_SERVER=unix:<socket>` ([`Pulse::server`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pulse {
    /// The server's processes, the one clients talk to last.
    children: Vec<Child>,
    socket: PathBuf,
}

impl Pulse {
    /// A server whose default source is a 440 Hz sine.
    pub fn start(dir: &Path) -> Pulse {
        Self::start_with(
            dir,
            "load-module module-sine-source rate=44100 frequency=440\n\
             set-default-source sine_input\n",
        )
    }

    /// A server whose default output is a null sink named `sink`, described as `description`
    /// (what a desktop's built-in output is, without the sound card): what plays on it is
    /// heard on its monitor, `<sink>.monitor`.
    pub fn with_null_sink(dir: &Path, sink: &str, description: &str) -> Pulse {
        Self::start_with(
            dir,
            &format!(
                "load-module module-null-sink sink_name={sink} rate=44100 \
                 sink_properties=\"device.description='{description}'\"\n\
                 set-default-sink {sink}\n"
            ),
        )
    }

    /// PipeWire, its session manager and pipewire-pulse on a session bus of their own (the
    /// session manager needs one), with a null sink `sink` as the default output.
    pub fn pipewire_with_null_sink(dir: &Path, sink: &str, description: &str) -> Pulse {
        let home = dir.join("home");
        // The graph runs in periods of at least 256 frames (5.3 ms at 48 kHz), not less:
        // a listener asking for 64-frame fragments made it run at 1.5 ms, and a loaded
        // machine (CI, two cores) ran it dry and moved the clicks under test.
        let conf = home.join("config/pipewire/pipewire.conf.d");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("10-quantum.conf"),
            "context.properties = { default.clock.min-quantum = 256 }\n",
        )
        .unwrap();
        let bus = format!("unix:path={}", dir.join("bus").display());
        let spawn = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .env("HOME", &home)
                .env("XDG_RUNTIME_DIR", dir)
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env("XDG_STATE_HOME", home.join("state"))
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .env_remove("PIPEWIRE_REMOTE")
                .env_remove("PULSE_SERVER")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{program} (scripts/deps.sh --test installs it): {e}"))
        };
        let mut children = vec![spawn(
            "dbus-daemon",
            &["--session", "--nofork", "--nopidfile", "--address", &bus],
        )];
        wait_for_socket(&dir.join("bus"), "dbus-daemon");
        children.push(spawn("pipewire", &[]));
        wait_for_socket(&dir.join("pipewire-0"), "pipewire");
        children.push(spawn("wireplumber", &[]));
        children.push(spawn("pipewire-pulse", &[]));
        let socket = dir.join("pulse/native");
        wait_for_socket(&socket, "pipewire-pulse");
        let server = Pulse { children, socket };
        server.pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={sink}"),
            &format!("sink_properties=\"device.description='{description}'\""),
        ]);
        // The session manager makes it the default when it has seen it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Refused until the session manager has seen the sink.
            let _ = server.run_pactl(&["set-default-sink", sink]);
            if server.pactl(&["get-default-sink"]).trim() == sink {
                break server;
            }
            assert!(
                Instant::now() < deadline,
                "PipeWire never took {sink} as its output"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A server running the startup script `modules` after its native-protocol socket.
    pub fn start_with(dir: &Path, modules: &str) -> Pulse {
        let socket = dir.join("native");
        let _ = std::fs::remove_file(&socket);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let script = dir.join("default.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n{modules}",
                socket.display()
            ),
        )
        .unwrap();
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=false",
            ])
            .arg("-F")
            .arg(&script)
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (scripts/deps.sh --test installs it)");
        wait_for_socket(&socket, "pulseaudio");
        Pulse {
            children: vec![child],
            socket,
        }
    }

    /// `PULSE_SERVER` for a client of this server.
    pub fn server(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// `pactl` on this server, which must succeed: what it printed.
    pub fn pactl(&self, args: &[&str]) -> String {
        let out = self.run_pactl(args);
        assert!(
            out.status.success(),
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pactl` on this server, whatever its outcome.
    fn run_pactl(&self, args: &[&str]) -> std::process::Output {
        Command::new("pactl")
            .arg("--server")
            .arg(self.server())
            .args(args)
            .output()
            .expect("pactl (pulseaudio-utils)")
    }

    /// The server dies, as when the desktop's sound server crashes or restarts.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for_socket(socket: &Path, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "{who} never listened on {socket:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
