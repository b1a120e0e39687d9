//! `[audio]` of `vj.toml`: where the audio comes from and what the analysis computes.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Section;

/// `audio.source`: the capture device, else the demo loop (`auto`); only the device; only the
/// demo loop; or a WAV file played at real time (`"file:PATH"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AudioSource {
    Auto,
    Device,
    Demo,
    File(PathBuf),
}

impl TryFrom<String> for AudioSource {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "auto" => Ok(AudioSource::Auto),
            "device" => Ok(AudioSource::Device),
            "demo" => Ok(AudioSource::Demo),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(AudioSource::File(PathBuf::from(p))),
                _ => Err(format!(
                    "audio.source must be auto, device, demo or file:PATH, not {s:?}"
                )),
            },
        }
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Auto => f.write_str("auto"),
            AudioSource::Device => f.write_str("device"),
            AudioSource::Demo => f.write_str("demo"),
            AudioSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl From<AudioSource> for String {
    fn from(s: AudioSource) -> String {
        s.to_string()
    }
}

/// `audio.link.mode`: Ableton Link off, as a peer whose session follows the tracked tempo and
/// downbeat (`publish`), or following the session when another peer is in it (`follow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    Off,
    Publish,
    Follow,
}

/// `[audio.link]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub mode: LinkMode,
    /// Beats per Link quantum: beat 0 of each is a downbeat; 0 = `beats_per_bar`.
    pub quantum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    pub source: AudioSource,
    /// An input by name or description substring, an ALSA PCM, or [`SYSTEM`]; "" = default.
    pub device: String,
    /// `source = "auto"` with no input: the system output's monitor before the demo loop.
    pub prefer_system: bool,
    /// Feature toggles: which `/audio/*` messages are computed and sent.
    pub spectrum: bool,
    pub bpm: bool,
    pub pitch: bool,
    pub structure: bool,
    /// `/audio/phase` and `/audio/count`.
    pub phase: bool,
    /// `/audio/kick`, `/audio/snare`, `/audio/hat`.
    pub drums: bool,
    pub beats_per_bar: u32,
    pub phrase_bars: u32,
    /// Beats, phases and counts go out this many ms early (negative: late).
    pub latency_ms: f64,
    pub link: LinkConfig,
    pub bpm_min: f64,
    pub bpm_max: f64,
    /// Release smoothing of `/audio/levels`, 0..=0.99.
    pub smoothing: f64,
    /// The 8 edges in Hz of the 7 bands of `/audio/levels`.
    pub band_edges: Vec<f64>,
}

/// `audio.device` for what the machine plays: the default output's monitor.
pub const SYSTEM: &str = "system";

impl Default for AudioConfig {
    /// `[audio]` of `etc/vj.toml`.
    fn default() -> Self {
        crate::config::builtin("audio")
    }
}

impl AudioConfig {
    /// Whether the device named is what the machine plays.
    pub fn wants_system(&self) -> bool {
        self.device.eq_ignore_ascii_case(SYSTEM)
    }

    /// Beats per Link quantum: `audio.link.quantum`, or (0) `beats_per_bar`.
    pub fn link_quantum(&self) -> f64 {
        if self.link.quantum == 0.0 {
            self.beats_per_bar as f64
        } else {
            self.link.quantum
        }
    }
}

impl Section for AudioConfig {
    fn validate(&self) -> Result<(), String> {
        if !(30.0..=300.0).contains(&self.bpm_min)
            || !(30.0..=300.0).contains(&self.bpm_max)
            || self.bpm_max < self.bpm_min * 1.5
        {
            return Err(format!(
                "audio.bpm_min/bpm_max must lie in 30..=300 with bpm_max ≥ 1.5 × bpm_min, not {}/{}",
                self.bpm_min, self.bpm_max
            ));
        }
        if !(1..=16).contains(&self.beats_per_bar) {
            return Err(format!(
                "audio.beats_per_bar must be 1..=16, not {}",
                self.beats_per_bar
            ));
        }
        if !(1..=64).contains(&self.phrase_bars) {
            return Err(format!(
                "audio.phrase_bars must be 1..=64, not {}",
                self.phrase_bars
            ));
        }
        if !(-1000.0..=1000.0).contains(&self.latency_ms) {
            return Err(format!(
                "audio.latency_ms must be -1000..=1000, not {}",
                self.latency_ms
            ));
        }
        if self.link.mode != LinkMode::Off && !super::link::BUILT {
            return Err(format!(
                "audio.link.mode {:?}: this vj-audio was built without Ableton Link (cargo \
                 feature `link`); use \"off\" or a build with it",
                super::link::mode_name(self.link.mode)
            ));
        }
        let q = self.link.quantum;
        if q != 0.0 && !(1.0..=16.0).contains(&q) {
            return Err(format!(
                "audio.link.quantum must be 1..=16 beats (or 0: beats_per_bar), not {q}"
            ));
        }
        if !(0.0..=0.99).contains(&self.smoothing) {
            return Err(format!(
                "audio.smoothing must be 0..=0.99, not {}",
                self.smoothing
            ));
        }
        if self.band_edges.len() != 8
            || self.band_edges.windows(2).any(|w| w[0] >= w[1])
            || self.band_edges[0] <= 0.0
        {
            return Err(format!(
                "audio.band_edges must be 8 ascending frequencies in Hz, not {:?}",
                self.band_edges
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_reads_and_writes_as_its_text() {
        for (text, source) in [
            ("auto", AudioSource::Auto),
            ("device", AudioSource::Device),
            ("demo", AudioSource::Demo),
            (
                "file:/music/a.wav",
                AudioSource::File("/music/a.wav".into()),
            ),
        ] {
            assert_eq!(AudioSource::try_from(text.to_string()), Ok(source.clone()));
            assert_eq!(source.to_string(), text);
        }
        for bad in ["file:", "mic", ""] {
            let err = AudioSource::try_from(bad.to_string()).unwrap_err();
            assert!(err.starts_with("audio.source must be"), "{err}");
        }
    }

    #[test]
    fn a_bad_source_in_a_file_names_the_key() {
        let mut t = crate::config::defaults();
        crate::config::merge_section(&mut t, "audio", "source = 'mic'".parse().unwrap()).unwrap();
        let err = crate::config::section::<AudioConfig>(&t, "audio", "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`audio.source`") && err.contains("\"mic\""),
            "{err}"
        );
    }

    #[test]
    fn ranges_are_checked() {
        let c = AudioConfig {
            smoothing: 1.5,
            ..AudioConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("audio.smoothing"));
        let c = AudioConfig {
            band_edges: vec![1.0, 2.0],
            ..AudioConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("audio.band_edges"));
        let c = AudioConfig {
            link: LinkConfig {
                mode: LinkMode::Follow,
                quantum: 0.5,
            },
            ..AudioConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("audio.link.quantum"));
    }

    #[test]
    fn link_keys_are_checked_and_the_quantum_defaults_to_the_bar() {
        let read = |text: &str| {
            let mut t = crate::config::defaults();
            crate::config::merge_section(&mut t, "audio", text.parse().unwrap())
                .map_err(|e| e.to_string())?;
            crate::config::section::<AudioConfig>(&t, "audio", "test").map_err(|e| e.to_string())
        };
        let c = read("beats_per_bar = 3\nlink = { mode = 'follow' }").unwrap();
        assert_eq!(c.link.mode, LinkMode::Follow);
        assert_eq!(c.link_quantum(), 3.0);
        let c = read("link = { mode = 'publish', quantum = 8 }").unwrap();
        assert_eq!(c.link_quantum(), 8.0);
        for (bad, key) in [
            ("link = { mode = 'lead' }", "audio.link.mode"),
            ("link = { mode = 1 }", "audio.link.mode"),
            ("link = { quantum = 0.5 }", "audio.link.quantum"),
            ("link = { quantum = -4 }", "audio.link.quantum"),
            ("link = { quantum = 17.5 }", "audio.link.quantum"),
            ("link = { quantum = 'bar' }", "audio.link.quantum"),
            ("link = { quantum = nan }", "audio.link.quantum"),
        ] {
            let err = read(bad).unwrap_err();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }
}
