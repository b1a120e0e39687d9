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
            let snare = if k % 86 == 43 { 1.0 } else { 0.05 };
            tempo.process(onset, snare, snare, false);
        })
    });
    g.bench_function("beat tracker (per hop)", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            beat.process(
                if k % 43 == 0 { 1.0 } else { 0.1 },
                if k % 86 == 43 { 1.0 } else { 0.05 },
                43.0,
            )
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

/// The OSC part of a hop alone, as the worker does it after each analysed hop: the frame's
/// messages built and sent to a plain target (one datagram each) and a bundle target (one
/// bundle per frame). Real frames, beats (and `/audio/count`) among them. The receivers are
/// never read: the kernel drops what overflows, and the sender's work is the same.
fn osc_frame(c: &mut Criterion) {
    let receiver = || UdpSocket::bind("127.0.0.1:0").unwrap();
    let (plain, bundled) = (receiver(), receiver());
    let addr = |s: &UdpSocket| s.local_addr().unwrap().to_string();
    let out = OscOut::new(&OscConfig {
        targets: vec![
            OscTarget::Plain(addr(&plain)),
            OscTarget::bundled(addr(&bundled)),
        ],
        routes: vec![],
    })
    .unwrap();
    let mut a = Analyzer::new(AnalysisSettings::default());
    let frames: Vec<_> = clip(20.0)
        .chunks_exact(HOP)
        .map(|h| *a.process(h))
        .collect();
    let mut msgs = Vec::new();
    let mut i = 0;
    c.bench_function(
        "audio osc frame: messages built and sent to a plain and a bundle target (per hop)",
        |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                frames[i].osc_messages(a.settings(), &mut msgs);
                out.send_frame(&msgs);
            })
        },
    );
}

/// The Ableton Link peer's part of a hop, as the worker calls it after each analysed hop
/// (`Link::hop`: Link's clock, `capture_app_session_state`, the peer count, the session's
/// tempo and, by mode, the timeline's beat at the hop or the tempo and beat published).
/// Enabled Link sends discovery multicast on every interface, so the instances live in a
/// network namespace of this thread's own with loopback only (root needed); without one the
/// bench says so and measures nothing.
#[cfg(feature = "link")]
fn link(c: &mut Criterion) {
    use vj::audio::{AudioConfig, AudioFrame, LinkConfig, LinkMode, TempoSource};
    let _netns = match netns::LoopbackOnly::enter() {
        Ok(n) => n,
        Err(e) => {
            println!("audio link: not measured: {e}");
            return;
        }
    };
    let config = |mode| AudioConfig {
        link: LinkConfig { mode, quantum: 0.0 },
        ..AudioConfig::default()
    };
    let start = Instant::now();
    let wall = |t: f64| Some(start + Duration::from_secs_f64(t));
    // A frame every hop, a beat every 40 hops (124 BPM), a confident tempo.
    let mut frame = AudioFrame {
        bpm: 124.0,
        bpm_confidence: 0.9,
        ..AudioFrame::default()
    };
    let mut n = 0u64;
    let mut next = |f: &mut AudioFrame| {
        n += 1;
        f.time = n as f64 * HOP as f64 / 44_100.0;
        f.beat = n % 40 == 0;
        f.beat_time = if f.beat { f.time } else { 0.0 };
        f.count = [((n / 40) % 4 + 1) as i32, 1, 0];
        f.phase[3] = 0.8;
    };
    let mut g = c.benchmark_group("audio link");
    let mut ours = vj::audio::link::Link::default();
    ours.apply(&config(LinkMode::Publish));
    g.bench_function("link publish, alone in the session (per hop)", |b| {
        b.iter(|| {
            next(&mut frame);
            ours.hop(&frame, TempoSource::Audio, wall)
        })
    });
    // Another peer (a second instance on the same loopback) leads a session at 128 BPM; a
    // fresh follower joins it.
    ours.apply(&config(LinkMode::Off));
    let leader = rusty_link::AblLink::new(128.0);
    leader.enable(true);
    let mut ours = vj::audio::link::Link::default();
    ours.apply(&config(LinkMode::Follow));
    let seen = Instant::now();
    while ours.report().peers == 0 && seen.elapsed() < Duration::from_secs(10) {
        next(&mut frame);
        ours.hop(&frame, TempoSource::Audio, wall);
        std::thread::sleep(Duration::from_millis(10));
    }
    if ours.report().peers == 0 {
        println!("audio link: the second peer was not seen in 10 s; follow not measured");
        return;
    }
    // Which session two meeting peers keep is Link's choice: the leader sets 128 in it now.
    let mut state = rusty_link::SessionState::new();
    leader.capture_app_session_state(&mut state);
    state.set_tempo(128.0, leader.clock_micros());
    leader.commit_app_session_state(&state);
    let set = Instant::now();
    while (ours.report().tempo - 128.0).abs() > 0.01 && set.elapsed() < Duration::from_secs(5) {
        next(&mut frame);
        ours.hop(&frame, TempoSource::Audio, wall);
        std::thread::sleep(Duration::from_millis(10));
    }
    g.bench_function("link follow, one other peer (per hop)", |b| {
        b.iter(|| {
            next(&mut frame);
            ours.hop(&frame, TempoSource::Audio, wall)
        })
    });
    g.finish();
    let timeline = ours.hop(&frame, TempoSource::Audio, wall);
    println!(
        "audio link: following {} peer(s), session at {:.1} BPM, timeline {timeline:?}",
        ours.report().peers,
        ours.report().tempo
    );
    leader.enable(false);
}

#[cfg(not(feature = "link"))]
fn link(_: &mut Criterion) {
    println!("audio link: not measured: built without the `link` feature");
}

/// Loopback-only network namespaces, as the Link tests build them.
#[cfg(feature = "link")]
#[path = "../tests/common/netns.rs"]
#[allow(dead_code)]
mod lan;

/// This thread inside a network namespace with loopback only (multicast on `lo`, a route for
/// 224.0.0.0/4: `lan::Lan::loopback_only`), moved back on drop, before the namespace goes.
/// Threads started from this thread meanwhile are inside it.
#[cfg(feature = "link")]
mod netns {
    use std::fs::File;
    use std::os::fd::AsFd;

    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

    pub struct LoopbackOnly {
        home: File,
        _lan: super::lan::Lan,
    }

    impl LoopbackOnly {
        pub fn enter() -> Result<LoopbackOnly, String> {
            if !rustix::process::geteuid().is_root() {
                return Err("making a network namespace needs root".into());
            }
            let home = File::open("/proc/thread-self/ns/net")
                .map_err(|e| format!("cannot open this thread's network namespace: {e}"))?;
            let lan = super::lan::Lan::loopback_only();
            let ns = File::open(format!("/run/netns/{}", lan.hosts[0]))
                .map_err(|e| format!("cannot open the new namespace: {e}"))?;
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| format!("cannot enter the new namespace: {e}"))?;
            Ok(LoopbackOnly { home, _lan: lan })
        }
    }

    impl Drop for LoopbackOnly {
        fn drop(&mut self) {
            move_into_link_name_space(self.home.as_fd(), Some(LinkNameSpaceType::Network))
                .expect("back to the machine's network namespace");
        }
    }
}

criterion_group!(benches, per_hop, stages, osc_frame, latency, link);
criterion_main!(benches);
