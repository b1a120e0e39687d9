//! Live capture through cpal. The audio callback only mixes to mono and pushes into a
//! lock-free ring (rtrb): it never allocates, locks or blocks. Errors raise a flag the
//! analysis thread reads, which then reopens the device with back-off.
//!
//! Each stream lives on a thread of its own, from open to close: a device wedged in a driver
//! call can block opening it or cpal's teardown (which joins the stream's thread) for ever,
//! and then only that thread waits; the analysis goes on, degraded, and reopens.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use serde::Serialize;

pub use super::stream::{Capture, CaptureFlags, Kind};

/// Samples the ring holds: 2 s at 48 kHz, so a slow analysis hop never loses audio.
pub const RING_SAMPLES: usize = 96_000;
/// How long opening a device may take before it counts as failed.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no audio input device on this machine")]
    NoDevice,
    #[error("no input device matches {wanted:?}: the inputs are {inputs}; and ALSA cannot open {wanted:?} as a PCM: {alsa}")]
    NoMatch {
        wanted: String,
        /// What exists, as a person reads it: cpal's inputs, and ALSA's PCMs.
        inputs: String,
        alsa: String,
    },
    #[error("cannot list audio devices: {0}")]
    Devices(String),
    #[error("input device {device:?} cannot be opened: {message}")]
    Open { device: String, message: String },
    /// `device = "system"`: no sound server, or it has no output to capture.
    #[error("cannot capture what this machine plays (audio.device = \"system\"): {0}")]
    System(String),
}

/// An input device (or a sound server's source) as `list_devices` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub name: String,
    /// The sound server's description ("Monitor of Built-in Audio Analog Stereo").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub kind: Kind,
    /// For a monitor: the output's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub default: bool,
    pub channels: u16,
    pub rate: u32,
    /// Who offers it: cpal's host ("ALSA", "CoreAudio") or the sound server ("pulseaudio").
    pub via: String,
}

/// The input devices of the default host.
pub fn list_devices() -> Result<Vec<DeviceInfo>, CaptureError> {
    let host = cpal::default_host();
    let via = host.id().name().to_string();
    let default = host
        .default_input_device()
        .and_then(|d| d.name().ok())
        .unwrap_or_default();
    let devices = host
        .input_devices()
        .map_err(|e| CaptureError::Devices(e.to_string()))?;
    Ok(devices
        .filter_map(|d| {
            let name = d.name().ok()?;
            let config = d.default_input_config().ok()?;
            Some(DeviceInfo {
                default: name == default,
                name,
                description: None,
                kind: Kind::Input,
                output: None,
                channels: config.channels(),
                rate: config.sample_rate().0,
                via: via.clone(),
            })
        })
        .collect())
}

/// What `list_devices` answers: cpal's inputs, then the sound server's inputs and monitors
/// (or why there is no server), and what `device = "system"` captures now.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub devices: Vec<DeviceInfo>,
    /// The sound server's name, or why none answered (not Linux: "none on this system").
    pub sound_server: Result<String, String>,
    /// What `device = "system"` captures now ("what plays on 'Built-in Audio…'").
    pub system: Option<String>,
}

/// Everything a user can name: cpal's inputs and the sound server's sources.
pub fn list_everything() -> Result<Listing, CaptureError> {
    let mut devices = list_devices()?;
    #[cfg(target_os = "linux")]
    let (sound_server, system) = match super::pulse::list() {
        Ok(server) => {
            let system = server.system().map(super::pulse::describe);
            devices.extend(server.sources.into_iter().map(|s| DeviceInfo {
                name: s.name,
                description: Some(s.description),
                kind: s.kind,
                output: s.output,
                default: s.default,
                channels: s.channels.into(),
                rate: s.rate,
                via: server.name.clone(),
            }));
            (Ok(server.name), system)
        }
        Err(e) => (Err(e), None),
    };
    #[cfg(not(target_os = "linux"))]
    let (sound_server, system) = (Err("none on this system".to_string()), None);
    devices.dedup_by(|a, b| a.name == b.name && a.via == b.via);
    Ok(Listing {
        devices,
        sound_server,
        system,
    })
}

fn pick_device(host: &cpal::Host, wanted: &str) -> Result<cpal::Device, CaptureError> {
    if wanted.is_empty() {
        if let Some(d) = host.default_input_device() {
            return Ok(d);
        }
    }
    let mut devices = host
        .input_devices()
        .map_err(|e| CaptureError::Devices(e.to_string()))?
        .peekable();
    if devices.peek().is_none() {
        return Err(CaptureError::NoDevice);
    }
    let needle = wanted.to_lowercase();
    devices
        .find(|d| d.name().is_ok_and(|n| n.to_lowercase().contains(&needle)))
        .ok_or_else(|| CaptureError::NoMatch {
            wanted: wanted.to_string(),
            inputs: String::new(),
            alsa: String::new(),
        })
}

/// The PCM names ALSA's configuration defines (Linux; none elsewhere): `audio.device` may name
/// any of them, listed by cpal or not.
pub fn alsa_pcms() -> Vec<String> {
    #[cfg(target_os = "linux")]
    return super::library_log::pcm_names();
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Every input a user can name, for an error message: cpal's devices, then ALSA's PCMs.
fn what_exists() -> String {
    let mut names: Vec<String> = list_devices()
        .map(|d| d.into_iter().map(|d| d.name).collect())
        .unwrap_or_default();
    #[cfg(target_os = "linux")]
    if let Ok(server) = super::pulse::list() {
        names.extend(server.sources.into_iter().map(|s| s.description));
    }
    for pcm in alsa_pcms() {
        if !names.contains(&pcm) {
            names.push(pcm);
        }
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The stream config: 16-bit or float at 44.1 kHz when the device offers it (the rate SPEC
/// section 4 is written for), else the device's default; any channel count, mixed to mono.
fn pick_config(device: &cpal::Device) -> Result<cpal::SupportedStreamConfig, String> {
    let default = device.default_input_config().map_err(|e| e.to_string())?;
    let want = cpal::SampleRate(super::DEFAULT_RATE);
    let ranges: Vec<_> = device
        .supported_input_configs()
        .map_err(|e| e.to_string())?
        .collect();
    for format in [SampleFormat::I16, SampleFormat::F32] {
        for channels in [2, 1] {
            if let Some(r) = ranges.iter().find(|r| {
                r.sample_format() == format
                    && r.channels() == channels
                    && r.min_sample_rate() <= want
                    && want <= r.max_sample_rate()
            }) {
                return Ok(r.with_sample_rate(want));
            }
        }
    }
    Ok(default)
}

/// Opens the input whose name contains `wanted` ("" = the default) — a cpal device, else an
/// ALSA PCM of that name — and starts pushing mono samples into `ring`, unparking `reader`
/// after each callback.
pub fn open(
    wanted: &str,
    ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    if wanted.eq_ignore_ascii_case(super::config::SYSTEM) {
        return open_system(ring, reader);
    }
    // The sound server's own sources first: one short question to it (none when there is no
    // server), where cpal would open every ALSA PCM to list them (about a second) and then
    // reach the server's source through its ALSA plugin anyway.
    if !wanted.is_empty() && server_has(wanted) {
        return open_server_source(wanted, ring, reader);
    }
    let (opened_tx, opened) = mpsc::channel();
    let wanted_here = wanted.to_string();
    let reader_here = reader.clone();
    let spawned = std::thread::Builder::new()
        .name("vj-audio-capture".into())
        .spawn(move || {
            // Started by the analysis thread, real-time where allowed: cpal's own thread,
            // started from this one, would inherit that, and a device that delivers faster
            // than real time (ALSA's file plugin over `null`) would then hold a core at
            // real-time priority. The sound server's capture (`pulse`), paced by the server,
            // keeps it.
            let _ = crate::service::realtime::ordinary();
            let (close, closed) = mpsc::channel::<()>();
            match open_here(&wanted_here, ring, reader_here, close) {
                Ok((stream, capture)) => {
                    if opened_tx.send(Ok(capture)).is_ok() {
                        // Until the `Capture` is dropped (or the analysis thread is gone).
                        let _ = closed.recv();
                    }
                    drop(stream);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            }
        });
    let open_err = |message: String| CaptureError::Open {
        device: if wanted.is_empty() { "default" } else { wanted }.to_string(),
        message,
    };
    spawned.map_err(|e| open_err(format!("cannot start its thread: {e}")))?;
    let result = opened.recv_timeout(OPEN_TIMEOUT).unwrap_or_else(|_| {
        Err(Unopened {
            error: open_err(format!(
                "opening it did not finish in {} s",
                OPEN_TIMEOUT.as_secs()
            )),
            ring: None,
        })
    });
    match result {
        Ok(capture) => Ok(capture),
        // A name cpal does not list may still be an ALSA PCM of the user's (~/.asoundrc).
        Err(Unopened {
            error: CaptureError::NoMatch { .. } | CaptureError::NoDevice,
            ring: Some(ring),
        }) if !wanted.is_empty() => open_by_name(wanted, ring, reader),
        Err(u) => Err(u.error),
    }
}

/// Why a device did not open, and the ring back when nothing took it yet.
struct Unopened {
    error: CaptureError,
    ring: Option<rtrb::Producer<f32>>,
}

/// Opens and starts the stream on the calling thread, which must keep it until `close` (held
/// by the returned `Capture`) is dropped.
fn open_here(
    wanted: &str,
    ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
    close: mpsc::Sender<()>,
) -> Result<(cpal::Stream, Capture), Unopened> {
    let host = cpal::default_host();
    let device = match pick_device(&host, wanted) {
        Ok(d) => d,
        Err(error) => {
            return Err(Unopened {
                error,
                ring: Some(ring),
            })
        }
    };
    let name = device.name().unwrap_or_else(|_| "unnamed input".into());
    let open_err = |message: String| Unopened {
        error: CaptureError::Open {
            device: name.clone(),
            message,
        },
        ring: None,
    };
    let supported = pick_config(&device).map_err(open_err)?;
    let config: cpal::StreamConfig = supported.config();
    let flags = Arc::new(CaptureFlags::default());
    let stream = match supported.sample_format() {
        SampleFormat::I16 => build::<i16>(&device, &config, ring, flags.clone(), reader),
        SampleFormat::I32 => build::<i32>(&device, &config, ring, flags.clone(), reader),
        SampleFormat::U16 => build::<u16>(&device, &config, ring, flags.clone(), reader),
        SampleFormat::F32 => build::<f32>(&device, &config, ring, flags.clone(), reader),
        SampleFormat::F64 => build::<f64>(&device, &config, ring, flags.clone(), reader),
        other => Err(format!("sample format {other} is not supported")),
    }
    .map_err(open_err)?;
    stream.play().map_err(|e| open_err(e.to_string()))?;
    let capture = Capture {
        _close: close,
        shown: format!("'{name}'"),
        monitor: false,
        name,
        rate: config.sample_rate.0,
        channels: config.channels,
        flags,
    };
    Ok((stream, capture))
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut ring: rtrb::Producer<f32>,
    flags: Arc<CaptureFlags>,
    reader: std::thread::Thread,
) -> Result<cpal::Stream, String>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = config.channels.max(1) as usize;
    let scale = 1.0 / channels as f32;
    let err_flags = flags.clone();
    device
        .build_input_stream(
            config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                // Realtime context: no allocation, no locks, no blocking (unparking the reader
                // is an atomic swap and at most a futex wake).
                flags.callbacks.fetch_add(1, Ordering::Relaxed);
                let mut lost = 0u64;
                for frame in data.chunks_exact(channels) {
                    let mono = frame.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() * scale;
                    if ring.push(mono).is_err() {
                        lost += 1;
                    }
                }
                if lost > 0 {
                    flags.overruns.fetch_add(lost, Ordering::Relaxed);
                }
                reader.unpark();
            },
            // Not the audio path: cpal calls this instead of the data callback, and only the
            // first error is kept (formatting it allocates, once).
            move |err| {
                if err_flags.error.get().is_none() {
                    let _ = err_flags.error.set(err.to_string());
                }
            },
            None,
        )
        .map_err(|e| e.to_string())
}

/// What the machine plays: the default output's monitor, through the sound server.
#[cfg(target_os = "linux")]
fn open_system(
    ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    super::pulse::open(super::pulse::Wanted::System, ring, reader, OPEN_TIMEOUT)
        .map_err(CaptureError::System)
}

#[cfg(not(target_os = "linux"))]
fn open_system(
    _ring: rtrb::Producer<f32>,
    _reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    Err(CaptureError::System(
        "on macOS, route the output through a loopback device (BlackHole, Loopback) and name \
         it: audio.device = \"BlackHole\""
            .into(),
    ))
}

/// Whether the sound server has a source `wanted` names.
#[cfg(target_os = "linux")]
fn server_has(wanted: &str) -> bool {
    super::pulse::list().is_ok_and(|s| s.find(wanted).is_some())
}

#[cfg(not(target_os = "linux"))]
fn server_has(_wanted: &str) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn open_server_source(
    wanted: &str,
    ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    let named = super::pulse::Wanted::Named(wanted.to_string());
    super::pulse::open(named, ring, reader, OPEN_TIMEOUT).map_err(|message| CaptureError::Open {
        device: wanted.to_string(),
        message,
    })
}

#[cfg(not(target_os = "linux"))]
fn open_server_source(
    wanted: &str,
    _ring: rtrb::Producer<f32>,
    _reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    Err(CaptureError::Open {
        device: wanted.to_string(),
        message: "no sound server on this system".into(),
    })
}

#[cfg(target_os = "linux")]
fn open_by_name(
    wanted: &str,
    ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    super::alsa_pcm::open(wanted, ring, reader, OPEN_TIMEOUT).map_err(|alsa| {
        CaptureError::NoMatch {
            wanted: wanted.to_string(),
            inputs: what_exists(),
            alsa,
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn open_by_name(
    wanted: &str,
    _ring: rtrb::Producer<f32>,
    _reader: std::thread::Thread,
) -> Result<Capture, CaptureError> {
    Err(CaptureError::NoMatch {
        wanted: wanted.to_string(),
        inputs: what_exists(),
        alsa: "not on this system".into(),
    })
}
