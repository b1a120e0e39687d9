//! Lyrics: the previous, current and next line around `/karaoke/line/active`, the refrain
//! marked (`/karaoke/refrain/active`), and the current moods (`/karaoke/categories/*`). The
//! lines are those `/karaoke/lyrics/line` announced when the song started.

use std::collections::BTreeMap;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::console::telemetry::OscMsg;
use crate::console::ui;
use crate::lyrics::song::{
    CATEGORIES, KEYWORDS_RESET, LINE_ACTIVE, LYRICS_LINE, LYRICS_RESET, REFRAIN_ACTIVE,
    REFRAIN_RESET,
};

/// Moods shown at most.
const TOP_MOODS: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct LyricsPanel {
    lines: BTreeMap<i64, String>,
    /// The line being sung, -1 none; `None` before any was said.
    active: Option<i64>,
    /// Whether the line being sung belongs to the refrain (its text, when it does).
    refrain: Option<String>,
    moods: BTreeMap<String, f32>,
    /// A song started while we watched: its lines are all here.
    saw_start: bool,
}

impl LyricsPanel {
    pub fn apply(&mut self, m: &OscMsg) -> bool {
        let a = m.address.as_str();
        match a {
            LYRICS_RESET => {
                self.lines.clear();
                self.active = None;
                self.refrain = None;
                self.saw_start = true;
            }
            REFRAIN_RESET | KEYWORDS_RESET => {}
            LYRICS_LINE => {
                if let (Some(i), Some(text)) = (m.i(0), m.s(2)) {
                    self.lines.insert(i, text.to_string());
                }
            }
            LINE_ACTIVE => self.active = m.i(0),
            REFRAIN_ACTIVE => {
                self.refrain = m
                    .i(0)
                    .filter(|&i| i >= 0)
                    .map(|_| m.s(1).unwrap_or("").to_string());
            }
            _ if a.starts_with(CATEGORIES) => {
                let mood = &a[CATEGORIES.len()..];
                match m.f(0) {
                    Some(s) if s > 0.0 => {
                        self.moods.insert(mood.to_string(), s);
                    }
                    _ => {
                        self.moods.remove(mood);
                    }
                }
            }
            _ if a.starts_with("/karaoke/refrain/") || a.starts_with("/karaoke/keywords/") => {}
            _ => return false,
        }
        true
    }

    /// The strongest moods, best first.
    pub fn top_moods(&self) -> Vec<(&str, f32)> {
        let mut m: Vec<(&str, f32)> = self.moods.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        m.sort_by(|a, b| b.1.total_cmp(&a.1));
        m.truncate(TOP_MOODS);
        m
    }

    pub fn lines(&self, width: usize) -> Vec<Line<'static>> {
        let text = |i: i64| {
            self.lines
                .get(&i)
                .map(|s| ui::fit(s, width.saturating_sub(2)))
        };
        let mut out = Vec::new();
        match self.active {
            _ if self.lines.is_empty() => {
                let why = if self.saw_start {
                    "no lyric lines for this song (yet)"
                } else {
                    "no lyric lines seen yet (they come when a song starts)"
                };
                out.push(Line::styled(why.to_string(), ui::dim()));
                if let Some(i) = self.active.filter(|&i| i >= 0) {
                    out.push(ui::plain(format!("singing line {}", i + 1)));
                }
            }
            None | Some(-1) => {
                out.push(Line::styled("  (not singing)", ui::dim()));
                if let Some(first) = self.lines.values().next() {
                    out.push(Line::styled(
                        format!("  {}", ui::fit(first, width - 2)),
                        ui::dim(),
                    ));
                }
            }
            Some(i) => {
                out.push(Line::styled(
                    format!("  {}", text(i - 1).unwrap_or_default()),
                    ui::dim(),
                ));
                let mut current = vec![Span::styled(
                    format!("▶ {}", text(i).unwrap_or_else(|| format!("line {}", i + 1))),
                    Style::default().add_modifier(Modifier::BOLD),
                )];
                if self.refrain.is_some() {
                    current.push(Span::styled(
                        " ↻ refrain",
                        Style::default().fg(Color::Magenta),
                    ));
                }
                out.push(Line::from(current));
                out.push(Line::styled(
                    format!("  {}", text(i + 1).unwrap_or_default()),
                    ui::dim(),
                ));
            }
        }
        while out.len() < 3 {
            out.push(Line::raw(""));
        }
        let moods = self.top_moods();
        if moods.is_empty() {
            out.push(Line::styled("moods —", ui::dim()));
        } else {
            let m: Vec<String> = moods.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
            out.push(Line::from(vec![
                Span::styled("moods ", ui::dim()),
                Span::raw(m.join(" · ")),
            ]));
        }
        out
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        let lines = self.lines(usize::from(area.width));
        ui::draw_lines(f, area, Line::from(" lyrics "), lines);
    }

    pub fn plain(&self) -> String {
        self.lines(60)
            .iter()
            .map(ui::text_of)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(addr: &str, args: serde_json::Value) -> OscMsg {
        OscMsg::new(addr, args.as_array().unwrap().clone())
    }

    #[test]
    fn the_sung_line_sits_between_its_neighbours_and_the_refrain_is_marked() {
        let mut p = LyricsPanel::default();
        p.apply(&m(LYRICS_RESET, json!([])));
        for (i, t) in ["One more time", "We're gonna celebrate", "Oh yeah"]
            .iter()
            .enumerate()
        {
            p.apply(&m(LYRICS_LINE, json!([i, i as f32 * 2.0, t])));
        }
        p.apply(&m(LINE_ACTIVE, json!([1])));
        let text: Vec<String> = p.lines(38).iter().map(ui::text_of).collect();
        assert_eq!(
            text[..3],
            ["  One more time", "▶ We're gonna celebrate", "  Oh yeah"]
        );
        assert_eq!(text[3], "moods —");
        p.apply(&m(LINE_ACTIVE, json!([0])));
        p.apply(&m(REFRAIN_ACTIVE, json!([0, "One more time"])));
        p.apply(&m("/karaoke/categories/energetic", json!([0.8])));
        p.apply(&m("/karaoke/categories/happy", json!([0.4])));
        p.apply(&m("/karaoke/categories/sad", json!([0.0])));
        let text: Vec<String> = p.lines(38).iter().map(ui::text_of).collect();
        assert_eq!(text[1], "▶ One more time ↻ refrain");
        assert_eq!(text[3], "moods energetic 0.80 · happy 0.40");
        p.apply(&m(LINE_ACTIVE, json!([2])));
        p.apply(&m(REFRAIN_ACTIVE, json!([-1, ""])));
        assert_eq!(ui::text_of(&p.lines(38)[1]), "▶ Oh yeah");
    }

    #[test]
    fn started_mid_song_it_says_the_lines_come_with_the_next_song() {
        let mut p = LyricsPanel::default();
        p.apply(&m(LINE_ACTIVE, json!([4])));
        let text: Vec<String> = p.lines(60).iter().map(ui::text_of).collect();
        assert!(text[0].contains("come when a song starts"), "{text:?}");
        assert_eq!(text[1], "singing line 5");
    }
}
