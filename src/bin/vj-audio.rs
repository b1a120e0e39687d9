//! `vj-audio`: the audio analyzer worker (bus name `audio_analyzer`), plus its offline tools:
//! `analyze FILE.wav [--json|--beats]`, `gen-corpus DIR`, `eval DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vj::audio::{eval, offline, AnalysisSettings};

#[derive(Parser)]
#[command(
    name = "vj-audio",
    about = "Live audio analysis over OSC; run without a command to serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Analyse a WAV file with the live code: one JSON frame per line, or beat times.
    Analyze {
        file: PathBuf,
        /// One JSON object per frame (the default).
        #[arg(long, conflicts_with = "beats")]
        json: bool,
        /// Beat times in seconds, one per line, then `tempo <bpm>`.
        #[arg(long, conflicts_with = "bar_evidence")]
        beats: bool,
        /// What the bar tracker weighs of each beat as a "1", one line per beat (for fitting
        /// its weights: scripts/bar-template.py).
        #[arg(long, conflicts_with = "json")]
        bar_evidence: bool,
    },
    /// Write the synthetic evaluation corpus (WAV + .beats ground truth) into DIR.
    GenCorpus {
        dir: PathBuf,
        /// Clips per genre.
        #[arg(long, default_value_t = 4)]
        clips: u64,
        /// Seed of the first clip (a held-out corpus uses other seeds than the tuning one).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The classic corpus (tuned on until 2026-11-30) instead of the harder one.
        #[arg(long)]
        classic: bool,
    },
    /// Score `vj-audio analyze --beats` and the naive tracker on every clip of DIR.
    Eval {
        dir: PathBuf,
        /// Another vj-audio binary to score (an older build, side by side); default: this one.
        #[arg(long)]
        analyzer: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(cmd) = cli.command else {
        return vj::worker::main::<vj::audio::AudioAnalyzer>(&vj::registry::WORKERS);
    };
    match tool(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vj-audio: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tool(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Analyze {
            file,
            beats,
            bar_evidence,
            ..
        } => {
            let output = if beats {
                offline::Output::Beats
            } else if bar_evidence {
                offline::Output::BarEvidence
            } else {
                offline::Output::Json
            };
            let settings = AnalysisSettings::from_config(&vj::audio::AudioConfig::default(), 0);
            offline::run(&file, output, settings, &mut std::io::stdout().lock())
        }
        Cmd::GenCorpus {
            dir,
            clips,
            seed,
            classic,
        } => {
            let n = eval::generate_corpus(&dir, seed, clips, classic)?;
            println!("wrote {n} clips to {}", dir.display());
            Ok(())
        }
        Cmd::Eval { dir, analyzer } => {
            let me = match analyzer {
                Some(path) => path,
                None => std::env::current_exe()?,
            };
            let scores = eval::run_corpus(&dir, |wav| {
                let out = std::process::Command::new(&me)
                    .arg("analyze")
                    .arg(wav)
                    .arg("--beats")
                    .output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "vj-audio analyze {} failed: {}",
                    wav.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(String::from_utf8(out.stdout)?)
            })?;
            print!("{}", eval::table(&scores));
            Ok(())
        }
    }
}
