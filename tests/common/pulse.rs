//! A private PulseAudio server on a socket in a temp dir: the sound server most Linux desktops
//! have (PipeWire answers the same protocol through pipewire-pulse). Clients reach it with
//! `PULSE_SERVER=unix:<dir>/native` ([`Pulse::server`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pulse {
    child: Child,
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "pulseaudio never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pulse { child, socket }
    }

    /// `PULSE_SERVER` for a client of this server.
    pub fn server(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// `pactl` on this server.
    pub fn pactl(&self, args: &[&str]) -> String {
        let out = Command::new("pactl")
            .arg("--server")
            .arg(self.server())
            .args(args)
            .output()
            .expect("pactl (pulseaudio-utils)");
        assert!(
            out.status.success(),
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server dies, as when the desktop's sound server crashes or restarts.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
