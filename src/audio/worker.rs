//! The `audio_analyzer` worker: a dedicated analysis thread pops hops from the capture ring (or
//! the demo loop, or a WAV at real time), runs the [`Analyzer`] and sends `/audio/*` per hop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rosc::OscMessage;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use super::analyzer::{AnalysisSettings, Analyzer};
use super::capture::{self, CaptureError, RING_SAMPLES};
use super::config::{AudioConfig, AudioSource};
use super::decimate::{self, Decimator};
use super::{synth, HOP};
use crate::bus::Outcome;
use crate::osc::OscOut;
use crate::registry::{WorkerInfo, AUDIO};
use crate::service::backoff::Backoff;
use crate::service::notify::Watchdog;
use crate::worker::{lock, Context, Handle, Health, Status, Stop, Worker};

/// A live device that delivers nothing for this long is treated as gone.
const STALL: Duration = Duration::from_secs(3);
/// Reopening a lost source: after 1 s, doubling up to 30 s.
const REOPEN: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

/// The analyzer's own commands.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioCommand {
    /// The capture devices cpal sees.
    ListDevices,
}

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

/// What the control plane reads while the analysis thread runs.
#[derive(Default)]
struct Shared {
    live: Mutex<Live>,
    frames: AtomicU64,
    overruns: AtomicU64,
}

impl Shared {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        lock(&self.live)
    }
}

/// The worker: its analysis runs on a thread of its own, which this owns until it is started.
pub struct AudioAnalyzer {
    analysis: Analysis,
}

/// The control plane's window on the analysis.
pub struct AudioHandle {
    shared: Arc<Shared>,
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
    stop: Stop,
    /// `set_config` sends here; the thread looks between hops (and is unparked).
    config_rx: watch::Receiver<Arc<AudioConfig>>,
    config: Arc<AudioConfig>,
    last_pet: Instant,
    msgs: Vec<OscMessage>,
    /// Frames counted for the fps figure, and since when.
    window: (u64, Instant),
    /// The source label and rate the status line last said, and for how many seconds running
    /// the rate has been 10 % off it.
    shown: Option<(String, f32)>,
    rate_off: u32,
}

impl Analysis {
    fn pet(&mut self) {
        if self.last_pet.elapsed() >= Duration::from_secs(1) {
            self.watchdog.pet();
            self.last_pet = Instant::now();
        }
    }

    fn config_changed(&self) -> bool {
        self.config_rx.has_changed().unwrap_or(false)
    }

    /// Takes a config `set_config` sent; tells whether the source must be reopened.
    fn take_config(&mut self) -> Option<bool> {
        if !self.config_changed() {
            return None;
        }
        let new = self.config_rx.borrow_and_update().clone();
        let reopen = new.source != self.config.source || new.device != self.config.device;
        self.config = new;
        Some(reopen)
    }

    fn stopping(&self) -> bool {
        self.stop.requested()
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
            // The line says the rate, but a wobble (a busy machine, a catch-up burst) is not
            // news: STATUS= and the journal change when the source does, or when the rate has
            // been 10 % off for 3 s running.
            let shown = self.status.get();
            let fresh =
                shown.health != Health::Ok || self.shown.as_ref().is_none_or(|(l, _)| l != label);
            let off = self
                .shown
                .as_ref()
                .is_some_and(|(_, f)| (f - fps).abs() >= 0.1 * f);
            self.rate_off = if off { self.rate_off + 1 } else { 0 };
            if fresh || self.rate_off >= 3 {
                self.status
                    .set(Health::Ok, format!("analyzing {label} at {fps:.0} fps"));
                self.shown = Some((label.to_string(), fps));
                self.rate_off = 0;
            }
        }
        self.pet();
    }

    /// Applies a live config change to the analyzer, or says the source must change.
    fn check_config(&mut self, analyzer: &mut Analyzer) -> Option<Ended> {
        match self.take_config() {
            Some(true) => Some(Ended::Reconfigure),
            Some(false) => {
                let rate = analyzer.settings().rate;
                analyzer.set_settings(AnalysisSettings::from_config(&self.config, rate));
                tracing::debug!(config = ?self.config, "applied the new [audio] settings to the analysis");
                None
            }
            None => None,
        }
    }

    /// Plays `samples` in a loop at real time (the demo loop, a file source).
    fn run_generated(&mut self, samples: &[f32], rate: u32, label: &str, probe: bool) -> Ended {
        let (samples, rate) = Decimator::all(samples, rate);
        let mut probed = Instant::now();
        let mut analyzer = Analyzer::new(AnalysisSettings::from_config(&self.config, rate));
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
            &self.config,
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
            if self.config_changed() {
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
        let mut backoff = REOPEN;
        loop {
            let source = self.config.source.clone();
            let ended = match &source {
                AudioSource::Demo => self.demo("demo loop", false),
                AudioSource::File(path) => match super::offline::read_wav(path) {
                    Ok(m) => {
                        self.set_live("file", &path.display().to_string(), m.rate, 1);
                        let label = format!("file {}", path.display());
                        self.run_generated(&m.samples, m.rate, &label, false)
                    }
                    Err(e) => Ended::Lost(e.to_string()),
                },
                AudioSource::Auto | AudioSource::Device => {
                    let (producer, consumer) = rtrb::RingBuffer::new(RING_SAMPLES);
                    match capture::open(&self.config.device, producer, std::thread::current()) {
                        Ok(cap) => {
                            info!(device = %cap.name, rate = cap.rate, channels = cap.channels, "capturing from '{}' at {} Hz, {} channel(s)", cap.name, cap.rate, cap.channels);
                            self.set_live("device", &cap.name, cap.rate, cap.channels);
                            backoff.reset();
                            self.run_device(cap, consumer)
                        }
                        // `auto` with nothing that opens as an input (no card at all, or only a
                        // `default` PCM that leads nowhere): play the demo loop.
                        Err(e)
                            if source == AudioSource::Auto
                                && (matches!(e, CaptureError::NoDevice)
                                    || capture::list_devices().is_ok_and(|d| d.is_empty())) =>
                        {
                            info!(reason = %e, "no capture device ({e}): playing the demo loop");
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
                    backoff.reset();
                }
                Ended::Lost(why) => {
                    let attempts = {
                        let mut live = self.shared.live();
                        live.reopen_attempts += 1;
                        live.last_error = Some(why.clone());
                        live.fps = 0.0;
                        live.reopen_attempts
                    };
                    let wait = backoff.next_wait();
                    warn!(error = %why, attempts, "audio source lost ({why}); reopening in {}s (attempt {attempts})", wait.as_secs());
                    self.status.set(
                        Health::Degraded,
                        format!("{why}, retry in {}s", wait.as_secs()),
                    );
                    if let Some(Ended::Stop) = self.wait(wait) {
                        return;
                    }
                    let _ = self.take_config();
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

#[derive(Serialize)]
struct State {
    #[serde(flatten)]
    live: Live,
    frames: u64,
    overruns: u64,
}

impl Handle for AudioHandle {
    type Command = AudioCommand;

    fn state(&self) -> impl Serialize {
        State {
            live: self.shared.live().clone(),
            frames: self.shared.frames.load(Ordering::Relaxed),
            overruns: self.shared.overruns.load(Ordering::Relaxed),
        }
    }

    fn checks(&self) -> impl Serialize {
        let live = self.shared.live();
        let capture = match (&live.source[..], live.fps > 0.0) {
            ("", _) => "starting".to_string(),
            (_, true) => "ok".to_string(),
            (_, false) => live
                .last_error
                .clone()
                .unwrap_or_else(|| "no frames yet".into()),
        };
        json!({ "capture": capture })
    }

    fn stats(&self) -> impl Serialize {
        let live = self.shared.live();
        json!({
            "frames": self.shared.frames.load(Ordering::Relaxed),
            "fps": live.fps,
            "source": live.source,
        })
    }

    async fn command(&self, cmd: AudioCommand) -> Outcome {
        match cmd {
            AudioCommand::ListDevices => {
                let listed = tokio::task::spawn_blocking(|| {
                    capture::list_devices().map(|d| (d, capture::alsa_pcms()))
                })
                .await;
                match listed {
                    Ok(Ok((devices, pcms))) => {
                        Outcome::ok(json!({ "devices": devices, "alsa_pcms": pcms }))
                    }
                    Ok(Err(e)) => Outcome::fail(e.to_string()),
                    Err(e) => Outcome::fail(format!("list_devices failed: {e}")),
                }
            }
        }
    }
}

impl Worker for AudioAnalyzer {
    const INFO: &'static WorkerInfo = &AUDIO;
    type Config = AudioConfig;
    type Handle = AudioHandle;

    async fn start(ctx: &Context<AudioConfig>) -> anyhow::Result<(Self, AudioHandle)> {
        // Before any device is opened: ALSA and JACK speak through our log, once per message.
        #[cfg(target_os = "linux")]
        super::library_log::route();
        let shared = Arc::new(Shared::default());
        let mut config_rx = ctx.config.clone();
        let config = config_rx.borrow_and_update().clone();
        let analysis = Analysis {
            shared: shared.clone(),
            osc: ctx.osc.clone(),
            watchdog: ctx.watchdog.clone(),
            status: ctx.status.clone(),
            stop: ctx.stop.clone(),
            config_rx,
            config,
            last_pet: Instant::now() - Duration::from_secs(2),
            msgs: Vec::with_capacity(6),
            window: (0, Instant::now()),
            shown: None,
            rate_off: 0,
        };
        Ok((AudioAnalyzer { analysis }, AudioHandle { shared }))
    }

    async fn run(self, ctx: Context<AudioConfig>) -> anyhow::Result<()> {
        let analysis = self.analysis;
        // Dropped when the thread ends, however it ends: the loop below hears it at once.
        let (ended_tx, mut ended) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vj-audio-analysis".into())
            .spawn(move || {
                let _ended = ended_tx;
                analysis.run()
            })?;
        let mut config = ctx.config.clone();
        let mut stop = ctx.stop.clone();
        loop {
            tokio::select! {
                _ = stop.wait() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    // The thread reads the new config itself; wake it to look now.
                    config.mark_unchanged();
                    thread.thread().unpark();
                }
                _ = &mut ended => anyhow::bail!("the analysis thread ended unexpectedly"),
            }
        }
        thread.thread().unpark();
        let joined = tokio::task::spawn_blocking(move || thread.join());
        match tokio::time::timeout(Duration::from_secs(1), joined).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(_) => anyhow::bail!("the analysis thread panicked"),
            // A device blocked in a driver call: leave it; the process is exiting.
            Err(_) => Ok(()),
        }
    }
}
