//! The audio panel: `/audio/*` as the analyzer sends it — the 8 levels as bars, the 32-bin
//! spectrum, a beat flash, BPM and confidence, beat-in-bar and bar-in-phrase, kick/snare/hat
//! flashes, pitch, build-up and drop — and the tempo keys (`t` tap, `x` ×2, `/` ÷2, `n`/`N`
//! nudge), which are commands to `audio_analyzer`. Musical time (`/audio/count`,
//! `/audio/phase`, the drums) shows `—` until the analyzer sends it. The title says what the
//! analyzer listens to (its status line), and `i` switches it to the next input.

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use serde_json::json;

use crate::console::feed::Request;
use crate::console::telemetry::OscMsg;
use crate::console::ui;
use crate::registry::AUDIO;

/// How long a beat or drum stays lit.
const FLASH: Duration = Duration::from_millis(110);
/// Audio silent this long: the panel says so.
const STALE: Duration = Duration::from_secs(2);
/// One nudge moves the beat grid this much (`n` later, `N` earlier).
pub const NUDGE_MS: i64 = 10;

const LEVEL_LABELS: [&str; 8] = ["SB", "BA", "LM", "MI", "HM", "PR", "AI", "RM"];

#[derive(Debug, Clone, Default)]
pub struct AudioPanel {
    levels: Option<Vec<f32>>,
    spectrum: Option<Vec<f32>>,
    beat_at: Option<Instant>,
    bpm: Option<(f32, f32)>,
    pitch: Option<(f32, f32)>,
    /// build-up, drop, energy trend, brightness.
    structure: Option<(bool, bool, f32, f32)>,
    /// beat, bar, phrase phase, downbeat confidence.
    phase: Option<[f32; 4]>,
    /// beat in bar, bar in phrase, phrases since lock.
    count: Option<(i64, i64, i64)>,
    /// kick, snare, hat: the last onset, once the analyzer sends them at all.
    drums: [Option<Option<Instant>>; 3],
    last_frame: Option<Instant>,
    /// What the analyzer listens to, from its status line ("capturing what plays on 'HDMI'").
    pub input: Option<String>,
}

/// What the analyzer's status line says it listens to: the part before " at N fps".
pub fn input_of(detail: &str) -> Option<String> {
    let (what, _) = detail.split_once(" at ")?;
    let what = what.strip_prefix("analyzing ").unwrap_or(what);
    Some(what.to_string())
}

fn lit_if(on: bool, color: Color) -> ratatui::style::Style {
    if on {
        ui::lit(color)
    } else {
        ui::dim()
    }
}

impl AudioPanel {
    /// Takes one `/audio/*` message that arrived `at`; false if it is not one of ours.
    pub fn apply(&mut self, m: &OscMsg, at: Instant) -> bool {
        match m.address.as_str() {
            "/audio/levels" => {
                self.levels = m.floats().filter(|v| v.len() == 8);
                self.last_frame = Some(at);
            }
            "/audio/spectrum" => self.spectrum = m.floats(),
            "/audio/beat" => {
                if m.i(0) == Some(1) {
                    self.beat_at = Some(at);
                }
            }
            "/audio/bpm" => self.bpm = m.f(0).zip(m.f(1)),
            "/audio/pitch" => self.pitch = m.f(0).zip(m.f(1)),
            "/audio/structure" => {
                if let (Some(b), Some(d), Some(t), Some(br)) = (m.i(0), m.i(1), m.f(2), m.f(3)) {
                    self.structure = Some((b != 0, d != 0, t, br));
                }
            }
            "/audio/phase" => {
                if let (Some(a), Some(b), Some(c), Some(d)) = (m.f(0), m.f(1), m.f(2), m.f(3)) {
                    self.phase = Some([a, b, c, d]);
                }
            }
            "/audio/count" => {
                if let (Some(a), Some(b), Some(c)) = (m.i(0), m.i(1), m.i(2)) {
                    self.count = Some((a, b, c));
                }
            }
            a @ ("/audio/kick" | "/audio/snare" | "/audio/hat") => {
                let i = ["/audio/kick", "/audio/snare", "/audio/hat"]
                    .iter()
                    .position(|x| *x == a)
                    .unwrap_or(0);
                let slot = self.drums[i].get_or_insert(None);
                if m.i(0) == Some(1) {
                    *slot = Some(at);
                }
            }
            _ => return false,
        }
        true
    }

    /// Its keys: tempo commands to the analyzer.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Request> {
        let send = |cmd: &str, args: serde_json::Value| {
            Some(Request::Send {
                worker: &AUDIO,
                cmd: cmd.to_string(),
                args: args.as_object().cloned().unwrap_or_default(),
            })
        };
        match key.code {
            KeyCode::Char('t') => send("tap", json!({})),
            KeyCode::Char('x') | KeyCode::Char('*') => send("tempo_double", json!({})),
            KeyCode::Char('/') => send("tempo_half", json!({})),
            KeyCode::Char('n') => send("nudge", json!({ "ms": NUDGE_MS })),
            KeyCode::Char('N') => send("nudge", json!({ "ms": -NUDGE_MS })),
            KeyCode::Char('i') => Some(Request::NextInput),
            _ => None,
        }
    }

    pub fn has_audio(&self) -> bool {
        self.last_frame.is_some()
    }

    fn flashing(at: Option<Instant>, now: Instant) -> bool {
        at.is_some_and(|t| now.saturating_duration_since(t) < FLASH)
    }

    fn tempo_text(&self) -> String {
        match self.bpm {
            Some((bpm, _)) if bpm <= 0.0 => "finding tempo".to_string(),
            Some((bpm, conf)) => format!("{bpm:5.1} BPM {:>3.0}%", conf * 100.0),
            None => "— BPM".to_string(),
        }
    }

    fn counts_text(&self) -> String {
        match self.count {
            Some((beat, bar, _)) => format!("beat {beat} · bar {bar}"),
            None => "beat — · bar —".to_string(),
        }
    }

    fn pitch_text(&self) -> String {
        match self.pitch {
            Some((hz, conf)) if hz > 0.0 => format!("{hz:.0} Hz {:>2.0}%", conf * 100.0),
            Some(_) => "unvoiced".to_string(),
            None => "pitch —".to_string(),
        }
    }

    /// The right-hand column: beat, tempo, musical time, drums, pitch, structure.
    pub fn facts(&self, now: Instant) -> Vec<Line<'static>> {
        let beat = Self::flashing(self.beat_at, now);
        let mut drums = Vec::new();
        for (i, (name, color)) in [("K", Color::Red), ("S", Color::Yellow), ("H", Color::Cyan)]
            .into_iter()
            .enumerate()
        {
            let text = match self.drums[i] {
                None => format!("{name}—"),
                Some(_) => format!(" {name} "),
            };
            let on = self.drums[i]
                .flatten()
                .is_some_and(|t| Self::flashing(Some(t), now));
            drums.push(Span::styled(text, lit_if(on, color)));
            drums.push(Span::raw(" "));
        }
        drums.push(Span::raw(self.pitch_text()));
        let (build, drop, trend) = match self.structure {
            Some((b, d, t, _)) => (b, d, format!(" trend {t:+.2}")),
            None => (false, false, " structure —".to_string()),
        };
        vec![
            Line::from(vec![
                Span::styled(" BEAT ", lit_if(beat, Color::Yellow)),
                Span::raw(" "),
                Span::styled(self.tempo_text(), ui::bold()),
            ]),
            Line::from(vec![
                Span::raw(self.counts_text()),
                Span::styled(self.phase_bar(), ui::dim()),
            ]),
            Line::from(drums),
            Line::from(vec![
                Span::styled(" BUILD-UP ", lit_if(build, Color::Yellow)),
                Span::raw(" "),
                Span::styled(" DROP ", lit_if(drop, Color::Red)),
                Span::styled(trend, ui::dim()),
            ]),
        ]
    }

    /// Where in the bar we are, as a short bar (`/audio/phase`), or nothing before it arrives.
    fn phase_bar(&self) -> String {
        match self.phase {
            Some([_, bar, _, _]) => format!(" {}", ui::hbar(bar, 4)),
            None => String::new(),
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, now: Instant, no_telemetry: Option<&str>) {
        let stale = self
            .last_frame
            .is_some_and(|t| now.saturating_duration_since(t) > STALE);
        let mut title = vec![Span::raw(" audio ")];
        if let Some(input) = &self.input {
            title.push(Span::styled(format!("· {input} "), ui::dim()));
        }
        if stale {
            title.push(Span::styled("silent for a while ", ui::warn()));
        }
        let inner = ui::frame(f, area, Line::from(title));
        if let Some(why) = no_telemetry.filter(|_| !self.has_audio()) {
            let line = Line::styled(format!("no telemetry: {why}"), ui::warn());
            ui::write_lines(f, inner, &[line]);
            return;
        }
        if !self.has_audio() {
            let line = Line::styled("no /audio/* yet — is audio_analyzer running?", ui::dim());
            ui::write_lines(f, inner, &[line]);
            return;
        }
        let [levels, spectrum, facts] = Layout::horizontal([
            Constraint::Length(24),
            Constraint::Length(32),
            Constraint::Min(22),
        ])
        .spacing(1)
        .areas(inner);
        let bars_height = inner.height.saturating_sub(1).max(1);
        let level_values = self.levels.clone().unwrap_or_default();
        let mut lines: Vec<Line> = ui::column_bars(&level_values, bars_height, 2, 1)
            .into_iter()
            .map(|s| Line::styled(s, ratatui::style::Style::default().fg(Color::Green)))
            .collect();
        lines.push(Line::styled(LEVEL_LABELS.join(" "), ui::dim()));
        ui::write_lines(f, levels, &lines);

        let spec = self.spectrum.clone().unwrap_or_default();
        let mut lines: Vec<Line> = ui::column_bars(&spec, bars_height, 1, 0)
            .into_iter()
            .map(|s| Line::styled(s, ratatui::style::Style::default().fg(Color::Magenta)))
            .collect();
        lines.push(Line::styled(
            format!("spectrum · {} bins", spec.len()),
            ui::dim(),
        ));
        ui::write_lines(f, spectrum, &lines);
        ui::write_lines(f, facts, &self.facts(now));
    }

    /// One plain line for the snapshot.
    pub fn plain(&self) -> String {
        if !self.has_audio() {
            return "no /audio/* seen".to_string();
        }
        let drums: Vec<String> = ["kick", "snare", "hat"]
            .iter()
            .zip(&self.drums)
            .map(|(n, d)| format!("{n} {}", if d.is_some() { "seen" } else { "—" }))
            .collect();
        let structure = match self.structure {
            Some((b, d, t, _)) => {
                let yes = |x: bool| if x { "yes" } else { "no" };
                format!("build-up {}, drop {}, trend {t:+.2}", yes(b), yes(d))
            }
            None => "structure —".to_string(),
        };
        let levels: Vec<String> = LEVEL_LABELS
            .iter()
            .zip(self.levels.iter().flatten())
            .map(|(l, v)| format!("{l} {v:.2}"))
            .collect();
        [
            format!("input {}", self.input.as_deref().unwrap_or("—")),
            self.tempo_text().trim().to_string(),
            self.counts_text(),
            drums.join(" "),
            self.pitch_text(),
            structure,
            format!("levels {}", levels.join(" ")),
        ]
        .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(addr: &str, args: serde_json::Value) -> OscMsg {
        OscMsg::new(addr, args.as_array().unwrap().clone())
    }

    #[test]
    fn musical_time_shows_dashes_until_it_arrives() {
        let now = Instant::now();
        let mut p = AudioPanel::default();
        p.apply(
            &msg(
                "/audio/levels",
                json!([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
            ),
            now,
        );
        p.apply(&msg("/audio/bpm", json!([124.0, 0.82])), now);
        let text: Vec<String> = p.facts(now).iter().map(ui::text_of).collect();
        assert!(text[0].contains("124.0 BPM  82%"), "{text:?}");
        assert!(text[1].contains("beat — · bar —"), "{text:?}");
        assert!(text[2].starts_with("K— S— H—"), "{text:?}");
        p.apply(&msg("/audio/count", json!([3, 5, 1])), now);
        p.apply(&msg("/audio/kick", json!([1, 0.9])), now);
        let text: Vec<String> = p.facts(now).iter().map(ui::text_of).collect();
        assert!(text[1].contains("beat 3 · bar 5"), "{text:?}");
        assert!(text[2].starts_with(" K  S— H—"), "{text:?}");
    }

    #[test]
    fn a_beat_flashes_briefly() {
        let t0 = Instant::now();
        let mut p = AudioPanel::default();
        p.apply(&msg("/audio/beat", json!([1, 0.7])), t0);
        assert!(AudioPanel::flashing(
            p.beat_at,
            t0 + Duration::from_millis(50)
        ));
        assert!(!AudioPanel::flashing(
            p.beat_at,
            t0 + Duration::from_millis(300)
        ));
        p.apply(
            &msg("/audio/beat", json!([0, 0.1])),
            t0 + Duration::from_millis(12),
        );
        assert_eq!(p.beat_at, Some(t0), "a 0 frame is not a beat");
    }

    #[test]
    fn tempo_keys_are_analyzer_commands() {
        let mut p = AudioPanel::default();
        let key = |c| KeyEvent::from(KeyCode::Char(c));
        let cmd = |r: Option<Request>| match r {
            Some(Request::Send { worker, cmd, args }) => {
                (worker.bus_name, cmd, serde_json::Value::Object(args))
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            cmd(p.on_key(key('t'))),
            ("audio_analyzer", "tap".into(), json!({}))
        );
        assert_eq!(cmd(p.on_key(key('x'))).1, "tempo_double");
        assert_eq!(cmd(p.on_key(key('/'))).1, "tempo_half");
        assert_eq!(cmd(p.on_key(key('N'))).2, json!({"ms": -10}));
        assert!(matches!(p.on_key(key('i')), Some(Request::NextInput)));
        assert!(p.on_key(key('q')).is_none());
    }

    #[test]
    fn the_input_is_read_from_the_status_line() {
        assert_eq!(
            input_of("capturing what plays on 'Built-in Audio' at 86 fps, 120 BPM (audio)")
                .as_deref(),
            Some("capturing what plays on 'Built-in Audio'")
        );
        assert_eq!(
            input_of("analyzing demo loop at 86 fps").as_deref(),
            Some("demo loop")
        );
        assert_eq!(input_of("starting"), None);
    }
}
