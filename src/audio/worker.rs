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
use super::link::{Link, LinkReport};
use super::setup::SoundSetup;
use super::{synth, HOP};
use crate::bus::Outcome;
use crate::osc::OscOut;
use crate::service::backoff::Backoff;
use crate::service::lock;
use crate::service::notify::Watchdog;
use crate::service::realtime;
use crate::service::unit::WorkerInfo;
use crate::worker::{Context, Handle, Health, Status, Stop, Worker};

/// A live device that delivers nothing for this long is treated as gone.
const STALL: Duration = Duration::from_secs(3);
/// Reopening a lost source: after 1 s, doubling up to 30 s.
const REOPEN: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

/// The analyzer's own commands.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioCommand {
    /// The inputs cpal sees and the sound server's inputs and monitors.
    ListDevices,
    /// A tap on the beat: three or more set tempo and phase, and the tracker refines them.
    Tap,
    /// Twice the tempo (the tracker had half of it).
    TempoDouble,
    /// Half the tempo.
    TempoHalf,
    /// Move the beat grid `ms` later (earlier when negative).
    Nudge { ms: f64 },
    /// The current beat is a downbeat, and begins a phrase.
    Resync,
    /// Set the tempo; `lock` keeps it there (the tracker only finds the phase); `bpm` 0 gives
    /// the tempo back to the audio.
    SetTempo { bpm: f64, lock: Option<bool> },
}

/// A tempo command for the analysis thread, with the moment it was given.
enum Control {
    Tap,
    Scale(f32),
    Nudge(f64),
    Resync,
    SetTempo(f64, bool),
}

/// A command on its way to the analysis thread, and where its answer goes.
struct Pending {
    control: Control,
    at: Instant,
    reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// Where stream time is on the machine's clock: the audio at `t` seconds of stream time was
/// heard at `origin + t`. For a source played here (the demo, a file) that is exact; for a
/// device it is the earliest a hop was seen, against its stream time (a hop is never analysed
/// before it was captured), allowed to drift up by 1 ms a second with the device's clock.
#[derive(Debug, Clone, Copy)]
struct StreamClock {
    origin: Option<Instant>,
}

impl StreamClock {
    fn new() -> Self {
        StreamClock { origin: None }
    }

    /// The hop ending at stream time `t` is there at `now`.
    fn seen(&mut self, t: f64, now: Instant, exact: bool) {
        let o = now.checked_sub(Duration::from_secs_f64(t)).unwrap_or(now);
        self.origin = Some(match self.origin {
            Some(prev) if !exact => {
                let relaxed = prev + Duration::from_secs_f64(0.001 * HOP as f64 / 44_100.0);
                relaxed.min(o)
            }
            _ => o,
        });
    }

    fn wall(&self, t: f64) -> Option<Instant> {
        let o = self.origin?;
        Some(if t >= 0.0 {
            o + Duration::from_secs_f64(t)
        } else {
            o.checked_sub(Duration::from_secs_f64(-t)).unwrap_or(o)
        })
    }

    fn stream(&self, at: Instant) -> Option<f64> {
        let o = self.origin?;
        Some(if at >= o {
            (at - o).as_secs_f64()
        } else {
            -(o - at).as_secs_f64()
        })
    }
}

/// What the status line says of Link: mode, peers, the session's whole BPM.
type LinkShown = (String, u64, i64);

/// Where the audio comes from, as `get_state` reports it.
#[derive(Debug, Clone, Default, Serialize)]
struct Live {
    source: String,
    device: String,
    /// What is analysed, as a person says it: "what plays on 'Built-in Audio Analog Stereo'",
    /// "'USB Mic'", "the demo loop".
    capturing: String,
    rate: u32,
    /// The rate the analysis runs at: `rate`, or above 88 kHz a power of two below it.
    analysis_rate: u32,
    channels: u16,
    fps: f32,
    bpm: f32,
    bpm_confidence: f32,
    /// audio | tap | link | locked.
    tempo_source: Option<super::TempoSource>,
    nudge_ms: f64,
    /// The last beat's place: beat in bar, bar in phrase, phrases since lock.
    count: [i32; 3],
    downbeat_confidence: f32,
    /// Ableton Link: mode, peers, the session's tempo.
    link: LinkReport,
    reopen_attempts: u64,
    last_error: Option<String>,
    /// The analysis and capture threads run at real-time priority (`service::realtime`).
    realtime: bool,
}

/// What the control plane reads while the analysis thread runs.
#[derive(Default)]
struct Readout {
    live: Mutex<Live>,
    frames: AtomicU64,
    overruns: AtomicU64,
    /// The analysis thread, to wake when a command is queued.
    thread: Mutex<Option<std::thread::Thread>>,
}

impl Readout {
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
    shared: Arc<Readout>,
    requests: std::sync::mpsc::Sender<Pending>,
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
    shared: Arc<Readout>,
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
    /// What the status line last said: source label, rate, tempo and where it came from, Link
    /// mode, peers and whole BPM; and for how many seconds running the rate or tempo has been off it.
    shown: Option<(String, f32, f32, super::TempoSource, LinkShown)>,
    rate_off: u32,
    requests: std::sync::mpsc::Receiver<Pending>,
    clock: StreamClock,
    /// The Ableton Link peer (none with `audio.link.mode = "off"`).
    link: Link,
    /// The analysis of the last source, kept for the next one at the same rate: switching
    /// inputs (`set_config device`) keeps the tempo, the grid and the bar.
    kept: Option<Analyzer>,
    /// The demo loop, once made.
    demo_samples: Option<Arc<[f32]>>,
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
        self.link.apply(&new);
        self.shared.live().link = self.link.report();
        self.config = new;
        Some(reopen)
    }

    fn stopping(&self) -> bool {
        self.stop.requested()
    }

    /// Analyses one hop and sends its messages: at once for a device (the hop has just been
    /// captured), at `heard` for a source played here (the demo, a file: analysed ahead, sent
    /// when the hop has played). A frame that carries a beat waits until the beat's send time
    /// (its sound, less `latency_ms`), at most two hops: beats go out on time to the
    /// millisecond, not on the 11.6 ms grid of the hops.
    fn hop(
        &mut self,
        analyzer: &mut Analyzer,
        samples: &[f32],
        label: &str,
        heard: Option<Instant>,
    ) {
        self.serve_requests(analyzer);
        let frame = *analyzer.process(samples);
        let now = Instant::now();
        self.clock
            .seen(frame.time, heard.unwrap_or(now), heard.is_some());
        // The session, read (and in publish mode written) once per hop; following, its
        // timeline places the beats of the hops to come.
        let clock = self.clock;
        let timeline = self
            .link
            .hop(&frame, analyzer.tempo_source(), |t| clock.wall(t));
        analyzer.follow(timeline);
        frame.osc_messages(analyzer.settings(), &mut self.msgs);
        let mut send_at = heard.unwrap_or(now);
        if frame.beat {
            let hops = Duration::from_secs_f64(2.0 * HOP as f64 / analyzer.settings().rate as f64);
            let beat_at = self
                .clock
                .wall(frame.beat_time - analyzer.settings().latency)
                .unwrap_or(send_at);
            send_at = send_at.max(beat_at.min(send_at + hops));
        }
        let wait = send_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.osc.send_frame(&self.msgs);
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        if frame.beat {
            let mut live = self.shared.live();
            live.count = frame.count;
            live.downbeat_confidence = frame.phase[3];
        }
        let (count, since) = &mut self.window;
        *count += 1;
        if since.elapsed() >= Duration::from_secs(1) {
            let fps = *count as f32 / since.elapsed().as_secs_f32();
            *count = 0;
            *since = Instant::now();
            let source = analyzer.tempo_source();
            let link = self.link.report();
            let link_shown = (link.mode.clone(), link.peers, link.tempo.round() as i64);
            // The line says the rate and the tempo, but a wobble (a busy machine, a catch-up
            // burst, the tempo settling) is not news: STATUS= and the journal change when the
            // source does, or when the rate has been 10 % off or the tempo 2 BPM off for 3 s.
            let shown = self.status.get();
            let fresh = shown.health != Health::Ok
                || self.shown.as_ref().is_none_or(|(l, _, b, s, k)| {
                    l != label
                        || *s != source
                        || (*b > 0.0) != (frame.bpm > 0.0)
                        || *k != link_shown
                });
            let off = self.shown.as_ref().is_some_and(|(_, f, b, _, _)| {
                (f - fps).abs() >= 0.1 * f || (b - frame.bpm).abs() >= 2.0
            });
            self.rate_off = if off { self.rate_off + 1 } else { 0 };
            if fresh || self.rate_off >= 3 {
                let mut tempo = if frame.bpm > 0.0 {
                    format!(", {:.0} BPM ({})", frame.bpm, tempo_source_name(source))
                } else {
                    String::new()
                };
                if let Some(l) = link.summary() {
                    tempo = format!("{tempo}, {l}");
                }
                self.status
                    .set(Health::Ok, format!("{label} at {fps:.0} fps{tempo}"));
                self.shown = Some((label.to_string(), fps, frame.bpm, source, link_shown));
                self.rate_off = 0;
            }
            // After the line: get_state reads this before the line (worker::runtime), so whoever
            // sees a rate also sees the line that says it.
            {
                let mut live = self.shared.live();
                live.link = link;
                live.fps = fps;
                live.bpm = frame.bpm;
                live.bpm_confidence = frame.bpm_confidence;
                live.tempo_source = Some(source);
                live.nudge_ms = analyzer.nudged() * 1000.0;
            }
        }
        self.pet();
    }

    /// Runs the tempo commands queued since the last hop, each at the stream time it was given.
    fn serve_requests(&mut self, analyzer: &mut Analyzer) {
        while let Ok(req) = self.requests.try_recv() {
            let at = self.clock.stream(req.at).unwrap_or_else(|| analyzer.time());
            let outcome = run_control(analyzer, req.control, at);
            {
                let mut live = self.shared.live();
                live.tempo_source = Some(analyzer.tempo_source());
                live.nudge_ms = analyzer.nudged() * 1000.0;
            }
            let _ = req.reply.send(outcome);
        }
    }

    /// Commands that come while nothing is analysed (a back-off) are answered at once.
    fn refuse_requests(&mut self, why: &str) {
        while let Ok(req) = self.requests.try_recv() {
            let _ = req.reply.send(Outcome::fail(format!(
                "no audio is being analysed ({why}); try again when it is"
            )));
        }
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

    /// Runs `source` with the analyzer of the source before when it ran at the same `rate`
    /// (else a new one), and keeps it for the next.
    fn analysing(
        &mut self,
        rate: u32,
        source: impl FnOnce(&mut Self, &mut Analyzer) -> Ended,
    ) -> Ended {
        let settings = AnalysisSettings::from_config(&self.config, rate);
        let mut analyzer = match self.kept.take() {
            Some(mut a) if a.settings().rate == rate => {
                a.set_settings(settings);
                a
            }
            _ => Analyzer::new(settings),
        };
        let ended = source(self, &mut analyzer);
        self.kept = Some(analyzer);
        ended
    }

    /// Plays `samples` in a loop at real time (the demo loop, a file source): each hop is
    /// analysed once it has been "heard", at the start plus its end's time.
    fn run_generated(&mut self, samples: &[f32], rate: u32, label: &str, probe: bool) -> Ended {
        let (samples, rate) = Decimator::all(samples, rate);
        if samples.len() < HOP {
            return Ended::Lost(format!("{label} is shorter than one hop"));
        }
        self.analysing(rate, |this, analyzer| {
            this.play(&samples, rate, label, probe, analyzer)
        })
    }

    fn play(
        &mut self,
        samples: &[f32],
        rate: u32,
        label: &str,
        probe: bool,
        analyzer: &mut Analyzer,
    ) -> Ended {
        let shown = format!("analyzing {label}");
        let mut probed = Instant::now();
        let mut setup = SoundSetup::now();
        let hop_time = Duration::from_secs_f64(HOP as f64 / rate as f64);
        let mut next = Instant::now();
        let mut pos = 0usize;
        let mut buf = [0.0f32; HOP];
        loop {
            if self.stopping() {
                return Ended::Stop;
            }
            if let Some(e) = self.check_config(analyzer) {
                return e;
            }
            if probe && probed.elapsed() > Duration::from_secs(30) {
                probed = Instant::now();
                // ALSA is asked again only when the sound setup changed: a scan opens every
                // plugin, and some print their complaints to the journal at each one.
                let now = SoundSetup::now();
                if now.is_none() || now != setup {
                    setup = now;
                    if capture::list_devices().is_ok_and(|d| !d.is_empty())
                        || (self.config.prefer_system && system_plays())
                    {
                        info!("a capture device appeared: leaving the demo loop");
                        return Ended::Reconfigure;
                    }
                }
            }
            for b in buf.iter_mut() {
                *b = samples[pos];
                pos = (pos + 1) % samples.len();
            }
            next += hop_time;
            if Instant::now().saturating_duration_since(next) > Duration::from_secs(1) {
                // Stalled (a suspended machine): go on from now.
                next = Instant::now();
            }
            self.hop(analyzer, &buf, &shown, Some(next));
        }
    }

    /// Captures from a device until it fails, stalls, or the config changes.
    fn run_device(&mut self, cap: capture::Capture, ring: rtrb::Consumer<f32>) -> Ended {
        let rate = decimate::analysis_rate(cap.rate);
        self.analysing(rate, |this, analyzer| this.capture(cap, ring, analyzer))
    }

    fn capture(
        &mut self,
        cap: capture::Capture,
        mut ring: rtrb::Consumer<f32>,
        analyzer: &mut Analyzer,
    ) -> Ended {
        let label = format!("'{}'", cap.name);
        let verb = if cap.monitor {
            "capturing"
        } else {
            "analyzing"
        };
        let mut shown = format!("{verb} {}", cap.shown);
        let mut decimator = Decimator::new(cap.rate);
        let group = HOP * decimator.factor();
        let mut buf = Vec::with_capacity(HOP);
        let mut last_callbacks = 0u64;
        let mut last_progress = Instant::now();
        // Audio analysed in the last second or so: a device faster than real time would keep
        // a real-time analysis thread busy for good.
        let (mut since, mut analysed) = (Instant::now(), 0usize);
        loop {
            if self.stopping() {
                return Ended::Stop;
            }
            if since.elapsed() >= Duration::from_secs(1) {
                let ratio = analysed as f64 / cap.rate as f64 / since.elapsed().as_secs_f64();
                if ratio > 1.5 && self.shared.live().realtime {
                    let _ = realtime::ordinary();
                    self.shared.live().realtime = false;
                    info!(device = %cap.name, "{label} delivers {ratio:.1}x faster than real time: the analysis goes on at ordinary priority");
                }
                (since, analysed) = (Instant::now(), 0);
            }
            if let Some(e) = self.check_config(analyzer) {
                return e;
            }
            if let Some((name, now)) = cap.flags.renamed() {
                shown = format!("{verb} {now}");
                let mut live = self.shared.live();
                live.device = name;
                live.capturing = now;
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
                self.hop(analyzer, &buf, &shown, None);
                analysed += group;
                worked = true;
            }
            if !worked {
                self.serve_requests(analyzer);
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
            self.refuse_requests("the source is being reopened");
            self.pet();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::park_timeout(left.min(Duration::from_secs(1)));
        }
    }

    fn set_live(&self, source: &str, device: &str, capturing: &str, rate: u32, channels: u16) {
        let mut live = self.shared.live();
        live.source = source.into();
        live.device = device.into();
        live.capturing = capturing.into();
        live.rate = rate;
        live.analysis_rate = decimate::analysis_rate(rate);
        live.channels = channels;
    }

    /// The whole thread: run the configured source, reopen on loss, until stopped.
    fn run(mut self) {
        *lock(&self.shared.thread) = Some(std::thread::current());
        // Audio first: on a busy machine an ordinary thread waits its turn behind whatever
        // holds the core, and a beat goes out that much late (docs/BENCHMARKS.md: up to 70 ms
        // at load 7, none past 10 ms at real-time priority). The capture threads are started
        // from this one and inherit its scheduling (cpal's own callback thread too).
        let realtime_guard = match realtime::lowest_fifo() {
            Ok(guard) => {
                info!("the analysis and capture run at real-time priority");
                Some(guard)
            }
            Err(e) => {
                info!(error = %e, "the analysis and capture run at ordinary priority ({e}): on a busy machine beats may go out late; an rtprio limit allows real-time (`ulimit -r`, limits.conf)");
                None
            }
        };
        self.shared.live().realtime = realtime_guard.is_some();
        self.link.apply(&self.config);
        self.shared.live().link = self.link.report();
        let mut backoff = REOPEN;
        loop {
            self.clock = StreamClock::new();
            let source = self.config.source.clone();
            let ended = match &source {
                AudioSource::Demo => self.demo("demo loop", false),
                AudioSource::File(path) => match super::offline::read_wav(path) {
                    Ok(m) => {
                        let label = format!("file {}", path.display());
                        self.set_live("file", &path.display().to_string(), &label, m.rate, 1);
                        self.run_generated(&m.samples, m.rate, &label, false)
                    }
                    Err(e) => Ended::Lost(e.to_string()),
                },
                AudioSource::Auto | AudioSource::Device => {
                    match self.open_device(&self.config.device.clone()) {
                        Ok((cap, ring)) => {
                            backoff.reset();
                            self.run_device(cap, ring)
                        }
                        // `auto` with nothing that opens as an input (no card at all, or only a
                        // `default` PCM that leads nowhere): what the machine plays if
                        // `prefer_system`, else the demo loop.
                        Err(e)
                            if source == AudioSource::Auto
                                && (matches!(e, CaptureError::NoDevice)
                                    || capture::list_devices().is_ok_and(|d| d.is_empty())) =>
                        {
                            let system = if self.config.prefer_system {
                                self.open_device(super::SYSTEM)
                            } else {
                                Err(e)
                            };
                            match system {
                                Ok((cap, ring)) => {
                                    backoff.reset();
                                    self.run_device(cap, ring)
                                }
                                Err(e) => {
                                    info!(reason = %e, "no capture device ({e}): playing the demo loop");
                                    self.demo("demo loop (no capture device)", true)
                                }
                            }
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

    /// Opens `device` (a name, or [`super::SYSTEM`]) and says what is captured.
    fn open_device(
        &self,
        device: &str,
    ) -> Result<(capture::Capture, rtrb::Consumer<f32>), CaptureError> {
        let (producer, consumer) = rtrb::RingBuffer::new(RING_SAMPLES);
        let cap = capture::open(device, producer, std::thread::current())?;
        // "capturing from 'default' at …", "capturing what plays on 'HDMI' (its monitor) at …"
        let what = if cap.monitor {
            cap.shown.clone()
        } else {
            format!("from {}", cap.shown)
        };
        let name = if cap.shown == format!("'{}'", cap.name) {
            String::new()
        } else {
            format!(" ({})", cap.name)
        };
        info!(device = %cap.name, rate = cap.rate, channels = cap.channels, "capturing {what}{name} at {} Hz, {} channel(s)", cap.rate, cap.channels);
        let source = if device.eq_ignore_ascii_case(super::SYSTEM) {
            "system"
        } else {
            "device"
        };
        self.set_live(source, &cap.name, &cap.shown, cap.rate, cap.channels);
        Ok((cap, consumer))
    }

    /// Plays the demo loop; with `probe`, looks for a capture device every 30 s and
    /// switches to it when one appears.
    fn demo(&mut self, label: &str, probe: bool) -> Ended {
        let rate = super::DEFAULT_RATE;
        self.set_live("demo", "", "the demo loop", rate, 1);
        // Made once: switching back to the demo is then as quick as leaving it.
        let samples = self
            .demo_samples
            .get_or_insert_with(|| synth::demo_loop(rate).into())
            .clone();
        self.run_generated(&samples, rate, label, probe)
    }
}

/// Whether a sound server answers with an output to capture (`prefer_system`).
fn system_plays() -> bool {
    #[cfg(target_os = "linux")]
    return super::pulse::list().is_ok_and(|s| s.system().is_some());
    #[cfg(not(target_os = "linux"))]
    false
}

fn tempo_source_name(s: super::TempoSource) -> &'static str {
    match s {
        super::TempoSource::Audio => "audio",
        super::TempoSource::Tap => "tap",
        super::TempoSource::Link => "link",
        super::TempoSource::Locked => "locked",
    }
}

/// One tempo command on the analyzer, `at` seconds of stream time.
fn run_control(analyzer: &mut Analyzer, control: Control, at: f64) -> Outcome {
    let state = |a: &Analyzer| {
        json!({
            "tempo_source": a.tempo_source(),
            "bpm": a.frame().bpm,
            "nudge_ms": a.nudged() * 1000.0,
        })
    };
    match control {
        Control::Tap => {
            let set = analyzer.tap(at);
            let mut data = state(analyzer);
            data["tempo_set"] = set.into();
            Outcome::ok(data)
        }
        Control::Scale(f) => {
            if analyzer.scale_tempo(f) {
                Outcome::ok(state(analyzer))
            } else {
                Outcome::fail("no tempo yet to double or halve")
            }
        }
        Control::Nudge(secs) => {
            analyzer.nudge(secs);
            Outcome::ok(state(analyzer))
        }
        Control::Resync => {
            if analyzer.resync(at) {
                Outcome::ok(state(analyzer))
            } else {
                Outcome::fail("no beat yet to make a downbeat")
            }
        }
        Control::SetTempo(bpm, lock) => {
            analyzer.set_tempo(bpm, lock);
            Outcome::ok(state(analyzer))
        }
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
        let at = Instant::now();
        let control = match cmd {
            AudioCommand::ListDevices => {
                return match tokio::task::spawn_blocking(|| {
                    capture::list_everything().map(|d| (d, capture::alsa_pcms()))
                })
                .await
                {
                    Ok(Ok((listing, pcms))) => {
                        let (server, server_error) = match listing.sound_server {
                            Ok(name) => (Some(name), None),
                            Err(e) => (None, Some(e)),
                        };
                        Outcome::ok(json!({
                            "devices": listing.devices,
                            "system": listing.system,
                            "sound_server": server,
                            "sound_server_error": server_error,
                            "alsa_pcms": pcms,
                        }))
                    }
                    Ok(Err(e)) => Outcome::fail(e.to_string()),
                    Err(e) => Outcome::fail(format!("list_devices failed: {e}")),
                }
            }
            AudioCommand::Tap => Control::Tap,
            AudioCommand::TempoDouble => Control::Scale(2.0),
            AudioCommand::TempoHalf => Control::Scale(0.5),
            AudioCommand::Nudge { ms } if ms.is_finite() && ms.abs() <= 1000.0 => {
                Control::Nudge(ms / 1000.0)
            }
            AudioCommand::Nudge { ms } => {
                return Outcome::bad_argument("ms", format!("must be -1000..=1000, not {ms}"))
            }
            AudioCommand::Resync => Control::Resync,
            AudioCommand::SetTempo { bpm, lock } if bpm == 0.0 || (20.0..=400.0).contains(&bpm) => {
                Control::SetTempo(bpm, lock.unwrap_or(false))
            }
            AudioCommand::SetTempo { bpm, .. } => {
                return Outcome::bad_argument(
                    "bpm",
                    format!("must be 20..=400 (or 0: the audio decides), not {bpm}"),
                )
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.requests.send(Pending { control, at, reply }).is_err() {
            return Outcome::fail("the analysis thread is not running");
        }
        if let Some(t) = lock(&self.shared.thread).as_ref() {
            t.unpark();
        }
        match tokio::time::timeout(Duration::from_secs(2), answer).await {
            Ok(Ok(outcome)) => outcome,
            _ => Outcome::fail("the analysis thread did not answer within 2 s"),
        }
    }
}

/// Its entry in the registry.
pub const AUDIO: WorkerInfo = WorkerInfo {
    bus_name: "audio_analyzer",
    binary: "vj-audio",
    config_section: "audio",
    osc_in: None,
    http_port: None,
    starts_with_target: true,
    check_config: crate::config::check::<crate::audio::AudioConfig>,
};

impl Worker for AudioAnalyzer {
    const INFO: &'static WorkerInfo = &AUDIO;
    type Config = AudioConfig;
    type Handle = AudioHandle;

    async fn start(ctx: &Context<AudioConfig>) -> anyhow::Result<(Self, AudioHandle)> {
        // Before any device is opened: ALSA and JACK speak through our log, once per message.
        #[cfg(target_os = "linux")]
        super::library_log::route();
        let shared = Arc::new(Readout::default());
        let mut config_rx = ctx.config.clone();
        let config = config_rx.borrow_and_update().clone();
        let (requests, requests_rx) = std::sync::mpsc::channel();
        let analysis = Analysis {
            shared: shared.clone(),
            osc: ctx.osc.clone(),
            watchdog: ctx.watchdog.clone(),
            status: ctx.status.clone(),
            stop: ctx.stop.clone(),
            config_rx,
            config,
            last_pet: Instant::now() - Duration::from_secs(2),
            msgs: Vec::with_capacity(12),
            window: (0, Instant::now()),
            shown: None,
            rate_off: 0,
            requests: requests_rx,
            clock: StreamClock::new(),
            link: Link::default(),
            kept: None,
            demo_samples: None,
        };
        Ok((AudioAnalyzer { analysis }, AudioHandle { shared, requests }))
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
