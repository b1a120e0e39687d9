//! A floor under the beat tracker's held-out accuracy, so that a change that loses accuracy
//! fails `make test`, not only `make eval-beats`: beat F, downbeat F (over one held-out hard
//! clip of each genre, seed 101) and swung hip-hop's beat F (held-out hard hip-hop 101-104),
//! each scored as `vj-audio eval` scores it (src/audio/eval.rs), at or above the floor
//! recorded when this test was written. docs/BENCHMARKS.md has the whole held-out sets.
//!
//! A few clips only (11, scored on two threads), to stay quick in a debug build: 50 s of CPU,
//! 2 min of wall on the shared 2-core machine under load (2026-12-07). The floors are these
//! clips' own figures that day, less 0.005: a change that costs a clip a couple of beats, or
//! a bar or two of downbeats, fails.

use vj::audio::eval::{downbeats, f_measure};
use vj::audio::synth::{generate_hard, Genre};
use vj::audio::{offline, AnalysisSettings};

/// Beat F over hard seed 101, one clip of each genre (`make eval-beats` prints it for 101-104):
/// 1.000 on 2026-12-07.
const BEAT_F: f64 = 0.995;
/// Downbeat F over the same clips: 0.893, then 0.931 once harmony counted twice in the bar's
/// evidence (2026-12-07), then 0.951 once the drums of a whole bar were read (2026-12-08).
const DOWNBEAT_F: f64 = 0.946;
/// Beat F over hard hip-hop 101-104 (swung): 0.994, as docs/BENCHMARKS.md has it.
const HIPHOP_F: f64 = 0.989;

/// (beat F, downbeat F) of the tracker on a held-out hard clip, 30 s as in the corpus.
fn score(genre: Genre, seed: u64) -> (f64, f64) {
    let clip = generate_hard(genre, seed, vj::audio::DEFAULT_RATE, 30.0);
    let (mut times, mut positions) = (Vec::new(), Vec::new());
    let settings = AnalysisSettings {
        rate: clip.rate,
        ..AnalysisSettings::default()
    };
    offline::analyze(&clip.samples, settings, |f| {
        if f.beat {
            times.push(f.beat_time);
            positions.push(f.count[0].max(0) as u32);
        }
    });
    let beat = f_measure(&clip.beats, &times);
    let down = f_measure(
        &downbeats(&clip.beats, &clip.positions),
        &downbeats(&times, &positions),
    );
    eprintln!(
        "{}-{seed}: beat F {beat:.3}, downbeat F {down:.3}",
        genre.name()
    );
    (beat, down)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
fn held_out_beats_downbeats_and_swung_hip_hop_stay_at_their_floors() {
    let clips: Vec<(Genre, u64)> = Genre::ALL
        .into_iter()
        .map(|g| (g, 101))
        .chain((102..=104).map(|s| (Genre::HipHop, s)))
        .collect();
    // Two threads: the machine's two cores, when they are free.
    let (a, b) = clips.split_at(clips.len() / 2);
    let run = |part: &[(Genre, u64)]| {
        part.iter()
            .map(|&(g, s)| (g, s, score(g, s)))
            .collect::<Vec<_>>()
    };
    let scores: Vec<(Genre, u64, (f64, f64))> = std::thread::scope(|scope| {
        let first = scope.spawn(|| run(a));
        let mut all = run(b);
        all.extend(first.join().expect("scoring thread"));
        all
    });
    let of = |pick: &dyn Fn(&(Genre, u64)) -> bool, which: fn(&(f64, f64)) -> f64| {
        mean(
            &scores
                .iter()
                .filter(|(g, s, _)| pick(&(*g, *s)))
                .map(|(_, _, f)| which(f))
                .collect::<Vec<_>>(),
        )
    };
    let seed_101 = |c: &(Genre, u64)| c.1 == 101;
    let beat = of(&seed_101, |f| f.0);
    let down = of(&seed_101, |f| f.1);
    let hiphop = of(&|c: &(Genre, u64)| c.0 == Genre::HipHop, |f| f.0);
    eprintln!(
        "held out: seed 101 beat F {beat:.3}, downbeat F {down:.3}; hip-hop 101-104 beat F {hiphop:.3}"
    );
    assert!(beat >= BEAT_F, "beat F {beat:.3} fell below {BEAT_F}");
    assert!(
        down >= DOWNBEAT_F,
        "downbeat F {down:.3} fell below {DOWNBEAT_F}"
    );
    assert!(
        hiphop >= HIPHOP_F,
        "swung hip-hop beat F {hiphop:.3} fell below {HIPHOP_F}"
    );
}
