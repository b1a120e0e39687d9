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

/// Reads any PCM/float WAV, averaging its channels. hound reads the header; the data of the two
/// common layouts (16-bit integers, 32-bit floats) is converted in bulk, the rest sample by
/// sample through hound (which took a third of `vj-audio analyze`'s time on a 16-bit file).
pub fn read_wav(path: &Path) -> Result<Mono, WavError> {
    let err = |source| WavError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|e| err(hound::Error::IoError(e)))?;
    let mut cursor = std::io::Cursor::new(&bytes[..]);
    let reader = hound::WavReader::new(&mut cursor).map_err(err)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(WavError::Empty {
            path: path.to_path_buf(),
        });
    }
    let ch = spec.channels as usize;
    let count = reader.len() as usize;
    let start = reader.into_inner().position() as usize;
    let mix = |frame: &mut dyn Iterator<Item = f32>| frame.sum::<f32>() / ch as f32;
    let samples: Vec<f32> = match (bulk_layout(&bytes, start, count), spec.sample_format) {
        (Some((data, 2)), hound::SampleFormat::Int) if spec.bits_per_sample == 16 => data
            .chunks_exact(2 * ch)
            .map(|f| {
                mix(&mut f
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]) as f32 / 32768.0))
            })
            .collect(),
        (Some((data, 4)), hound::SampleFormat::Float) => data
            .chunks_exact(4 * ch)
            .map(|f| {
                mix(&mut f
                    .chunks_exact(4)
                    .map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])))
            })
            .collect(),
        _ => {
            let reader = hound::WavReader::new(std::io::Cursor::new(&bytes[..])).map_err(err)?;
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
            interleaved
                .chunks_exact(ch)
                .map(|f| mix(&mut f.iter().copied()))
                .collect()
        }
    };
    Ok(Mono {
        rate: spec.sample_rate,
        samples,
    })
}

/// The data chunk hound stopped at (`start`, holding `count` samples) and the bytes each
/// sample takes there, read from the chunk's own header just before it: `None` unless it is
/// whole and evenly divided.
fn bulk_layout(bytes: &[u8], start: usize, count: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(start.checked_sub(8)?..start)?;
    if &header[..4] != b"data" || count == 0 {
        return None;
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let data = bytes.get(start..start.checked_add(len)?)?;
    (len % count == 0).then_some((data, len / count))
}

/// Runs the analyzer over `samples` (at `settings.rate`) hop by hop, calling `each` with every
/// frame. Above 88 kHz the samples are decimated first, as live.
pub fn analyze(samples: &[f32], settings: AnalysisSettings, mut each: impl FnMut(&AudioFrame)) {
    analyze_with(samples, settings, |a| each(a.frame()));
}

/// As `analyze`, calling `each` with the analyzer after every hop (its frame and its trackers'
/// state).
pub fn analyze_with(samples: &[f32], settings: AnalysisSettings, mut each: impl FnMut(&Analyzer)) {
    let (samples, rate) = Decimator::all(samples, settings.rate);
    let mut a = Analyzer::new(AnalysisSettings { rate, ..settings });
    for hop in samples.chunks_exact(HOP) {
        a.process(hop);
        each(&a);
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
    /// One line per beat the bar tracker weighs as a "1" (a bar after it sounds): its number
    /// and time, the change of harmony above the bass and in it, and its kick and snare at each
    /// of its places (`bar::SUBS` a beat). What `scripts/bar-template.py` fits the bar's
    /// weights to.
    BarEvidence,
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
    let mut last_scored = None;
    let mut result = Ok(());
    analyze_with(&mono.samples, settings, |a| {
        if result.is_err() {
            return;
        }
        let f = a.frame();
        last_bpm = f.bpm;
        result = match output {
            Output::Json => serde_json::to_string(f)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(out, "{line}")),
            Output::Beats if f.beat => writeln!(out, "{:.4} {}", f.beat_time, f.count[0]),
            Output::Beats => Ok(()),
            Output::BarEvidence => match a.bar_evidence() {
                Some(e) if last_scored != Some(e.number) => {
                    last_scored = Some(e.number);
                    let pattern = e.pattern.iter().flatten().map(|x| format!(" {x:.4}"));
                    writeln!(
                        out,
                        "{} {:.4} {:.4} {:.4}{}",
                        e.number,
                        e.time,
                        e.harmony,
                        e.bass,
                        pattern.collect::<String>()
                    )
                }
                _ => Ok(()),
            },
        };
    });
    result?;
    if output == Output::Beats {
        writeln!(out, "tempo {last_bpm:.2}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV of `frames` stereo frames (left rising, right falling) in `spec`'s layout.
    fn write(dir: &Path, name: &str, spec: hound::WavSpec, frames: usize) -> PathBuf {
        let path = dir.join(name);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..frames {
            let (l, r) = (i as f32 / frames as f32, -0.5 * i as f32 / frames as f32);
            for x in [l, r] {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(x).unwrap(),
                    (_, 8) => w.write_sample((x * 127.0) as i8).unwrap(),
                    (_, 16) => w.write_sample((x * 32767.0) as i16).unwrap(),
                    (_, bits) => w
                        .write_sample((x * ((1i64 << (bits - 1)) - 1) as f32) as i32)
                        .unwrap(),
                }
            }
        }
        w.finalize().unwrap();
        path
    }

    #[test]
    fn every_layout_reads_as_the_mean_of_its_channels() {
        let dir = tempfile::tempdir().unwrap();
        let frames = 4000;
        for (format, bits) in [
            (hound::SampleFormat::Int, 16),
            (hound::SampleFormat::Float, 32),
            (hound::SampleFormat::Int, 24),
            (hound::SampleFormat::Int, 8),
        ] {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 48_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            let path = write(dir.path(), &format!("{bits}.wav"), spec, frames);
            let mono = read_wav(&path).unwrap();
            assert_eq!((mono.rate, mono.samples.len()), (48_000, frames), "{bits}");
            let tolerance = 2.0 / (1u64 << (bits - 1)) as f32;
            for (i, &x) in mono.samples.iter().enumerate() {
                let want = 0.25 * i as f32 / frames as f32;
                assert!(
                    (x - want).abs() <= tolerance,
                    "{bits} bits, frame {i}: {x} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_cut_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path = write(dir.path(), "cut.wav", spec, 1000);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 501]).unwrap();
        let e = read_wav(&path).err().expect("a cut file fails").to_string();
        assert!(e.contains("cut.wav"), "{e}");
    }
}
