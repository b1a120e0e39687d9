//! Offline analysis (`vj-audio analyze FILE.wav`): reads a WAV, mixes it to mono and runs the
//! very same [`Analyzer`] hop by hop, as the live worker does.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::analyzer::{AnalysisSettings, Analyzer, AudioFrame};
use super::decimate::Decimator;
use super::HOP;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read {path}: {source} (vj-audio reads PCM or float WAV files)")]
    Read { path: PathBuf, source: hound::Error },
    #[error("{path} has no audio channels or a zero sample rate")]
    Empty { path: PathBuf },
}

/// Mono samples and their rate.
pub struct Mono {
    pub rate: u32,
    pub samples: Vec<f32>,
}

/// Reads any PCM/float WAV, averaging its channels.
pub fn read_wav(path: &Path) -> Result<Mono, WavError> {
    let err = |source| WavError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(WavError::Empty {
            path: path.to_path_buf(),
        });
    }
    let ch = spec.channels as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
    };
    let samples = interleaved
        .chunks_exact(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    Ok(Mono {
        rate: spec.sample_rate,
        samples,
    })
}

/// Runs the analyzer over `samples` (at `settings.rate`) hop by hop, calling `each` with every
/// frame. Above 88 kHz the samples are decimated first, as live.
pub fn analyze(samples: &[f32], settings: AnalysisSettings, mut each: impl FnMut(&AudioFrame)) {
    let (samples, rate) = Decimator::all(samples, settings.rate);
    let mut a = Analyzer::new(AnalysisSettings { rate, ..settings });
    for hop in samples.chunks_exact(HOP) {
        each(a.process(hop));
    }
}

/// What `vj-audio analyze` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One JSON object per frame.
    Json,
    /// One `time position` line per beat (seconds where the beat sounds; its place in the
    /// bar, 1 = downbeat), then `tempo <bpm>`.
    Beats,
}

/// The whole `analyze` command.
pub fn run(
    path: &Path,
    output: Output,
    settings: AnalysisSettings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mono = read_wav(path)?;
    let settings = AnalysisSettings {
        rate: mono.rate,
        ..settings
    };
    let mut last_bpm = 0.0f32;
    let mut result = Ok(());
    analyze(&mono.samples, settings, |f| {
        if result.is_err() {
            return;
        }
        last_bpm = f.bpm;
        result = match output {
            Output::Json => serde_json::to_string(f)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(out, "{line}")),
            Output::Beats if f.beat => writeln!(out, "{:.4} {}", f.beat_time, f.count[0]),
            Output::Beats => Ok(()),
        };
    });
    result?;
    if output == Output::Beats {
        writeln!(out, "tempo {last_bpm:.2}")?;
    }
    out.flush()?;
    Ok(())
}
