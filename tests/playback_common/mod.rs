//! A playback monitor run by hand: a real binary in a temp HOME with its own bus dir and config,
//! OSC aimed at a real UDP receiver, and the control client to ask it.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use vj::bus::client::Client;
use vj::karaoke::{parse_playback, PlaybackEvent};

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub receiver: UdpSocket,
    bus_name: &'static str,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received `/karaoke/*` event and when it arrived.
pub type Heard = (Instant, PlaybackEvent);

/// The (seconds, playing) of every `/karaoke/pos` heard, in order.
pub fn positions(heard: &[Heard]) -> Vec<(f32, bool)> {
    heard
        .iter()
        .filter_map(|(_, e)| match e {
            PlaybackEvent::Position(p) => Some((p.seconds, p.playing)),
            _ => None,
        })
        .collect()
}

impl Rig {
    /// Starts `binary` with `[section]` config `extra` (TOML) in a fresh temp HOME.
    pub async fn start(binary: &str, bus_name: &'static str, extra: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, binary, bus_name, extra, |_| {}).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        binary: &str,
        bus_name: &'static str,
        extra: &str,
        adjust: impl FnOnce(&mut Command),
    ) -> Rig {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = format!(
            "[osc]\ntargets = [\"{}\"]\nroutes = []\n{extra}",
            receiver.local_addr().unwrap()
        );
        std::fs::write(dir.path().join("vj.toml"), config).unwrap();
        let mut cmd = common::worker_command(binary, dir.path());
        cmd.env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        adjust(&mut cmd);
        let child = cmd.spawn().unwrap();
        let rig = Rig {
            dir,
            child,
            receiver,
            bus_name,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Client::connect(&rig.socket()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{binary} did not start: {}",
                rig.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rig
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join(format!("bus/{}.sock", self.bus_name))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub async fn request(&self, cmd: &str, args: Value) -> vj::bus::client::Ack {
        let mut c = Client::connect(&self.socket()).await.unwrap();
        let Value::Object(args) = args else { panic!() };
        c.request(cmd, args).await.unwrap()
    }

    pub async fn state(&self) -> Value {
        let ack = self.request("get_state", json!({})).await;
        assert!(ack.success, "{ack:?}");
        ack.data
    }

    /// Waits for the worker's state to satisfy `ok`.
    pub async fn wait_state(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.state().await;
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "state never got to {what}: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the worker is degraded with a detail that mentions `needle`.
    pub async fn wait_degraded_saying(&self, needle: &str) -> Value {
        self.wait_state(needle, |s| {
            s["status"] == "degraded" && s["detail"].as_str().is_some_and(|d| d.contains(needle))
        })
        .await
    }

    /// Playback events heard until `done` holds for one (returned last) or `wait` runs out.
    pub async fn hear_until(
        &self,
        wait: Duration,
        done: impl Fn(&PlaybackEvent) -> bool,
    ) -> Vec<Heard> {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            let recv = tokio::time::timeout_at(deadline, self.receiver.recv_from(&mut buf)).await;
            let Ok(Ok((n, _))) = recv else { return out };
            let at = Instant::now();
            let Ok((_, rosc::OscPacket::Message(msg))) = rosc::decoder::decode_udp(&buf[..n])
            else {
                panic!("the worker sent something that is not one plain OSC message");
            };
            {
                let tags = vj::osc::type_tags(&msg.args);
                match msg.addr.as_str() {
                    vj::karaoke::TRACK_ADDR => assert_eq!(tags, "issssfi"),
                    vj::karaoke::POS_ADDR => assert_eq!(tags, "fi"),
                    _ => {}
                }
                if let Ok(Some(ev)) = parse_playback(&msg) {
                    let stop = done(&ev);
                    out.push((at, ev));
                    if stop {
                        return out;
                    }
                }
            }
        }
    }

    /// The next `/karaoke/track` (panics after 5 s without one).
    pub async fn next_track(&self) -> (Instant, Option<vj::karaoke::NowPlaying>) {
        let heard = self
            .hear_until(Duration::from_secs(5), |e| {
                matches!(e, PlaybackEvent::Track(_))
            })
            .await;
        match heard.last() {
            Some((at, PlaybackEvent::Track(t))) => (*at, t.clone()),
            _ => panic!("no /karaoke/track within 5 s; stderr:\n{}", self.stderr()),
        }
    }

    /// Throws away what arrived so far.
    pub async fn drain(&self) {
        let mut buf = vec![0u8; 65536];
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(5), self.receiver.recv_from(&mut buf)).await
        {
        }
    }

    /// The process is still running (never crashed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
