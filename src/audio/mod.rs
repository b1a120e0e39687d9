//! The audio analyzer (`vj-audio`): capture, causal analysis stages (aubio-style units, each
//! `new(rate, …)` then `process(one hop)` then read results) and the worker that sends `/audio/*`.

pub mod acf;
#[cfg(target_os = "linux")]
mod alsa_pcm;
pub mod analyzer;
pub mod autogain;
pub mod bands;
pub mod bar;
pub mod beat;
pub mod capture;
mod config;
pub mod decimate;
pub mod drums;
pub mod eval;
#[cfg(target_os = "linux")]
pub mod library_log;
pub mod link;
pub mod meter;
pub mod offline;
pub mod onset;
pub mod pitch;
#[cfg(target_os = "linux")]
pub mod pulse;
mod setup;
pub mod spectrum;
pub mod stream;
pub mod structure;
pub mod synth;
pub mod tempo;
pub mod worker;

pub use analyzer::{AnalysisSettings, Analyzer, AudioFrame, TempoSource};
pub use config::{AudioConfig, AudioSource, LinkConfig, LinkMode, SYSTEM};
pub use worker::AudioAnalyzer;

/// Samples per analysis hop: at 44.1 kHz one frame every 11.6 ms (≈86 fps).
pub const HOP: usize = 512;
/// The rate SPEC section 4 is written for; other device rates up to 88 kHz are analysed at
/// their own rate, higher ones decimated by a power of two (`decimate`).
pub const DEFAULT_RATE: u32 = 44_100;
