//! Audio analysis speed: cost per 512-sample hop, offline speed as a multiple of real time, and
//! the in-process latency from a hop's last sample entering the capture ring to its OSC packets
//! leaving (p50/p99, printed; criterion has no percentiles).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vj::audio::decimate::Decimator;
use vj::audio::synth::{generate, Genre};
use vj::audio::{AnalysisSettings, Analyzer, HOP};
use vj::config::{OscConfig, OscTarget};
use vj::osc::OscOut;

fn clip(secs: f64) -> Vec<f32> {
    generate(Genre::House, 1, 44_100, secs).samples
}

fn per_hop(c: &mut Criterion) {
    let samples = clip(20.0);
    let hops: Vec<&[f32]> = samples.chunks_exact(HOP).collect();
    let mut g = c.benchmark_group("audio");
    let mut a = Analyzer::new(AnalysisSettings::default());
    // Warm the trackers so tempo estimation and beat fitting are in their steady state.
    for h in &hops[..800] {
        a.process(h);
    }
    let mut i = 0;
    g.bench_function("analysis per 512-sample hop (all features)", |b| {
        b.iter(|| {
            i = (i + 1) % hops.len();
            *a.process(hops[i])
        })
    });
    // The harder corpus: noisy (15-40 dB SNR), stereo (mixed to mono per hop, as capture
    // does), swung hip-hop at 85-100 BPM (the slowest beats cost the beat fit most) and
    // house, with every feature on (musical time and drums included).
    for (genre, seed) in [(Genre::HipHop, 101), (Genre::House, 101)] {
        let clip = vj::audio::synth::generate_hard(genre, seed, 44_100, 30.0);
        let (l, r) = clip.stereo.clone().expect("a stereo clip");
        let frames: Vec<[f32; 2]> = l.iter().zip(&r).map(|(&a, &b)| [a, b]).collect();
        let hops: Vec<&[[f32; 2]]> = frames.chunks_exact(HOP).collect();
        let mut a = Analyzer::new(AnalysisSettings::default());
        let mut mono = [0.0f32; HOP];
        let mix = |h: &[[f32; 2]], out: &mut [f32; HOP]| {
            for (m, f) in out.iter_mut().zip(h) {
                *m = 0.5 * (f[0] + f[1]);
            }
        };
        for h in &hops[..800] {
            mix(h, &mut mono);
            a.process(&mono);
        }
        let mut i = 0;
        g.bench_function(
            format!(
                "analysis per hop, every feature, noisy stereo {}",
                clip.name
            ),
            |b| {
                b.iter(|| {
                    i = (i + 1) % hops.len();
                    mix(hops[i], &mut mono);
                    *a.process(&mono)
                })
            },
        );
    }
    let secs = 10.0;
    let ten = clip(secs);
    g.throughput(Throughput::Elements(ten.len() as u64));
    g.sample_size(10);
    g.bench_function(
        "offline analysis of 10 s (samples/s; /44100 = × real time)",
        |b| {
            b.iter(|| {
                let mut beats = 0;
                vj::audio::offline::analyze(&ten, AnalysisSettings::default(), |f| {
                    beats += f.beat as u32
                });
                beats
            })
        },
    );
    g.finish();
}

/// Each stage alone, to see where a hop's time goes.
fn stages(c: &mut Criterion) {
    use vj::audio::tempo::{TempoSettings, TempoTracker};
    use vj::audio::{beat::BeatTracker, onset::OnsetStrength, pitch::Pitch, spectrum::Spectrum};
    let samples = clip(20.0);
    let hops: Vec<&[f32]> = samples.chunks_exact(HOP).collect();
    let fps = 44_100.0 / HOP as f32;
    let mut g = c.benchmark_group("audio stage");
    let mut spectrum = Spectrum::new(44_100);
    let mut i = 0;
    g.bench_function("spectrum (2048-point FFT)", |b| {
        b.iter(|| {
            i = (i + 1) % hops.len();
            spectrum.process(hops[i]);
        })
    });
    let mut onset = OnsetStrength::new(&spectrum);
    g.bench_function("onset strength", |b| b.iter(|| onset.process(&spectrum)));
    let mut pitch = Pitch::new(44_100);
    g.bench_function("pitch (NSDF)", |b| {
        b.iter(|| pitch.process(spectrum.samples()))
    });
    let mut tempo = TempoTracker::new(fps, TempoSettings::default());
    let mut beat = BeatTracker::new(fps, 0.023);
    let mut k = 0u32;
    g.bench_function("tempo tracker (per hop)", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let onset = if k % 43 == 0 { 1.0 } else { 0.1 };
            tempo.process(onset, if k % 86 == 43 { 1.0 } else { 0.05 }, false);
        })
    });
    g.bench_function("beat tracker (per hop)", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            beat.process(if k % 43 == 0 { 1.0 } else { 0.1 }, 43.0)
        })
    });
    let mut drums = vj::audio::drums::DrumHits::new(&spectrum);
    g.bench_function("drum hits (kick, snare, hat)", |b| {
        b.iter(|| drums.process(&spectrum))
    });
    let mut chroma = vj::audio::bar::Chroma::new(&spectrum);
    g.bench_function("chroma (bar tracker's evidence)", |b| {
        b.iter(|| chroma.process(&spectrum))
    });
    // A 96 kHz device: 1 024 samples in, one 512-sample hop out.
    let mut decimator = Decimator::new(96_000);
    let device: Vec<f32> = hops
        .iter()
        .take(2)
        .flat_map(|h| h.iter().copied())
        .collect();
    let mut out = Vec::with_capacity(HOP);
    g.bench_function("decimate 96 → 48 kHz (per hop)", |b| {
        b.iter(|| {
            out.clear();
            decimator.process(&device, &mut out);
        })
    });
    g.finish();
}

fn latency(_: &mut Criterion) {
    // The worker's path: the capture callback pushes into the ring; the analysis thread pops a
    // hop, analyses it, builds and sends the OSC frame (to a local receiver).
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_nonblocking(true).unwrap();
    let out = OscOut::new(&OscConfig {
        targets: vec![OscTarget::Plain(rx.local_addr().unwrap().to_string())],
        routes: vec![],
    })
    .unwrap();
    let samples = clip(20.0);
    let (mut tx, mut ring) = rtrb::RingBuffer::<f32>::new(96_000);
    let mut a = Analyzer::new(AnalysisSettings::default());
    let mut msgs = Vec::new();
    let mut buf = [0.0f32; HOP];
    let mut lat = Vec::new();
    let mut sink = [0u8; 2048];
    let start = Instant::now();
    for hop in samples.chunks_exact(HOP) {
        for &x in hop {
            let _ = tx.push(x);
        }
        let t0 = Instant::now();
        let chunk = ring.read_chunk(HOP).unwrap();
        let (p, q) = chunk.as_slices();
        buf[..p.len()].copy_from_slice(p);
        buf[p.len()..].copy_from_slice(q);
        chunk.commit_all();
        let f = *a.process(&buf);
        f.osc_messages(a.settings(), &mut msgs);
        out.send_frame(&msgs);
        lat.push(t0.elapsed());
        while rx.recv(&mut sink).is_ok() {}
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "audio latency, last sample of a hop → OSC sent, {} hops: p50 {:?}  p99 {:?}  max {:?}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(Duration::ZERO)
    );
    println!(
        "audio live path: {:.0}× real time including OSC encoding and sending",
        samples.len() as f64 / 44_100.0 / total.as_secs_f64()
    );
}

criterion_group!(benches, per_hop, stages, latency);
criterion_main!(benches);
