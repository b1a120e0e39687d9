//! The `audio_analyzer` worker: a dedicated analysis thread pops hops from the capture ring (or
//! the demo loop, or a WAV at real time), runs the [`Analyzer`] and sends `/audio/*` per hop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rosc::OscMessage;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tracing::{info, warn};

use super::analyzer::{AnalysisSettings, Analyzer};
use super::capture::{self, CaptureError, RING_SAMPLES};
use super::decimate::{self, Decimator};
use super::{synth, HOP};
use crate::bus::message::{Command, Outcome};
use crate::config::Config;
use crate::osc::OscOut;
use crate::service::notify::Watchdog;
use crate::worker::{Context, Health, Status, Worker};

/// A live device that delivers nothing for this long is treated as gone.
const STALL: Duration = Duration::from_secs(3);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where the audio comes from, as `get_state` reports it.
#[derive(Debug, Clone, Default, Serialize)]
struct Live {
    source: String,
    device: String,
    rate: u32,
    /// The rate the analysis runs at: `rate`, or above 88 kHz a power of two below it.
    analysis_rate: u32,
    channels: u16,
    fps: f32,
    bpm: f32,
    bpm_confidence: f32,
    reopen_attempts: u64,
    last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    live: Mutex<Live>,
    frames: AtomicU64,
    overruns: AtomicU64,
    pending: Mutex<Option<Arc<Config>>>,
    dirty: AtomicBool,
    stop: AtomicBool,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct AudioAnalyzer {
    shared: Arc<Shared>,
}

/// The planned source of a config.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Auto,
    Device,
    Demo,
    File(PathBuf),
}

impl Source {
    fn parse(s: &str) -> Result<Source, String> {
        match s {
            "auto" => Ok(Source::Auto),
            "device" => Ok(Source::Device),
            "demo" => Ok(Source::Demo),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(Source::File(PathBuf::from(p))),
                _ => Err(format!(
                    "audio.source must be auto, device, demo or file:PATH, not {s:?}"
                )),
            },
        }
    }
}

/// Why a source stopped running.
enum Ended {
    Stop,
    /// source or device changed: open the new one.
    Reconfigure,
    Lost(String),
}

/// Everything the analysis thread owns.
struct Analysis {
    shared: Arc<Shared>,
    osc: Arc<OscOut>,
    watchdog: Watchdog,
    status: Arc<Status>,
    config: Arc<Config>,
    last_pet: Instant,
    msgs: Vec<OscMessage>,
    /// Frames counted for the fps figure, and since when.
    window: (u64, Instant),
}

impl Analysis {
    fn pet(&mut self) {
        if self.last_pet.elapsed() >= Duration::from_secs(1) {
            self.watchdog.pet();
            self.last_pet = Instant::now();
        }
    }

    /// Takes a config `set_config` sent; tells whether the source must be reopened.
    fn take_config(&mut self) -> Option<bool> {
        if !self.shared.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        let new = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let reopen = new.audio.source != self.config.audio.source
            || new.audio.device != self.config.audio.device;
        self.config = new;
        Some(reopen)
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Analyses one hop and sends its messages.
    fn hop(&mut self, analyzer: &mut Analyzer, samples: &[f32], label: &str) {
        let frame = *analyzer.process(samples);
        frame.osc_messages(analyzer.settings(), &mut self.msgs);
        self.osc.send_frame(&self.msgs);
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        let (count, since) = &mut self.window;
        *count += 1;
        if since.elapsed() >= Duration::from_secs(1) {
            let fps = *count as f32 / since.elapsed().as_secs_f32();
            *count = 0;
            *since = Instant::now();
            {
                let mut live = self.shared.live();
                live.fps = fps;
                live.bpm = frame.bpm;
                live.bpm_confidence = frame.bpm_confidence;
            }
            self.status
                .set(Health::Ok, format!("analyzing {label} at {fps:.0} fps"));
        }
        self.pet();
    }

    /// Applies a live config change to the analyzer, or says the source must change.
    fn check_config(&mut self, analyzer: &mut Analyzer) -> Option<Ended> {
        match self.take_config() {
            Some(true) => Some(Ended::Reconfigure),
            Some(false) => {
                let rate = analyzer.settings().rate;
                analyzer.set_settings(AnalysisSettings::from_config(&self.config.audio, rate));
                info!(config = ?self.config.audio, "analysis settings changed");
                None
            }
            None => None,
        }
    }

    /// Plays `samples` in a loop at real time (the demo loop, a file source).
    fn run_generated(&mut self, samples: &[f32], rate: u32, label: &str, probe: bool) -> Ended {
        let (samples, rate) = Decimator::all(samples, rate);
        let mut probed = Instant::now();
        let mut analyzer = Analyzer::new(AnalysisSettings::from_config(&self.config.audio, rate));
        let hop_time = Duration::from_secs_f64(HOP as f64 / rate as f64);
        let mut next = Instant::now();
        let mut pos = 0usize;
        let mut buf = [0.0f32; HOP];
        if samples.len() < HOP {
            return Ended::Lost(format!("{label} is shorter than one hop"));
        }
        loop {
            if self.stopping() {
                return Ended::Stop;
            }
            if let Some(e) = self.check_config(&mut analyzer) {
                return e;
            }
            if probe && probed.elapsed() > Duration::from_secs(30) {
                probed = Instant::now();
                if capture::list_devices().is_ok_and(|d| !d.is_empty()) {
                    info!("a capture device appeared: leaving the demo loop");
                    return Ended::Reconfigure;
                }
            }
            for b in buf.iter_mut() {
                *b = samples[pos];
                pos = (pos + 1) % samples.len();
            }
            self.hop(&mut analyzer, &buf, label);
            next += hop_time;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > Duration::from_secs(1) {
                next = now;
            }
        }
    }

    /// Captures from a device until it fails, stalls, or the config changes.
    fn run_device(&mut self, cap: capture::Capture, mut ring: rtrb::Consumer<f32>) -> Ended {
        let label = format!("'{}'", cap.name);
        let mut decimator = Decimator::new(cap.rate);
        let group = HOP * decimator.factor();
        let mut analyzer = Analyzer::new(AnalysisSettings::from_config(
            &self.config.audio,
            decimate::analysis_rate(cap.rate),
        ));
        let mut buf = Vec::with_capacity(HOP);
        let mut last_callbacks = 0u64;
        let mut last_progress = Instant::now();
        loop {
            if self.stopping() {
                return Ended::Stop;
            }
            if let Some(e) = self.check_config(&mut analyzer) {
                return e;
            }
            if let Some(e) = cap.flags.error.get() {
                return Ended::Lost(format!("device {label} reported an error: {e}"));
            }
            let callbacks = cap.flags.callbacks.load(Ordering::Relaxed);
            if callbacks != last_callbacks {
                last_callbacks = callbacks;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL {
                return Ended::Lost(format!("device {label} delivered no audio for 3 s"));
            }
            self.shared.overruns.store(
                cap.flags.overruns.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            let mut worked = false;
            // At most 8 hops before looking at flags and config again: a device that delivers
            // faster than real time must not starve set_config or stop.
            for _ in 0..8 {
                let Ok(chunk) = ring.read_chunk(group) else {
                    break;
                };
                let (a, b) = chunk.as_slices();
                buf.clear();
                decimator.process(a, &mut buf);
                decimator.process(b, &mut buf);
                chunk.commit_all();
                self.hop(&mut analyzer, &buf, &label);
                worked = true;
            }
            if !worked {
                self.pet();
                // Woken by the next callback; the timeout only bounds how late a stall, a stop
                // or a config change is seen.
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }

    /// Waits out a back-off, still petting the watchdog; a stop or a new config (both unpark
    /// this thread) ends it at once.
    fn wait(&mut self, d: Duration) -> Option<Ended> {
        let until = Instant::now() + d;
        loop {
            if self.stopping() {
                return Some(Ended::Stop);
            }
            if self.shared.dirty.load(Ordering::Relaxed) {
                return Some(Ended::Reconfigure);
            }
            self.pet();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::park_timeout(left.min(Duration::from_secs(1)));
        }
    }

    fn set_live(&self, source: &str, device: &str, rate: u32, channels: u16) {
        let mut live = self.shared.live();
        live.source = source.into();
        live.device = device.into();
        live.rate = rate;
        live.analysis_rate = decimate::analysis_rate(rate);
        live.channels = channels;
    }

    /// The whole thread: run the configured source, reopen on loss, until stopped.
    fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let source = match Source::parse(&self.config.audio.source) {
                Ok(s) => s,
                Err(e) => {
                    // Config validation makes this unreachable; never crash on it anyway.
                    self.status.set(Health::Degraded, format!("degraded: {e}"));
                    Source::Auto
                }
            };
            let ended = match &source {
                Source::Demo => self.demo("demo loop", false),
                Source::File(path) => match super::offline::read_wav(path) {
                    Ok(m) => {
                        self.set_live("file", &path.display().to_string(), m.rate, 1);
                        let label = format!("file {}", path.display());
                        self.run_generated(&m.samples, m.rate, &label, false)
                    }
                    Err(e) => Ended::Lost(e.to_string()),
                },
                Source::Auto | Source::Device => {
                    let (producer, consumer) = rtrb::RingBuffer::new(RING_SAMPLES);
                    match capture::open(&self.config.audio.device, producer, std::thread::current())
                    {
                        Ok(cap) => {
                            info!(device = %cap.name, rate = cap.rate, channels = cap.channels, "capturing");
                            self.set_live("device", &cap.name, cap.rate, cap.channels);
                            backoff = Duration::from_secs(1);
                            self.run_device(cap, consumer)
                        }
                        // `auto` with nothing that opens as an input (no card at all, or only a
                        // `default` PCM that leads nowhere): play the demo loop.
                        Err(e)
                            if source == Source::Auto
                                && (matches!(e, CaptureError::NoDevice)
                                    || capture::list_devices().is_ok_and(|d| d.is_empty())) =>
                        {
                            info!(reason = %e, "no capture device: playing the demo loop");
                            self.demo("demo loop (no capture device)", true)
                        }
                        Err(e) => Ended::Lost(e.to_string()),
                    }
                }
            };
            match ended {
                Ended::Stop => return,
                Ended::Reconfigure => {
                    let _ = self.take_config();
                    backoff = Duration::from_secs(1);
                }
                Ended::Lost(why) => {
                    let attempts = {
                        let mut live = self.shared.live();
                        live.reopen_attempts += 1;
                        live.last_error = Some(why.clone());
                        live.fps = 0.0;
                        live.reopen_attempts
                    };
                    warn!(error = %why, attempts, "audio source lost; reopening");
                    self.status.set(
                        Health::Degraded,
                        format!("degraded: {why}, retry in {}s", backoff.as_secs()),
                    );
                    if let Some(Ended::Stop) = self.wait(backoff) {
                        return;
                    }
                    let _ = self.take_config();
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Plays the demo loop; with `probe`, looks for a capture device every 30 s and
    /// switches to it when one appears.
    fn demo(&mut self, label: &str, probe: bool) -> Ended {
        let rate = super::DEFAULT_RATE;
        self.set_live("demo", "", rate, 1);
        let samples = synth::demo_loop(rate);
        self.run_generated(&samples, rate, label, probe)
    }
}

impl Worker for AudioAnalyzer {
    const BUS_NAME: &'static str = "audio_analyzer";
    const CONFIG_SECTION: &'static str = "audio";

    async fn start(ctx: &Context) -> anyhow::Result<Self> {
        Source::parse(&ctx.config().audio.source).map_err(|e| anyhow::anyhow!(e))?;
        Ok(AudioAnalyzer {
            shared: Arc::new(Shared::default()),
        })
    }

    async fn run(self: Arc<Self>, mut ctx: Context) -> anyhow::Result<()> {
        let analysis = Analysis {
            shared: self.shared.clone(),
            osc: ctx.osc.clone(),
            watchdog: ctx.watchdog.clone(),
            status: ctx.status.clone(),
            config: ctx.config(),
            last_pet: Instant::now() - Duration::from_secs(2),
            msgs: Vec::with_capacity(6),
            window: (0, Instant::now()),
        };
        // Dropped when the thread ends, however it ends: the loop below hears it at once.
        let (ended_tx, mut ended) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vj-audio-analysis".into())
            .spawn(move || {
                let _ended = ended_tx;
                analysis.run()
            })?;
        let mut config = ctx.config.clone();
        loop {
            tokio::select! {
                _ = ctx.stopped() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let new = config.borrow_and_update().clone();
                    *self.shared.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(new);
                    self.shared.dirty.store(true, Ordering::Release);
                    thread.thread().unpark();
                }
                _ = &mut ended => anyhow::bail!("the analysis thread ended unexpectedly"),
            }
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        thread.thread().unpark();
        let joined = tokio::task::spawn_blocking(move || thread.join());
        match tokio::time::timeout(Duration::from_secs(1), joined).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(_) => anyhow::bail!("the analysis thread panicked"),
            // A device blocked in a driver call: leave it; the process is exiting.
            Err(_) => Ok(()),
        }
    }

    fn state(&self) -> Map<String, Value> {
        let live = self.shared.live().clone();
        let mut m = Map::new();
        if let Ok(Value::Object(o)) = serde_json::to_value(&live) {
            m.extend(o);
        }
        m.insert(
            "frames".into(),
            self.shared.frames.load(Ordering::Relaxed).into(),
        );
        m.insert(
            "overruns".into(),
            self.shared.overruns.load(Ordering::Relaxed).into(),
        );
        m
    }

    fn checks(&self) -> Map<String, Value> {
        let live = self.shared.live();
        let mut m = Map::new();
        let capture = match (&live.source[..], live.fps > 0.0) {
            ("", _) => "starting".to_string(),
            (_, true) => "ok".to_string(),
            (_, false) => live
                .last_error
                .clone()
                .unwrap_or_else(|| "no frames yet".into()),
        };
        m.insert("capture".into(), capture.into());
        m
    }

    fn stats(&self) -> Value {
        let live = self.shared.live();
        json!({
            "frames": self.shared.frames.load(Ordering::Relaxed),
            "fps": live.fps,
            "source": live.source,
        })
    }

    async fn command(self: Arc<Self>, cmd: Command) -> Option<Outcome> {
        match cmd.cmd.as_str() {
            "list_devices" => {
                let listed = tokio::task::spawn_blocking(capture::list_devices).await;
                Some(match listed {
                    Ok(Ok(devices)) => Outcome::ok(json!({ "devices": devices })),
                    Ok(Err(e)) => Outcome::fail(e.to_string()),
                    Err(e) => Outcome::fail(format!("list_devices failed: {e}")),
                })
            }
            _ => None,
        }
    }
}
