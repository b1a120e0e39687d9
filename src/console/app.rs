//! The console's state: every panel, the overlays, the last message; which panel a key and an
//! update go to; and the layout that draws them all (pure: `draw` only reads).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

use super::feed::{Request, Update};
use super::panels::audio::{input_of, AudioPanel};
use super::panels::lyrics::LyricsPanel;
use super::panels::osc::OscPanel;
use super::panels::playing::PlayingPanel;
use super::panels::workers::{self, WorkersPanel};
use super::panels::{self};
use super::telemetry::{seed_messages, Arrival, OscMsg};
use super::ui;
use crate::registry::AUDIO;

/// A message in the footer stays this long.
const MESSAGE_FOR: Duration = Duration::from_secs(8);

#[derive(Debug)]
pub struct App {
    pub workers: WorkersPanel,
    pub audio: AudioPanel,
    pub playing: PlayingPanel,
    pub lyrics: LyricsPanel,
    pub osc: OscPanel,
    /// Why there is no telemetry now (`None`: subscribed).
    pub no_telemetry: Option<String>,
    pub help: bool,
    /// The last reply to a key: text, went well, when.
    pub message: Option<(String, bool, Instant)>,
    pub quit: Option<&'static str>,
    /// The instant drawn; set before each frame (tests set it by hand).
    pub now: Instant,
}

/// Where each panel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub workers: Rect,
    pub audio: Rect,
    pub playing: Rect,
    pub lyrics: Rect,
    pub osc: Rect,
    pub footer: Rect,
}

/// The layout: everything fits 80×24; a taller screen gives the audio bars and the OSC list
/// more rows, a wider one more room to every line.
pub fn layout(area: Rect) -> Areas {
    let audio = (5 + area.height.saturating_sub(24) / 2).min(12);
    let [workers, audio, middle, osc, footer] = Layout::vertical([
        Constraint::Length(workers::HEIGHT),
        Constraint::Length(audio),
        Constraint::Length(5),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let [playing, lyrics] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .spacing(1)
            .areas(middle);
    Areas {
        workers,
        audio,
        playing,
        lyrics,
        osc,
        footer,
    }
}

impl App {
    pub fn new(targets: Vec<String>) -> App {
        App {
            workers: WorkersPanel::default(),
            audio: AudioPanel::default(),
            playing: PlayingPanel::default(),
            lyrics: LyricsPanel::default(),
            osc: OscPanel::new(targets),
            no_telemetry: Some("looking for osc_debugger…".into()),
            help: false,
            message: None,
            quit: None,
            now: Instant::now(),
        }
    }

    /// A key: the overlays and the global keys first, then each panel's own.
    pub fn on_key(&mut self, mut key: KeyEvent) -> Option<Request> {
        // Esc then a key, typed fast, reads as Alt+key: it is both.
        if key.modifiers.contains(KeyModifiers::ALT) {
            self.on_key(KeyEvent::from(KeyCode::Esc));
            key.modifiers.remove(KeyModifiers::ALT);
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c || key.code == KeyCode::Char('q') {
            self.quit = Some("q");
            return None;
        }
        match key.code {
            KeyCode::Char('?') => {
                self.help = !self.help;
                return None;
            }
            KeyCode::Esc => {
                if !std::mem::take(&mut self.help) {
                    self.workers.logs = None;
                }
                return None;
            }
            _ if self.help => return None,
            _ => {}
        }
        self.workers.on_key(key).or_else(|| self.audio.on_key(key))
    }

    pub fn say(&mut self, text: String, ok: bool) {
        self.message = Some((text, ok, Instant::now()));
    }

    pub fn apply(&mut self, u: Update) {
        match u {
            Update::Workers(r) => {
                let audio = r.workers.iter().find(|w| w.worker == AUDIO.bus_name);
                self.audio.input = audio.and_then(|w| input_of(&w.detail));
                self.workers.report = Some(r);
            }
            Update::Subscribed(stats) => {
                self.no_telemetry = None;
                self.seed(&stats);
            }
            Update::Osc {
                messages,
                missed,
                malformed,
            } => {
                self.osc.missed += missed;
                self.osc.malformed = Some(malformed);
                self.apply_osc(&messages, &Arrival::now());
            }
            Update::NoTelemetry(why) => self.no_telemetry = Some(why),
            Update::Reply(text, ok) => self.say(text, ok),
            Update::Logs(w, lines) => self.workers.set_logs(w, lines),
            Update::Quit(why) => self.quit = Some(why),
        }
    }

    /// The debugger's stats: every address's last value, as if it had just arrived then.
    pub fn seed(&mut self, stats: &serde_json::Value) {
        let clock = Arrival::now();
        if let Some(n) = stats.get("malformed").and_then(serde_json::Value::as_u64) {
            self.osc.malformed = Some(n);
        }
        for (m, rate) in seed_messages(stats, &clock) {
            self.route(&m, clock.of(&m));
            self.osc.seed(&m, rate, clock.instant());
        }
    }

    pub fn apply_osc(&mut self, messages: &[OscMsg], clock: &Arrival) {
        for m in messages {
            let at = clock.of(m);
            self.route(m, at);
            self.osc.apply(m, at);
        }
    }

    /// A message to the panel it is for.
    fn route(&mut self, m: &OscMsg, at: Instant) {
        let _ = self.audio.apply(m, at) || self.playing.apply(m, at) || self.lyrics.apply(m);
    }

    fn fresh_message(&self) -> Option<(String, bool)> {
        self.message
            .as_ref()
            .filter(|(_, _, at)| self.now.saturating_duration_since(*at) < MESSAGE_FOR)
            .map(|(t, ok, _)| (t.clone(), *ok))
    }

    pub fn draw(&self, f: &mut Frame) {
        let a = layout(f.area());
        let no_telemetry = self.no_telemetry.as_deref();
        self.workers.draw(f, a.workers);
        self.audio.draw(f, a.audio, self.now, no_telemetry);
        self.playing.draw(f, a.playing, self.now);
        self.lyrics.draw(f, a.lyrics);
        self.osc.draw(f, a.osc, self.now, no_telemetry);
        let footer = panels::footer(self.fresh_message().as_ref());
        ui::write_lines(f, a.footer, std::slice::from_ref(&footer));
        if self.workers.logs.is_some() {
            let pane = Rect {
                height: a.footer.y - a.audio.y,
                ..a.audio
            };
            self.workers.draw_logs(f, pane);
        }
        if self.help {
            panels::draw_help(f, f.area());
        }
    }

    /// The plain snapshot: `vj-status`'s table, then a line or a few per panel.
    pub fn snapshot(&self) -> String {
        let mut out = String::new();
        match &self.workers.report {
            Some(r) => out.push_str(&crate::status::table(r)),
            None => out.push_str("no report from systemd or the bus dir\n"),
        }
        if self.workers.all_down() {
            out.push_str("every worker is down\n");
        }
        out.push('\n');
        let mut line = |name: &str, text: String| {
            out.push_str(&format!("{name:<9} {text}\n"));
        };
        if let Some(why) = &self.no_telemetry {
            line("telemetry", format!("none: {why}"));
        }
        line("audio", self.audio.plain());
        line("playing", self.playing.plain(self.now));
        line("lyrics", self.lyrics.plain());
        for (i, l) in self.osc.plain(self.now).into_iter().enumerate() {
            line(if i == 0 { "osc" } else { "" }, l);
        }
        out
    }
}
