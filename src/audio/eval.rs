//! Beat-tracking evaluation: F-measure (±70 ms, first 5 s ignored), tempo accuracy (4 %, octave
//! errors apart), and the naive baseline (thresholded spectral-flux onsets, median-IOI tempo).

use super::onset::OnsetStrength;
use super::spectrum::Spectrum;
use super::HOP;

pub const TOLERANCE: f64 = 0.07;
pub const SKIP: f64 = 5.0;

/// F-measure of `estimated` against `reference` beat times (mir_eval's definition: greedy
/// one-to-one matches within the tolerance window), both after `SKIP` seconds.
pub fn f_measure(reference: &[f64], estimated: &[f64]) -> f64 {
    f_measure_offset(reference, estimated).0
}

/// F-measure and the mean signed error of the matched beats (seconds, + = late).
pub fn f_measure_offset(reference: &[f64], estimated: &[f64]) -> (f64, f64) {
    let r: Vec<f64> = reference.iter().copied().filter(|&t| t >= SKIP).collect();
    let e: Vec<f64> = estimated.iter().copied().filter(|&t| t >= SKIP).collect();
    if r.is_empty() || e.is_empty() {
        return (0.0, 0.0);
    }
    let mut err = 0.0;
    // Both sorted: a two-pointer sweep matches each reference with the nearest free estimate.
    let mut used = vec![false; e.len()];
    let mut hits = 0usize;
    for &t in &r {
        let mut best: Option<(usize, f64)> = None;
        for (j, &x) in e.iter().enumerate() {
            if used[j] {
                continue;
            }
            let d = (x - t).abs();
            if d <= TOLERANCE && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((j, d));
            }
            if x > t + TOLERANCE {
                break;
            }
        }
        if let Some((j, _)) = best {
            used[j] = true;
            hits += 1;
            err += e[j] - t;
        }
    }
    let p = hits as f64 / e.len() as f64;
    let rc = hits as f64 / r.len() as f64;
    let offset = if hits > 0 { err / hits as f64 } else { 0.0 };
    if p + rc == 0.0 {
        (0.0, offset)
    } else {
        (2.0 * p * rc / (p + rc), offset)
    }
}

/// How a tempo estimate compares with the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempoVerdict {
    Right,
    /// Half or double.
    Octave,
    /// At one of [`super::tempo::RELATED_LEVELS`] of it: a triplet feel or a dotted pattern
    /// read as the beat.
    Ratio,
    Wrong,
}

pub fn tempo_verdict(reference: f64, estimated: f64) -> TempoVerdict {
    let near = |x: f64| (estimated - x).abs() <= 0.04 * x;
    if near(reference) {
        TempoVerdict::Right
    } else if near(2.0 * reference) || near(0.5 * reference) {
        TempoVerdict::Octave
    } else if super::tempo::RELATED_LEVELS
        .iter()
        .any(|&r| near(f64::from(r) * reference))
    {
        TempoVerdict::Ratio
    } else {
        TempoVerdict::Wrong
    }
}

/// The naive tracker: every spectral-flux onset above an adaptive threshold is a beat; the
/// tempo is 60 / the median inter-onset interval.
pub fn naive(samples: &[f32], rate: u32) -> (Vec<f64>, f64) {
    let mut spectrum = Spectrum::new(rate);
    let mut onset = OnsetStrength::new(&spectrum);
    let fps = rate as f64 / HOP as f64;
    let mut history: Vec<f32> = Vec::new();
    let mut beats = Vec::new();
    let mut last = f64::MIN;
    let window = (0.5 * fps) as usize;
    for (n, hop) in samples.chunks_exact(HOP).enumerate() {
        spectrum.process(hop);
        onset.process(&spectrum);
        let v = onset.raw();
        let start = history.len().saturating_sub(window);
        let mut recent: Vec<f32> = history[start..].to_vec();
        history.push(v);
        if recent.len() < 3 {
            continue;
        }
        recent.sort_by(f32::total_cmp);
        let median = recent[recent.len() / 2];
        let mean = recent.iter().sum::<f32>() / recent.len() as f32;
        let t = (n + 1) as f64 / fps;
        // Above threshold, a local peak so far, and not within 100 ms of the last onset.
        let prev = history[history.len() - 2];
        if v > 1.5 * median + 0.5 * mean && v >= prev && t - last > 0.1 {
            beats.push(t);
            last = t;
        }
    }
    let mut ioi: Vec<f64> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    ioi.sort_by(f64::total_cmp);
    let tempo = ioi.get(ioi.len() / 2).map_or(0.0, |d| 60.0 / d);
    (beats, tempo)
}

/// `vj-audio analyze --beats` output: each beat's time and (when printed) its place in the
/// bar, then the tempo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Beats {
    pub times: Vec<f64>,
    /// Position in the bar per beat (1 = downbeat); empty when the output had none.
    pub positions: Vec<u32>,
    pub tempo: f64,
}

impl Beats {
    /// The downbeats (position 1), or None without positions.
    pub fn downbeats(&self) -> Option<Vec<f64>> {
        if self.positions.len() != self.times.len() || self.times.is_empty() {
            return None;
        }
        Some(downbeats(&self.times, &self.positions))
    }
}

/// The times whose position is 1.
pub fn downbeats(times: &[f64], positions: &[u32]) -> Vec<f64> {
    times
        .iter()
        .zip(positions)
        .filter(|(_, &p)| p == 1)
        .map(|(&t, _)| t)
        .collect()
}

/// Parses `time [position]` lines, then `tempo <bpm>`.
pub fn parse_beats(text: &str) -> Beats {
    let mut out = Beats::default();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("tempo ") {
            out.tempo = t.trim().parse().unwrap_or(0.0);
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(Ok(t)) = words.next().map(str::parse::<f64>) else {
            continue;
        };
        out.times.push(t);
        if let Some(Ok(p)) = words.next().map(str::parse::<u32>) {
            out.positions.push(p);
        }
    }
    out
}

/// A `.beats` ground-truth file.
pub struct Truth {
    pub genre: String,
    /// What played it, from a second header line `# kit NAME; …` or `# module NAME; …` (the
    /// recorded corpora's), for the per-kit table.
    pub source: Option<String>,
    pub tempo: f64,
    pub drop: Option<f64>,
    pub beats: Vec<f64>,
    /// Each beat's place in its bar (empty in files written before bars were annotated).
    pub positions: Vec<u32>,
}

/// Parses a `.beats` file: `# genre tempo [drop]`, optionally `# kit NAME; …` or
/// `# module NAME; …`, then `time [position]` per line.
pub fn parse_truth(text: &str) -> Option<Truth> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let source = rest.lines().next().and_then(|l| {
        let named = l.strip_prefix("# kit ").or(l.strip_prefix("# module "))?;
        Some(named.split(';').next()?.trim().to_string())
    });
    let mut header = first.strip_prefix("# ")?.split_whitespace();
    let genre = header.next()?.to_string();
    let tempo = header.next()?.parse().ok()?;
    let drop = header.next().and_then(|d| d.parse().ok());
    let b = parse_beats(rest);
    Some(Truth {
        genre,
        source,
        tempo,
        drop,
        beats: b.times,
        positions: b.positions,
    })
}

/// Seconds from `from` until the tracker is locked: the first reference beat at or after
/// `from` that starts four beats in a row each matched within the tolerance. None: never.
pub fn lock_time(reference: &[f64], estimated: &[f64], from: f64) -> Option<f64> {
    let hit = |r: f64| estimated.iter().any(|&e| (e - r).abs() <= TOLERANCE);
    let start = reference.iter().position(|&r| r >= from)?;
    (start..reference.len().saturating_sub(3))
        .find(|&i| reference[i..i + 4].iter().all(|&r| hit(r)))
        .map(|i| reference[i] - from)
}

/// One clip's scores for both trackers.
#[derive(Debug, Clone)]
pub struct ClipScore {
    pub genre: String,
    /// The kit or module that played it (recorded corpora).
    pub source: Option<String>,
    pub f: f64,
    pub tempo: TempoVerdict,
    pub naive_f: f64,
    pub naive_tempo: TempoVerdict,
    /// Downbeat F-measure (±70 ms, first 5 s ignored), when the analyzer printed positions.
    pub downbeat_f: Option<f64>,
    /// Mean signed error of the matched beats, seconds (+ = late).
    pub offset: f64,
    /// Seconds to lock after the music starts, and after the drop (breakdown clips).
    pub lock_start: Option<f64>,
    pub lock_drop: Option<f64>,
}

/// The per-genre and overall table `make eval-beats` prints, then one row per kit or module
/// where the corpus names them.
pub fn table(scores: &[ClipScore]) -> String {
    // In the order first seen.
    let mut genres: Vec<&str> = Vec::new();
    let mut sources: Vec<&str> = Vec::new();
    for c in scores {
        if !genres.contains(&c.genre.as_str()) {
            genres.push(&c.genre);
        }
        if let Some(k) = c.source.as_deref().filter(|k| !sources.contains(k)) {
            sources.push(k);
        }
    }
    let width = sources.iter().map(|k| k.len()).max().unwrap_or(0).max(12);
    let header = |what: &str| {
        format!(
            "{what:<width$} clips  F(vj)  F(down)  tempo(vj)  oct(vj)  ratio(vj)  F(naive)  tempo(naive)  oct(naive)\n"
        )
    };
    let row = |name: &str, s: &[&ClipScore]| -> String {
        let n = s.len().max(1) as f64;
        let f = s.iter().map(|c| c.f).sum::<f64>() / n;
        let nf = s.iter().map(|c| c.naive_f).sum::<f64>() / n;
        let down: Vec<f64> = s.iter().filter_map(|c| c.downbeat_f).collect();
        let down = if down.is_empty() {
            "    -".to_string()
        } else {
            format!("{:.3}", down.iter().sum::<f64>() / down.len() as f64)
        };
        let count = |v: TempoVerdict, naive: bool| {
            s.iter()
                .filter(|c| (if naive { c.naive_tempo } else { c.tempo }) == v)
                .count()
        };
        let pct = |v: TempoVerdict, naive: bool| 100.0 * count(v, naive) as f64 / n;
        format!(
            "{name:<width$} {:>5}  {f:>5.3}  {down:>7}  {:>8.0}%  {:>7}  {:>9}  {nf:>8.3}  {:>11.0}%  {:>10}\n",
            s.len(),
            pct(TempoVerdict::Right, false),
            count(TempoVerdict::Octave, false),
            count(TempoVerdict::Ratio, false),
            pct(TempoVerdict::Right, true),
            count(TempoVerdict::Octave, true),
        )
    };
    let mut out = header("genre");
    for g in &genres {
        let s: Vec<&ClipScore> = scores.iter().filter(|c| c.genre == *g).collect();
        out.push_str(&row(g, &s));
    }
    let fotf: Vec<&ClipScore> = scores
        .iter()
        .filter(|c| super::synth::Genre::from_name(&c.genre).is_some_and(|g| g.four_on_the_floor()))
        .collect();
    // (Corpora of recordings have no four-on-the-floor genre of the synthesizer's: no row.)
    if !fotf.is_empty() {
        out.push_str(&row("4-on-floor", &fotf));
    }
    let all: Vec<&ClipScore> = scores.iter().collect();
    out.push_str(&row("overall", &all));
    let lock = |name: &str, v: Vec<Option<f64>>| -> String {
        if v.is_empty() {
            return String::new();
        }
        let never = v.iter().filter(|x| x.is_none()).count();
        let t: Vec<f64> = v.into_iter().flatten().collect();
        let mean = t.iter().sum::<f64>() / t.len().max(1) as f64;
        let max = t.iter().fold(0.0f64, |a, &b| a.max(b));
        format!("locked after {name}: mean {mean:.1} s, max {max:.1} s, never {never}\n")
    };
    out.push_str(&lock(
        "the music starts",
        scores.iter().map(|s| s.lock_start).collect(),
    ));
    out.push_str(&lock(
        "the drop",
        scores
            .iter()
            .filter(|s| s.genre == "breakdown")
            .map(|s| s.lock_drop)
            .collect(),
    ));
    if !sources.is_empty() {
        out.push_str(&header("kit / module"));
        for k in &sources {
            let s: Vec<&ClipScore> = scores
                .iter()
                .filter(|c| c.source.as_deref() == Some(*k))
                .collect();
            out.push_str(&row(k, &s));
        }
    }
    out
}

/// `vj-audio gen-corpus DIR`: writes `clips` clips of every genre (30 s each), seeds from
/// `first_seed`, of the harder corpus or (`classic`) the one tuned on until 2026-11-30.
pub fn generate_corpus(
    dir: &std::path::Path,
    first_seed: u64,
    clips: u64,
    classic: bool,
) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    for genre in super::synth::Genre::ALL {
        for seed in first_seed..first_seed + clips {
            let make = if classic {
                super::synth::generate
            } else {
                super::synth::generate_hard
            };
            let clip = make(genre, seed, super::DEFAULT_RATE, 30.0);
            super::synth::write_clip(dir, &clip)?;
            n += 1;
        }
    }
    Ok(n)
}

/// `vj-audio eval DIR`: runs `analyzer` (a command printing `analyze --beats` output for a
/// WAV path) and the naive tracker over every clip of DIR and scores both.
pub fn run_corpus(
    dir: &std::path::Path,
    mut analyzer: impl FnMut(&std::path::Path) -> anyhow::Result<String>,
) -> anyhow::Result<Vec<ClipScore>> {
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "beats"))
        .collect();
    names.sort();
    anyhow::ensure!(
        !names.is_empty(),
        "{} holds no clips: run `vj-audio gen-corpus {}` first",
        dir.display(),
        dir.display()
    );
    let mut scores = Vec::new();
    for truth_path in names {
        let text = std::fs::read_to_string(&truth_path)?;
        let Truth {
            genre,
            source,
            tempo,
            drop,
            beats: truth,
            positions,
        } = parse_truth(&text)
            .ok_or_else(|| anyhow::anyhow!("{} is not a .beats file", truth_path.display()))?;
        let wav = truth_path.with_extension("wav");
        let out = parse_beats(&analyzer(&wav)?);
        let downbeat_f = out
            .downbeats()
            .filter(|_| positions.len() == truth.len())
            .map(|est| f_measure(&downbeats(&truth, &positions), &est));
        let (beats, est) = (out.times, out.tempo);
        let mono = super::offline::read_wav(&wav)?;
        let (nbeats, ntempo) = naive(&mono.samples, mono.rate);
        scores.push(ClipScore {
            genre,
            source,
            f: f_measure(&truth, &beats),
            tempo: tempo_verdict(tempo, est),
            naive_f: f_measure(&truth, &nbeats),
            naive_tempo: tempo_verdict(tempo, ntempo),
            downbeat_f,
            offset: f_measure_offset(&truth, &beats).1,
            lock_start: truth.first().and_then(|&t0| lock_time(&truth, &beats, t0)),
            lock_drop: drop.and_then(|d| lock_time(&truth, &beats, d)),
        });
        if std::env::var_os("VJ_EVAL_VERBOSE").is_some() {
            let s = scores.last().expect("just pushed");
            let secs = |t: Option<f64>| t.map_or("never".into(), |t| format!("{t:.1} s"));
            eprintln!(
                "{:<20} truth {tempo:6.1}  vj {est:6.1} F {:.3} ({:+.0} ms) down {} lock {}{}  naive {ntempo:6.1} F {:.3}",
                wav.file_name().unwrap_or_default().to_string_lossy(),
                s.f,
                1000.0 * s.offset,
                s.downbeat_f.map_or("-".into(), |f| format!("{f:.3}")),
                secs(s.lock_start),
                drop.map_or(String::new(), |_| format!(", after the drop {}", secs(s.lock_drop))),
                s.naive_f,
            );
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f_measure_counts_hits_within_70_ms_after_5_s() {
        let r: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
        assert_eq!(f_measure(&r, &r), 1.0);
        let shifted: Vec<f64> = r.iter().map(|t| t + 0.06).collect();
        assert_eq!(f_measure(&r, &shifted), 1.0);
        let off: Vec<f64> = r.iter().map(|t| t + 0.25).collect();
        assert_eq!(f_measure(&r, &off), 0.0);
        // Double-time estimates: precision halves, recall stays: F = 2/3.
        let double: Vec<f64> = (0..40).map(|i| i as f64 * 0.25).collect();
        assert!((f_measure(&r, &double) - 2.0 / 3.0).abs() < 0.02);
    }

    #[test]
    fn the_table_has_rows_per_genre_and_per_kit_and_counts_ratio_errors() {
        let clip = |genre: &str, f: f64| ClipScore {
            genre: genre.into(),
            source: None,
            f,
            tempo: TempoVerdict::Right,
            naive_f: 0.5,
            naive_tempo: TempoVerdict::Wrong,
            downbeat_f: None,
            offset: 0.0,
            lock_start: Some(1.0),
            lock_drop: None,
        };
        let recorded = table(&[clip("tracker", 0.9), clip("tracker", 0.7)]);
        assert!(!recorded.contains("4-on-floor"), "{recorded}");
        assert!(recorded.contains("tracker          2  0.800"), "{recorded}");
        assert!(!recorded.contains("kit / module"), "{recorded}");
        let played = |kit: &str, tempo| ClipScore {
            source: Some(kit.into()),
            tempo,
            ..clip("percussion", 1.0)
        };
        let kits = table(&[
            played("circAfrique v4", TempoVerdict::Ratio),
            played("Gimme A Hand 1.0", TempoVerdict::Right),
            played("circAfrique v4", TempoVerdict::Right),
        ]);
        let line = |name: &str| {
            let l = kits.lines().find(|l| l.starts_with(name));
            l.unwrap_or_else(|| panic!("no {name} row in\n{kits}"))
                .split_whitespace()
                .skip(name.split_whitespace().count())
                .collect::<Vec<_>>()
                .join(" ")
        };
        // clips, F, F(down), tempo right, octave errors, ratio errors, ...
        assert!(
            line("percussion").starts_with("3 1.000 - 67% 0 1 "),
            "{kits}"
        );
        assert!(
            line("circAfrique v4").starts_with("2 1.000 - 50% 0 1 "),
            "{kits}"
        );
        assert!(
            line("Gimme A Hand 1.0").starts_with("1 1.000 - 100% 0 0 "),
            "{kits}"
        );
        let synthetic = table(&[clip("house", 1.0), clip("hiphop", 0.5)]);
        assert!(
            synthetic.contains("4-on-floor       1  1.000"),
            "{synthetic}"
        );
    }

    #[test]
    fn tempo_verdicts() {
        assert_eq!(tempo_verdict(170.0, 172.0), TempoVerdict::Right);
        assert_eq!(tempo_verdict(170.0, 85.0), TempoVerdict::Octave);
        // Recorded percussion at 97 read at 129: three beats heard as four.
        assert_eq!(tempo_verdict(97.0, 129.0), TempoVerdict::Ratio);
        assert_eq!(tempo_verdict(140.0, 93.5), TempoVerdict::Ratio);
        assert_eq!(tempo_verdict(140.0, 112.0), TempoVerdict::Wrong);
    }
}
