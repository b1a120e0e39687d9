//! One hop in, one [`AudioFrame`] out: runs every stage in order. The same code serves the live
//! worker and `vj-audio analyze`, and it never looks ahead. No allocation per hop.

use rosc::{OscMessage, OscType};
use serde::Serialize;

use super::bands::{self, BandLevels, BANDS};
use super::bar::{BarTracker, Chroma};
use super::beat::BeatTracker;
use super::drums::{self, DrumHits};
use super::meter::{Meter, Taps, Timeline};
use super::onset::OnsetStrength;
use super::pitch::Pitch;
use super::spectrum::{LogSpectrum, Spectrum, SPECTRUM_BINS};
use super::structure::Structure;
use super::tempo::{TempoHold, TempoSettings, TempoTracker};
use super::HOP;

/// What the analysis computes, from `[audio]` in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSettings {
    pub rate: u32,
    pub band_edges: [f32; 8],
    /// 0 = raw, 0.99 = very slow release of band levels.
    pub smoothing: f32,
    pub spectrum: bool,
    pub bpm: bool,
    pub pitch: bool,
    pub structure: bool,
    /// `/audio/phase` and `/audio/count` (musical time: bars and phrases).
    pub phase: bool,
    /// `/audio/kick`, `/audio/snare`, `/audio/hat`.
    pub drums: bool,
    pub beats_per_bar: u32,
    pub phrase_bars: u32,
    /// Seconds beats, phases and counts go out early (negative: late).
    pub latency: f64,
    pub tempo: TempoSettings,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            rate: super::DEFAULT_RATE,
            band_edges: bands::DEFAULT_EDGES,
            smoothing: 0.6,
            spectrum: true,
            bpm: true,
            pitch: true,
            structure: true,
            phase: true,
            drums: true,
            beats_per_bar: 4,
            phrase_bars: 8,
            latency: 0.0,
            tempo: TempoSettings::default(),
        }
    }
}

impl AnalysisSettings {
    /// From the `[audio]` config section, at a device's rate.
    pub fn from_config(c: &super::AudioConfig, rate: u32) -> Self {
        let mut edges = bands::DEFAULT_EDGES;
        if c.band_edges.len() == 8 {
            for (e, v) in edges.iter_mut().zip(&c.band_edges) {
                *e = *v as f32;
            }
        }
        AnalysisSettings {
            rate,
            band_edges: edges,
            smoothing: c.smoothing as f32,
            spectrum: c.spectrum,
            bpm: c.bpm,
            pitch: c.pitch,
            structure: c.structure,
            phase: c.phase,
            drums: c.drums,
            beats_per_bar: c.beats_per_bar,
            phrase_bars: c.phrase_bars,
            latency: c.latency_ms / 1000.0,
            tempo: TempoSettings {
                bpm_min: c.bpm_min as f32,
                bpm_max: c.bpm_max as f32,
                ..TempoSettings::default()
            },
        }
    }
}

/// One drum's part of a frame: whether it hit on this hop, and how hard (0..1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DrumHit {
    pub hit: bool,
    pub strength: f32,
}

/// Where the tempo comes from, as `get_state` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TempoSource {
    /// The tracker, from the audio.
    Audio,
    /// Taps set it; the tracker refines it.
    Tap,
    /// A Link session's timeline (follow mode, with another peer).
    Link,
    /// `set_tempo` with `lock`: fixed.
    Locked,
}

/// Everything one analysis frame says about the music.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AudioFrame {
    /// Seconds since the start of the stream at the last sample of this hop.
    pub time: f64,
    /// sub_bass, bass, low_mid, mid, high_mid, presence, air, rms.
    pub levels: [f32; BANDS + 1],
    #[serde(serialize_with = "serialize_spectrum")]
    pub spectrum: [f32; SPECTRUM_BINS],
    pub beat: bool,
    /// When the beat of this frame sounds (seconds of stream time; 0 without a beat). It is
    /// sent `latency` before that: live, the frame waits for it.
    pub beat_time: f64,
    pub onset: f32,
    /// beat, bar, phrase phase (0..1) and downbeat confidence (`/audio/phase`).
    pub phase: [f32; 4],
    /// beat in bar, bar in phrase, phrases since lock (`/audio/count`, on beats).
    pub count: [i32; 3],
    pub kick: DrumHit,
    pub snare: DrumHit,
    pub hat: DrumHit,
    pub bpm: f32,
    pub bpm_confidence: f32,
    pub pitch_hz: f32,
    pub pitch_confidence: f32,
    pub buildup: bool,
    pub drop: bool,
    pub energy_trend: f32,
    pub brightness: f32,
}

fn serialize_spectrum<S: serde::Serializer>(
    v: &[f32; SPECTRUM_BINS],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter())
}

impl Default for AudioFrame {
    fn default() -> Self {
        AudioFrame {
            time: 0.0,
            levels: [0.0; BANDS + 1],
            spectrum: [0.0; SPECTRUM_BINS],
            beat: false,
            beat_time: 0.0,
            onset: 0.0,
            phase: [0.0; 4],
            count: [0; 3],
            kick: DrumHit::default(),
            snare: DrumHit::default(),
            hat: DrumHit::default(),
            bpm: 0.0,
            bpm_confidence: 0.0,
            pitch_hz: 0.0,
            pitch_confidence: 0.0,
            buildup: false,
            drop: false,
            energy_trend: 0.0,
            brightness: 0.0,
        }
    }
}

/// Seconds of quiet (RMS below -60 dBFS) after which what the user said about the tempo and
/// the bar (taps, a hint, resync) is forgotten: the next track is another song.
const SILENCE_RESET_SECS: f32 = 3.0;

pub struct Analyzer {
    settings: AnalysisSettings,
    spectrum: Spectrum,
    log_spectrum: LogSpectrum,
    bands: BandLevels,
    onset: OnsetStrength,
    tempo: TempoTracker,
    beat: BeatTracker,
    drums: DrumHits,
    chroma: Chroma,
    bar: BarTracker,
    meter: Meter,
    taps: Taps,
    /// A Link session's timeline to follow instead of the audio's grid.
    timeline: Option<Timeline>,
    /// Whether the tempo hold came from taps.
    tapped: bool,
    quiet_hops: u32,
    /// Whether the music has begun since the stream started or the last long quiet.
    sounding: bool,
    was_drop: bool,
    pitch: Pitch,
    structure: Structure,
    samples: u64,
    frame: AudioFrame,
}

impl Analyzer {
    pub fn new(settings: AnalysisSettings) -> Self {
        let spectrum = Spectrum::new(settings.rate);
        let fps = settings.rate as f32 / HOP as f32;
        let delay = OnsetStrength::delay_secs(&spectrum);
        Analyzer {
            log_spectrum: LogSpectrum::new(&spectrum),
            bands: BandLevels::new(&spectrum, &settings.band_edges),
            onset: OnsetStrength::new(&spectrum),
            tempo: TempoTracker::new(fps, settings.tempo),
            beat: BeatTracker::new(fps, delay),
            drums: DrumHits::new(&spectrum),
            chroma: Chroma::new(&spectrum),
            bar: BarTracker::new(settings.beats_per_bar),
            meter: Meter::new(
                settings.beats_per_bar,
                settings.phrase_bars,
                settings.latency,
            ),
            taps: Taps::default(),
            timeline: None,
            tapped: false,
            quiet_hops: 0,
            sounding: false,
            was_drop: false,
            pitch: Pitch::new(settings.rate),
            structure: Structure::new(fps),
            spectrum,
            samples: 0,
            frame: AudioFrame::default(),
            settings,
        }
    }

    /// The evidence of the last beat the bar tracker weighed as a "1".
    pub fn bar_evidence(&self) -> Option<super::bar::BeatEvidence> {
        self.bar.last_scored()
    }

    pub fn settings(&self) -> &AnalysisSettings {
        &self.settings
    }

    /// Applies new settings, keeping the tracked state where the change allows it: toggles
    /// and smoothing apply at once; a new rate, band edges or tempo range rebuild what
    /// depends on them.
    pub fn set_settings(&mut self, s: AnalysisSettings) {
        if s.rate != self.settings.rate {
            *self = Analyzer::new(s);
            return;
        }
        if s.band_edges != self.settings.band_edges {
            self.bands = BandLevels::new(&self.spectrum, &s.band_edges);
        }
        if s.tempo != self.settings.tempo {
            let fps = s.rate as f32 / HOP as f32;
            self.tempo = TempoTracker::new(fps, s.tempo);
        }
        if s.beats_per_bar != self.settings.beats_per_bar {
            self.bar = BarTracker::new(s.beats_per_bar);
        }
        self.meter
            .set_shape(s.beats_per_bar, s.phrase_bars, s.latency);
        self.settings = s;
    }

    pub fn frames_per_sec(&self) -> f32 {
        self.settings.rate as f32 / HOP as f32
    }

    /// Seconds of stream time analysed so far (the end of the last hop).
    pub fn time(&self) -> f64 {
        self.samples as f64 / self.settings.rate as f64
    }

    /// Whether the beat trackers run (for `/audio/bpm` or for musical time).
    fn tracking(&self) -> bool {
        self.settings.bpm || self.settings.phase
    }

    /// Analyses one hop of mono samples (normally `HOP` long) and returns the frame.
    pub fn process(&mut self, hop: &[f32]) -> &AudioFrame {
        self.samples += hop.len() as u64;
        let tracking = self.tracking();
        let s = &self.settings;
        let now = self.samples as f64 / s.rate as f64;
        let dt = HOP as f64 / s.rate as f64;
        self.spectrum.process(hop);
        let rms = bands::rms(hop);
        self.bands.process(&self.spectrum, rms, s.smoothing);
        self.onset.process(&self.spectrum);
        let f = &mut self.frame;
        f.time = now;
        f.levels = *self.bands.values();
        f.onset = self.onset.strength();
        if s.spectrum {
            self.log_spectrum.process(&self.spectrum);
            f.spectrum = *self.log_spectrum.values();
        }
        // The tempo and beat trackers read the snare band's flux (the backbeat) as well.
        if s.drums || s.phase || tracking {
            self.drums.process(&self.spectrum);
            let hit = |d: &DrumHits, w| {
                let (hit, strength) = d.hit(w);
                DrumHit { hit, strength }
            };
            f.kick = hit(&self.drums, drums::KICK);
            f.snare = hit(&self.drums, drums::SNARE);
            f.hat = hit(&self.drums, drums::HAT);
        }
        f.beat = false;
        f.beat_time = 0.0;
        if tracking {
            self.tempo.process(
                self.onset.raw(),
                self.onset.mid(),
                self.drums.flux(drums::SNARE),
                self.beat.in_gap(),
            );
            self.beat.process(
                self.onset.accent(),
                self.drums.flux(drums::SNARE),
                self.tempo.period(),
            );
            f.bpm = self.tempo.bpm();
            f.bpm_confidence = self.tempo.confidence();
            if s.phase {
                // The evidence of where bars begin, for the beats about to be placed.
                self.chroma.process(&self.spectrum);
                let delay = OnsetStrength::delay_secs(&self.spectrum) as f64;
                let centre = now - 0.5 * self.spectrum.window_secs() as f64;
                if let Some((n, t)) = self.meter.last_beat() {
                    self.bar.announce(n, t);
                }
                if let Some((n, t)) = self.meter.next_beat() {
                    self.bar.announce(n, t);
                }
                self.bar.observe(
                    &self.chroma,
                    centre,
                    self.drums.flux(drums::KICK),
                    self.drums.flux(drums::SNARE),
                    now - delay,
                );
            }
            let tick = self.meter.tick(
                now,
                dt,
                self.beat.grid(),
                (self.bar.phase(), self.bar.confidence()),
                self.timeline.as_ref(),
            );
            if let Some(t) = tick.beat {
                f.beat = true;
                f.beat_time = t;
                f.count = tick.count;
            }
            f.phase = tick.phase;
            if let Some(tl) = &self.timeline {
                f.bpm = tl.bpm as f32;
                f.bpm_confidence = 1.0;
            }
        }
        // Pitch every other hop (23 ms): it moves slower than beats, and it costs as much as
        // the spectrum.
        if s.pitch && self.samples % (2 * HOP as u64) == 0 {
            self.pitch.process(self.spectrum.samples());
            f.pitch_hz = self.pitch.hz();
            f.pitch_confidence = self.pitch.confidence();
        }
        if s.structure || s.phase {
            let bass = {
                let mags = self.spectrum.magnitudes();
                let hi = self.spectrum.hz_bin(250.0);
                mags[1..hi].iter().map(|m| m * m).sum::<f32>().sqrt()
            };
            self.structure
                .process(rms, bass, self.spectrum.brightness());
            f.buildup = self.structure.buildup();
            f.drop = self.structure.drop();
            f.energy_trend = self.structure.energy_trend();
            f.brightness = self.structure.brightness();
            // A drop after a build-up or a breakdown begins a phrase (the bass takes ~0.2 s
            // to be heard back at full weight).
            if f.drop && !self.was_drop {
                self.meter.drop_at(now - 0.2);
            }
            self.was_drop = f.drop;
        }
        // A long quiet: the next song is another one; forget taps, hints and resync, and look
        // for its "1" where it begins.
        if rms < 1e-3 {
            self.quiet_hops = self.quiet_hops.saturating_add(1);
            if self.quiet_hops as f32 == SILENCE_RESET_SECS * self.frames_per_sec() {
                self.sounding = false;
                if let TempoHold::Near(_) = self.tempo.hold() {
                    self.tempo.set_hold(TempoHold::Free);
                }
                self.tapped = false;
                self.bar.force(None);
            }
        } else {
            self.quiet_hops = 0;
            if !self.sounding {
                self.sounding = true;
                self.bar.sound_starts(now - dt);
            }
        }
        &self.frame
    }

    pub fn frame(&self) -> &AudioFrame {
        &self.frame
    }

    /// A tap at `at` seconds of stream time (when the user heard the beat). Three or more set
    /// tempo and phase; the tracker refines from there. Says whether the tempo was set.
    pub fn tap(&mut self, at: f64) -> bool {
        let Some((period, last)) = self.taps.tap(at) else {
            return false;
        };
        let frames = (period * self.frames_per_sec() as f64) as f32;
        self.tempo.set_hold(TempoHold::Near(frames));
        self.beat.set_phase(last, frames);
        self.tapped = true;
        true
    }

    /// Twice (`factor` 2) or half (0.5) the tempo, keeping the last beat on the grid.
    pub fn scale_tempo(&mut self, factor: f32) -> bool {
        let p = self.tempo.period();
        if p <= 0.0 {
            return false;
        }
        let q = p / factor;
        self.tempo.set_hold(match self.tempo.hold() {
            TempoHold::Locked(_) => TempoHold::Locked(q),
            _ => TempoHold::Near(q),
        });
        if let Some((_, t)) = self.meter.last_beat() {
            self.beat.set_phase(t - self.meter.nudged(), q);
        }
        true
    }

    /// Moves the beat grid `secs` later (earlier when negative).
    pub fn nudge(&mut self, secs: f64) {
        self.meter.nudge(secs);
    }

    /// The beat nearest `at` (seconds of stream time) is a downbeat and begins a phrase.
    pub fn resync(&mut self, at: f64) -> bool {
        match self.meter.resync(at) {
            Some(n) => {
                self.bar.force(Some(n));
                true
            }
            None => false,
        }
    }

    /// Sets the tempo: locked (the tracker keeps only finding the phase), or as a hint it
    /// refines; `bpm` 0 gives the tempo back to the audio.
    pub fn set_tempo(&mut self, bpm: f64, lock: bool) {
        self.tapped = false;
        if bpm <= 0.0 {
            self.tempo.set_hold(TempoHold::Free);
            return;
        }
        let frames = (60.0 * self.frames_per_sec() as f64 / bpm) as f32;
        self.tempo.set_hold(if lock {
            TempoHold::Locked(frames)
        } else {
            TempoHold::Near(frames)
        });
    }

    /// Follows a Link session's timeline (beats, bars, tempo), or (None) the audio again.
    pub fn follow(&mut self, timeline: Option<Timeline>) {
        self.timeline = timeline;
    }

    pub fn tempo_source(&self) -> TempoSource {
        match (self.timeline.is_some(), self.tempo.hold()) {
            (true, _) => TempoSource::Link,
            (_, TempoHold::Locked(_)) => TempoSource::Locked,
            (_, TempoHold::Near(_)) if self.tapped => TempoSource::Tap,
            _ => TempoSource::Audio,
        }
    }

    /// The grid's nudge in seconds.
    pub fn nudged(&self) -> f64 {
        self.meter.nudged()
    }

    /// The beat grid the audio tracker fits now (not the session's): where its beats fall,
    /// for Link publishing.
    pub fn grid(&self) -> Option<super::beat::Grid> {
        self.beat.grid()
    }

    /// The last beat sent: its number, time, and place in the bar.
    pub fn last_beat(&self) -> Option<(i64, f64, i32)> {
        self.meter
            .last_beat()
            .map(|(n, t)| (n, t, self.frame.count[0]))
    }
}

impl AudioFrame {
    /// The OSC messages of this frame (SPEC section 4), for the features that are on. They are
    /// written over the last frame's messages in `out`, which keep their addresses and argument
    /// lists: a frame allocates nothing but the one message more that a frame with a beat holds.
    pub fn osc_messages(&self, s: &AnalysisSettings, out: &mut Vec<OscMessage>) {
        let mut out = Refill { msgs: out, len: 0 };
        let f = |x: f32| OscType::Float(x);
        out.put("/audio/levels", self.levels.map(f));
        if s.spectrum {
            out.put("/audio/spectrum", self.spectrum.map(f));
        }
        out.put(
            "/audio/beat",
            [OscType::Int(self.beat as i32), f(self.onset)],
        );
        if s.bpm {
            out.put("/audio/bpm", [f(self.bpm), f(self.bpm_confidence)]);
        }
        if s.pitch {
            out.put("/audio/pitch", [f(self.pitch_hz), f(self.pitch_confidence)]);
        }
        if s.structure {
            out.put(
                "/audio/structure",
                [
                    OscType::Int(self.buildup as i32),
                    OscType::Int(self.drop as i32),
                    f(self.energy_trend),
                    f(self.brightness),
                ],
            );
        }
        if s.phase {
            out.put("/audio/phase", self.phase.map(f));
            if self.beat {
                out.put("/audio/count", self.count.map(OscType::Int));
            }
        }
        if s.drums {
            for (addr, d) in [
                ("/audio/kick", self.kick),
                ("/audio/snare", self.snare),
                ("/audio/hat", self.hat),
            ] {
                out.put(addr, [OscType::Int(d.hit as i32), f(d.strength)]);
            }
        }
        out.done();
    }
}

/// A message list written over in place, message by message; `done` drops what is left past
/// the last message put.
struct Refill<'a> {
    msgs: &'a mut Vec<OscMessage>,
    len: usize,
}

impl Refill<'_> {
    /// The next message. The one already in its place keeps its allocations, its address too
    /// when that is the same (a frame with a beat holds `/audio/count`, so the messages after
    /// it move one place).
    fn put(&mut self, addr: &str, args: impl IntoIterator<Item = OscType>) {
        match self.msgs.get_mut(self.len) {
            Some(m) => {
                if m.addr != addr {
                    m.addr.clear();
                    m.addr.push_str(addr);
                }
                m.args.clear();
                m.args.extend(args);
            }
            None => self.msgs.push(OscMessage {
                addr: addr.into(),
                args: args.into_iter().collect(),
            }),
        }
        self.len += 1;
    }

    fn done(self) {
        self.msgs.truncate(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::eval::{f_measure, tempo_verdict, TempoVerdict};
    use crate::audio::synth::{generate, Genre};

    /// A generated clip analysed at its rate: its beat times, the last tempo reading, the clip.
    fn run(
        genre: Genre,
        seed: u64,
        rate: u32,
        secs: f64,
    ) -> (Vec<f64>, f32, crate::audio::synth::Clip) {
        analyse_clip(generate(genre, seed, rate, secs), rate)
    }

    /// The beats and the last tempo reading of `clip`, analysed at `rate`.
    fn analyse_clip(
        clip: crate::audio::synth::Clip,
        rate: u32,
    ) -> (Vec<f64>, f32, crate::audio::synth::Clip) {
        let (beats, bpm) = analyse_samples(&clip.samples, rate);
        (beats, bpm, clip)
    }

    /// `samples` at `rate` through `vj-audio analyze`'s path, default settings, each frame to
    /// `each`.
    fn analyse_at(samples: &[f32], rate: u32, each: impl FnMut(&AudioFrame)) {
        let settings = AnalysisSettings {
            rate,
            ..AnalysisSettings::default()
        };
        crate::audio::offline::analyze(samples, settings, each);
    }

    /// The beats and the last tempo reading of `samples`, analysed at `rate`.
    fn analyse_samples(samples: &[f32], rate: u32) -> (Vec<f64>, f32) {
        let mut beats = Vec::new();
        let mut bpm = 0.0;
        analyse_at(samples, rate, |f| {
            if f.beat {
                beats.push(f.beat_time);
            }
            bpm = f.bpm;
        });
        (beats, bpm)
    }

    #[test]
    fn known_tempos_are_found_and_beats_land_on_them() {
        // Four-on-the-floor, drum & bass (must read ~170, not 85) and swung hip-hop.
        for (genre, seed) in [
            (Genre::House, 21),
            (Genre::DrumAndBass, 22),
            (Genre::HipHop, 23),
        ] {
            assert_on_tempo_and_beat(&format!("{genre:?}"), run(genre, seed, 44_100, 20.0));
        }
    }

    /// The clip's tempo read right (within 4 %, no octave error) and its beats found (F > 0.9).
    fn assert_on_tempo_and_beat(
        what: &str,
        (beats, bpm, clip): (Vec<f64>, f32, crate::audio::synth::Clip),
    ) {
        assert_found(what, &beats, bpm, &clip.beats, clip.tempo);
    }

    /// `tempo` read right (within 4 %, no octave error) and the `truth` beats found (F > 0.9).
    fn assert_found(what: &str, beats: &[f64], bpm: f32, truth: &[f64], tempo: f64) {
        assert_eq!(
            tempo_verdict(tempo, bpm as f64),
            TempoVerdict::Right,
            "{what}: {bpm} vs {tempo}"
        );
        let f = f_measure(truth, beats);
        assert!(f > 0.9, "{what}: F {f}");
    }

    #[test]
    fn the_harder_corpus_keeps_its_tempo_octave_and_beat_phase() {
        // Tuning clips of the harder corpus that the tracker got wrong until 2026-12-01:
        // hiphop-02 read 174.8 BPM (its swung 8ths taken for beats, nothing between them),
        // dnb-01 read 87.6 (at half its tempo every beat has a snare), house-08 sat half a
        // beat off (open hats on the off-beats, loud in a noisy master, outvoted the kicks).
        for (genre, seed) in [
            (Genre::HipHop, 2),
            (Genre::DrumAndBass, 1),
            (Genre::House, 8),
        ] {
            let clip = crate::audio::synth::generate_hard(genre, seed, 44_100, 20.0);
            assert_on_tempo_and_beat(&format!("{genre:?}-{seed:02}"), analyse_clip(clip, 44_100));
        }
    }

    /// A recorded-drums clip kept in tests/data (a tuning clip of scripts/h2corpus.py) and its
    /// truth.
    fn recorded(name: &str) -> (crate::audio::offline::Mono, crate::audio::eval::Truth) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let wav = crate::audio::offline::read_wav(&dir.join(format!("{name}.wav"))).unwrap();
        let text = std::fs::read_to_string(dir.join(format!("{name}.beats"))).unwrap();
        (wav, crate::audio::eval::parse_truth(&text).unwrap())
    }

    /// The true beat within the scoring tolerance (70 ms) of a beat sent at `t`, if any (the
    /// nearest).
    fn true_beat(beats: &[f64], t: f64) -> Option<usize> {
        (0..beats.len())
            .min_by(|&a, &b| (beats[a] - t).abs().total_cmp(&(beats[b] - t).abs()))
            .filter(|&i| (beats[i] - t).abs() < crate::audio::eval::TOLERANCE)
    }

    #[test]
    fn recorded_drums_with_dotted_accents_keep_the_quarter_note_tempo() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seed 1; 12 s, mono):
        // funk with a kick on the "a" of 1 and the "and" of 2 under 16th hats, and 3+3+2
        // accents played on a cajon. Both read 123 BPM, 4/3 of their tempo, until the slower
        // level's evenly filled half period settled it.
        for name in ["h2-funk-001", "h2-odd-001"] {
            let (wav, truth) = recorded(name);
            let (beats, bpm) = analyse_samples(&wav.samples, wav.rate);
            assert_found(name, &beats, bpm, &truth.beats, truth.tempo);
        }
    }

    #[test]
    fn recorded_grooves_at_90_with_16th_hats_are_read_at_90_not_180() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seeds 9 and 13; 12 s,
        // mono): hand percussion and 3+3+2 at 90 BPM, 16ths throughout, the snares (a slap, a
        // clap) on 2 and 4. Both read 180 (the prior's centre is 150, and the 16ths fill the
        // faster beat's 8ths) until the snare band repeating every four of its beats, not every
        // two, halved it.
        for name in ["h2-odd-015", "h2-percussion-011"] {
            let (wav, truth) = recorded(name);
            let (_, bpm) = analyse_samples(&wav.samples, wav.rate);
            assert_eq!(
                tempo_verdict(truth.tempo, bpm as f64),
                TempoVerdict::Right,
                "{name}: {bpm} BPM, truly {}",
                truth.tempo
            );
        }
    }

    /// Recorded clip `name` (tests/data) gives at least `at_least` beats after `secs`, and none
    /// of them off a true beat.
    fn assert_on_the_beat_after(name: &str, secs: f64, at_least: usize) {
        let (wav, truth) = recorded(name);
        let (beats, _) = analyse_samples(&wav.samples, wav.rate);
        let settled: Vec<f64> = beats.into_iter().filter(|&t| t > secs).collect();
        let off = settled
            .iter()
            .filter(|&&t| true_beat(&truth.beats, t).is_none())
            .count();
        assert!(
            settled.len() >= at_least && off == 0,
            "{name}: {off} of the {} beats after {secs} s off the beat",
            settled.len()
        );
    }

    #[test]
    fn recorded_drums_with_kicks_between_the_beats_are_beaten_on_the_beat() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seed 1; 12 s, mono):
        // drum & bass with a kick on the "and" of 3, and 3+3+2 kicks under claps on 2 and 4.
        // The comb fits each half a beat off as well as on the beat, and every beat of both
        // was half a beat off (F 0) until the less syncopated reading chose between them.
        for name in ["h2-dnb-001", "h2-odd-004"] {
            assert_on_the_beat_after(name, 7.0, 7);
        }
    }

    #[test]
    fn recorded_funk_is_beaten_with_its_snares_on_the_beats() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seeds 5 and 9; 12 s,
        // mono): funk with kicks on the "a" and the "and"s, 16th hats and ghost snares. The
        // comb and the syncopation put the beat half a beat off (F 0 and 0.67 on these cuts)
        // until the backbeat, snares alternating on the beats and not on the 8ths, chose.
        for name in ["h2-funk-008", "h2-funk-011"] {
            assert_on_the_beat_after(name, 7.0, 6);
        }
    }

    #[test]
    fn a_funk_groove_keeps_its_tempo_once_found() {
        // Tuning clip of the recorded-drums corpus (scripts/h2corpus.py, seed 1; 16 s, mono):
        // funk at 104 BPM with kicks on the "a" of 1 and the "and" of 2, whose three 16ths
        // score nearly as well as its beat. Holding only octaves, the reading turned to 139
        // (4:3) at 4.5 s and back and forth from 8.8 s, the beats lost at each turn.
        let (wav, truth) = recorded("h2-funk-002");
        let mut readings = Vec::new();
        analyse_at(&wav.samples, wav.rate, |f| {
            if f.time > 3.0 {
                readings.push((f.time, f.bpm));
            }
        });
        let wrong: Vec<(f64, f32)> = readings
            .iter()
            .copied()
            .filter(|&(_, bpm)| tempo_verdict(truth.tempo, bpm as f64) != TempoVerdict::Right)
            .collect();
        assert!(
            !readings.is_empty() && wrong.is_empty(),
            "{} of {} readings after 3 s wrong, the first at {:?} (truly {} BPM)",
            wrong.len(),
            readings.len(),
            wrong.first(),
            truth.tempo
        );
    }

    #[test]
    fn the_amen_break_is_beaten_on_the_beat_through_its_whole_cycle() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seed 5; 16 s, mono):
        // the four-bar amen at 142 and 137 BPM, kicks on 1, the "and" of 1 and the "and" of 3,
        // snares on 2 and 4 and the 16ths around them, the ride on the 8ths. Its third and
        // fourth bars fit the off-beat better than the beat; choosing over the last two bars,
        // the tracker sat half a beat off for two bars in every four (9 of the 20 beats after
        // 8 s of the first) until the choice weighed the whole cycle.
        for name in ["h2-breakbeat-006", "h2-breakbeat-008"] {
            assert_on_the_beat_after(name, 8.0, 16);
        }
    }

    #[test]
    fn a_loop_cut_to_the_bar_is_counted_from_where_it_begins() {
        // Tuning clips of the recorded-drums corpus (scripts/h2corpus.py, seeds 1 and 5; 12 s,
        // mono), loops that begin on their "1" with nothing else to tell it from the "3":
        // house (claps on 2 and 4 over four kicks) and hip-hop with kicks on 1 and 3, no bed.
        // The bar tracker's guess swung between the two (a third and a quarter of the "1"s
        // after 7 s right) until the beat the music began on started ahead.
        for name in ["h2-house-001", "h2-hiphop-006"] {
            let (wav, truth) = recorded(name);
            let mut ones = Vec::new();
            analyse_at(&wav.samples, wav.rate, |f| {
                if f.beat && f.count[0] == 1 && f.beat_time > 7.0 {
                    ones.push(f.beat_time);
                }
            });
            let wrong: Vec<f64> = ones
                .iter()
                .copied()
                .filter(|&t| true_beat(&truth.beats, t).is_none_or(|i| truth.positions[i] != 1))
                .collect();
            assert!(
                ones.len() >= 2 && wrong.is_empty(),
                "{name}: downbeats after 7 s at {ones:?}, not on a \"1\": {wrong:?}"
            );
        }
    }

    #[test]
    fn a_kick_with_hits_just_after_it_is_beaten_on_the_kick() {
        // Tuning clip house-01 (hard corpus, seed 1): two more hits follow each kick 35 and
        // 70 ms later, nearly as strong. With its tempo read exactly (126.50 BPM, not 126.34)
        // the phase fit took the last of them and beat 75 ms late all through (F 0).
        let c = crate::audio::synth::generate_hard(Genre::House, 1, 44_100, 30.0);
        let mut times = Vec::new();
        crate::audio::offline::analyze(&c.samples, AnalysisSettings::default(), |f| {
            if f.beat {
                times.push(f.beat_time);
            }
        });
        let f = f_measure(&c.beats, &times);
        assert!(f >= 0.95, "beat F {f:.3}");
    }

    #[test]
    fn a_clave_on_the_one_does_not_move_the_bar_to_beat_three() {
        // Recorded hand percussion (h2 tuning clip percussion-003, mono): the cajon's thump on 1
        // and 3, its slap on 2 and 4, and a clave on the 1 that the drum detector hears as a
        // snare, under a bed whose chord changes with the bar. Drums alone call beat 3 the "1";
        // the harmony must win. Before harmony counted twice, none of the 26 beats after 15 s was.
        let (right, all) = placed_right_after("h2-percussion-003", 15.0);
        assert!(all >= 20, "{all} beats matched after 15 s");
        assert!(
            right as f32 >= 0.75 * all as f32,
            "{right} of {all} beats on the right place in the bar"
        );
    }

    /// Of the beats of recorded clip `name` (tests/data) after `secs` that are on a true beat,
    /// how many are on the right place in the bar, and how many there are.
    fn placed_right_after(name: &str, secs: f64) -> (u32, u32) {
        let (wav, truth) = recorded(name);
        let (mut right, mut all) = (0, 0);
        analyse_at(&wav.samples, wav.rate, |f| {
            if !f.beat || f.beat_time < secs {
                return;
            }
            let Some(i) = true_beat(&truth.beats, f.beat_time) else {
                return;
            };
            all += 1;
            right += (f.count[0] as u32 == truth.positions[i]) as u32;
        });
        (right, all)
    }

    #[test]
    fn hand_percussion_without_chords_is_counted_from_its_one() {
        // A tuning clip of the recorded-drums corpus (scripts/h2corpus.py, seed 1; 16 s, mono,
        // begun inside a bar, no bed): a cajon's thump on 1 and 3 (and the "a" of each), its
        // slap on 2 and 4 (softer on their "and"s), maracas in 16ths, and a clave on the 1, the
        // "a" of 1, the "and" of 2, the "and" of 3 and on 4. Beats 1 and 3 sound alike and no
        // chord marks the bar: only the drums of the whole bar tell them apart. Read a beat at
        // a time, every beat after 8 s was counted from the "3".
        let (right, all) = placed_right_after("h2-percussion-001", 10.0);
        assert!(all >= 8, "{all} beats matched after 10 s");
        assert_eq!(
            right, all,
            "{right} of {all} beats on the right place in the bar"
        );
    }

    #[test]
    fn a_confident_downbeat_is_on_the_right_place_in_the_bar() {
        // Beats sent with downbeat confidence >= 0.8 (the calibrated share of right ones) are
        // right at least nine times in ten, and more often than the unsure ones: on the tuning
        // clips, synthetic (hard corpus, seeds 1-2) and recorded drums (tests/data).
        let mut clips = Vec::new();
        for name in ["h2-funk-001", "h2-odd-001"] {
            let (wav, truth) = recorded(name);
            clips.push((wav.samples, wav.rate, truth.beats, truth.positions));
        }
        for (genre, seed) in [(Genre::House, 1), (Genre::Breakbeat, 2), (Genre::HipHop, 1)] {
            let c = crate::audio::synth::generate_hard(genre, seed, 44_100, 20.0);
            clips.push((c.samples, 44_100, c.beats, c.positions));
        }
        let (mut sure, mut unsure) = ((0, 0), (0, 0));
        for (samples, rate, beats, positions) in &clips {
            analyse_at(samples, *rate, |f| {
                let Some(i) = true_beat(beats, f.beat_time).filter(|_| f.beat) else {
                    return;
                };
                let right = f.count[0] as u32 == positions[i];
                let tally = match f.phase[3] {
                    c if c >= 0.8 => &mut sure,
                    c if c > 0.0 && c < 0.5 => &mut unsure,
                    _ => return,
                };
                tally.0 += 1;
                tally.1 += right as u32;
            });
        }
        let share = |(n, right): (u32, u32)| right as f64 / n.max(1) as f64;
        eprintln!("confident beats {sure:?} (count, right), unsure {unsure:?}");
        assert!(sure.0 >= 30, "only {} confident beats", sure.0);
        assert!(share(sure) >= 0.9, "confident beats right: {sure:?}");
        assert!(
            share(sure) > share(unsure),
            "sure {sure:?}, unsure {unsure:?}"
        );
    }

    /// The readings of `/audio/bpm` after `from` seconds that are not the clip's tempo.
    fn wrong_tempo_readings(genre: Genre, seed: u64, secs: f64, from: f64) -> (f64, Vec<f32>) {
        let clip = generate(genre, seed, 44_100, secs);
        let mut wrong = Vec::new();
        crate::audio::offline::analyze(&clip.samples, AnalysisSettings::default(), |f| {
            if f.time > from && tempo_verdict(clip.tempo, f.bpm as f64) != TempoVerdict::Right {
                wrong.push(f.bpm);
            }
        });
        (clip.tempo, wrong)
    }

    #[test]
    fn a_96_khz_interface_gets_the_beats_a_48_khz_one_does() {
        // Analysed at its own rate, 96 kHz house (tuning seeds 1-3) had its grid half a beat
        // off on one clip and 15 ms late on the others; decimated, it is as at 48 kHz.
        for seed in [1, 2, 3] {
            let mut offsets = Vec::new();
            for rate in [48_000, 96_000] {
                let (beats, _, clip) = run(Genre::House, seed, rate, 30.0);
                let (f, offset) = crate::audio::eval::f_measure_offset(&clip.beats, &beats);
                assert!(f > 0.95, "house-{seed:02} at {rate} Hz: F {f}");
                offsets.push(offset);
            }
            let apart = (offsets[1] - offsets[0]).abs();
            assert!(
                apart < 0.008,
                "house-{seed:02}: beats {offsets:?} s from the truth at 48 / 96 kHz"
            );
        }
    }

    #[test]
    fn beats_land_within_5_ms_of_the_truth_at_44_48_and_96_khz() {
        // The same clips at three device rates: every delay is kept in seconds (the onset
        // delay was 2 frames, 23 ms at 44.1 kHz but 21 at 48; techno-01 came out 28 ms late
        // at 48 kHz), so the beats sit where the sound is at each.
        for (genre, seed) in [(Genre::Techno, 1), (Genre::House, 2)] {
            for rate in [44_100, 48_000, 96_000] {
                let (beats, _, clip) = run(genre, seed, rate, 20.0);
                let (f, offset) = crate::audio::eval::f_measure_offset(&clip.beats, &beats);
                assert!(f > 0.95, "{genre:?}-{seed:02} at {rate} Hz: F {f}");
                assert!(
                    offset.abs() <= 0.005,
                    "{genre:?}-{seed:02} at {rate} Hz: beats {:+.1} ms from the truth",
                    1000.0 * offset
                );
            }
        }
    }

    #[test]
    fn drum_and_bass_does_not_flip_between_octaves() {
        // The corpus' dnb-01: 175 and 87.5 BPM score almost alike, and before the octave
        // hysteresis the reading flip-flopped between them for seconds.
        let (tempo, wrong) = wrong_tempo_readings(Genre::DrumAndBass, 1, 8.0, 2.5);
        assert!(wrong.is_empty(), "{tempo} BPM read as {wrong:?}");
    }

    #[test]
    fn drum_and_bass_is_not_read_at_two_thirds_of_its_tempo() {
        // The corpus' dnb-07: 168.5 and 112.3 BPM score alike (its kick on the "and" of 3
        // repeats every 1.5 beats), and it read 112 from 5 s to 27 s.
        let (tempo, wrong) = wrong_tempo_readings(Genre::DrumAndBass, 7, 12.0, 3.0);
        assert!(
            wrong.is_empty(),
            "{tempo} BPM read as {:?}",
            &wrong[..wrong.len().min(5)]
        );
    }

    #[test]
    fn a_sine_gives_its_pitch_and_toggles_stop_their_stage() {
        let tone: Vec<f32> = (0..44_100)
            .map(|i| 0.4 * (std::f32::consts::TAU * 220.0 * i as f32 / 44_100.0).sin())
            .collect();
        let mut a = Analyzer::new(AnalysisSettings::default());
        let mut last = AudioFrame::default();
        for hop in tone.chunks_exact(HOP) {
            last = *a.process(hop);
        }
        assert!((last.pitch_hz - 220.0).abs() < 3.0, "{}", last.pitch_hz);
        assert!(last.pitch_confidence > 0.9);
        let mut msgs = Vec::new();
        last.osc_messages(a.settings(), &mut msgs);
        assert_eq!(msgs.len(), 10);
        a.set_settings(AnalysisSettings {
            pitch: false,
            spectrum: false,
            ..AnalysisSettings::default()
        });
        let f = *a.process(&tone[..HOP]);
        f.osc_messages(a.settings(), &mut msgs);
        let addrs: Vec<&str> = msgs.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "/audio/levels",
                "/audio/beat",
                "/audio/bpm",
                "/audio/structure",
                "/audio/phase",
                "/audio/kick",
                "/audio/snare",
                "/audio/hat"
            ]
        );
    }

    #[test]
    fn a_frame_written_over_the_last_one_says_only_what_it_says() {
        // A beat adds /audio/count: the messages after it move, and go back the frame after.
        let beat = AudioFrame {
            beat: true,
            onset: 0.9,
            count: [2, 1, 0],
            bpm: 124.0,
            ..AudioFrame::default()
        };
        let quiet = AudioFrame {
            levels: [0.5; BANDS + 1],
            pitch_hz: 220.0,
            ..AudioFrame::default()
        };
        let settings = AnalysisSettings::default();
        let mut reused = Vec::new();
        for frame in [quiet, beat, quiet, beat] {
            frame.osc_messages(&settings, &mut reused);
            let mut fresh = Vec::new();
            frame.osc_messages(&settings, &mut fresh);
            assert_eq!(reused, fresh);
        }
    }

    /// Downbeat F-measure of a hard clip, from the positions the analyzer gave its beats.
    fn downbeat_f(genre: Genre, seed: u64, rate: u32) -> (f64, f64) {
        let clip = crate::audio::synth::generate_hard(genre, seed, rate, 30.0);
        let (mut times, mut positions) = (Vec::new(), Vec::new());
        analyse_at(&clip.samples, rate, |f| {
            if f.beat {
                times.push(f.beat_time);
                positions.push(f.count[0] as u32);
            }
        });
        let truth = crate::audio::eval::downbeats(&clip.beats, &clip.positions);
        let found = crate::audio::eval::downbeats(&times, &positions);
        (f_measure(&truth, &found), f_measure(&clip.beats, &times))
    }

    #[test]
    fn downbeats_are_found_in_the_audio() {
        // Clips of the harder corpus start anywhere in a bar: counting from the first beat
        // finds the "1" on one clip in four.
        let mut scores = Vec::new();
        for (genre, seed) in [
            (Genre::House, 2),
            (Genre::Techno, 3),
            (Genre::HipHop, 1),
            (Genre::Breakbeat, 2),
        ] {
            let (down, beats) = downbeat_f(genre, seed, 44_100);
            scores.push((genre, down, beats));
        }
        for (genre, down, beats) in scores {
            assert!(beats > 0.9, "{genre:?}: beat F {beats}");
            assert!(down > 0.8, "{genre:?}: downbeat F {down}");
        }
    }

    #[test]
    fn a_breakbeat_with_its_kicks_off_the_beat_stays_on_the_beat() {
        // The corpus' breakbeat-18: kicks on 1, the "and" of 2 and the "and" of 3 score the
        // off-beat grid like the beat; before the mids (the snares) had their own vote, the
        // grid went half a beat off at 6.4 s and stayed there.
        let (beats, _, clip) = run(Genre::Breakbeat, 18, 44_100, 30.0);
        let f = f_measure(&clip.beats, &beats);
        assert!(f > 0.95, "F {f}");
    }

    #[test]
    fn beats_are_back_on_the_grid_within_three_seconds_of_the_drop() {
        // The corpus' breakdown-02 and -04: before the tempo held through the breakdown, its
        // riser pulled the reading away, and the grid came out of the drop half a beat off.
        for seed in [2, 4] {
            let (beats, _, clip) = run(Genre::Breakdown, seed, 44_100, 30.0);
            let drop = clip.drop.expect("a breakdown clip has a drop");
            let lock = crate::audio::eval::lock_time(&clip.beats, &beats, drop);
            assert!(
                lock.is_some_and(|t| t <= 3.0),
                "breakdown-{seed:02}: locked {lock:?} s after the drop"
            );
        }
    }

    #[test]
    fn a_phrase_begins_at_the_drop() {
        // The breakdown starts a third into the clip, not on an 8-bar line: counted from the
        // start the drop would land mid-phrase; re-anchored, its downbeat is bar 1.
        for seed in [1, 3] {
            let clip = generate(Genre::Breakdown, seed, 44_100, 30.0);
            let drop = clip.drop.expect("a drop");
            let mut counts = Vec::new();
            crate::audio::offline::analyze(&clip.samples, AnalysisSettings::default(), |f| {
                if f.beat && f.count[0] == 1 && f.beat_time > drop + 1.0 {
                    counts.push((f.beat_time, f.count[1]));
                }
            });
            let (t, bar) = counts.first().copied().expect("downbeats after the drop");
            let bars_after = ((t - drop) / (4.0 * 60.0 / clip.tempo)).round() as i32;
            assert_eq!(bar, bars_after + 1, "breakdown-{seed:02}: {counts:?}");
        }
    }

    #[test]
    fn a_drop_after_a_breakdown_is_flagged() {
        let clip = generate(Genre::Breakdown, 3, 44_100, 30.0);
        // The breakdown spans bars [bars/3, bars/3 + 8); the drop is its end.
        let bars = clip.beats.len() / 4;
        let drop_at = clip.beats[(bars / 3 + 8) * 4];
        let mut drops = Vec::new();
        let mut was = false;
        crate::audio::offline::analyze(&clip.samples, AnalysisSettings::default(), |f| {
            if f.drop && !was {
                drops.push(f.time);
            }
            was = f.drop;
        });
        // One flag, at the drop: a flag on every bar (or none) must not pass.
        assert!(
            !drops.is_empty(),
            "no drop flagged; the drop is at {drop_at:.1}"
        );
        assert!(
            drops.len() == 1 && (drops[0] - drop_at).abs() < 1.0,
            "drop at {drop_at:.1}, flagged at {drops:?}"
        );
    }

    #[test]
    fn a_build_up_is_flagged_under_the_riser_and_not_in_the_groove() {
        let clip = generate(Genre::Breakdown, 3, 44_100, 30.0);
        // The breakdown spans bars [bars/3, bars/3 + 8); its riser the last four of them.
        let bars = clip.beats.len() / 4;
        let groove_end = clip.beats[(bars / 3) * 4];
        let riser = (
            clip.beats[(bars / 3 + 4) * 4],
            clip.beats[(bars / 3 + 8) * 4],
        );
        let (mut in_groove, mut under_riser) = (0, 0);
        crate::audio::offline::analyze(&clip.samples, AnalysisSettings::default(), |f| {
            if f.buildup && f.time < groove_end {
                in_groove += 1;
            }
            if f.buildup && f.time > riser.0 && f.time <= riser.1 {
                under_riser += 1;
            }
        });
        assert_eq!(
            in_groove, 0,
            "build-up flagged in the groove before {groove_end:.1} s"
        );
        assert!(
            under_riser > 0,
            "no build-up under the riser {:.1}-{:.1} s",
            riser.0,
            riser.1
        );
    }
}
