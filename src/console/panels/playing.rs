//! Now playing: `/karaoke/track` and `/karaoke/pos` — the source, artist – title, a position
//! bar with the time (moved on between positions while playing), playing or paused.

use std::time::Instant;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::console::telemetry::{clock_time, OscMsg};
use crate::console::ui;
use crate::karaoke::{NowPlaying, POS_ADDR, TRACK_ADDR};

#[derive(Debug, Clone, Default)]
pub struct PlayingPanel {
    /// `Some(None)`: a source said nothing plays.
    track: Option<Option<NowPlaying>>,
    /// Position in seconds, playing, and when that was said.
    pos: Option<(f32, bool, Instant)>,
}

impl PlayingPanel {
    pub fn apply(&mut self, m: &OscMsg, at: Instant) -> bool {
        match m.address.as_str() {
            TRACK_ADDR => {
                let active = m.i(0).unwrap_or(0) != 0;
                self.track = Some(active.then(|| NowPlaying {
                    source: m.s(1).unwrap_or("").to_string(),
                    artist: m.s(2).unwrap_or("").to_string(),
                    title: m.s(3).unwrap_or("").to_string(),
                    album: m.s(4).unwrap_or("").to_string(),
                    duration_s: m.f(5).unwrap_or(0.0),
                    has_lyrics: m.i(6).unwrap_or(0) != 0,
                }));
                if !active {
                    self.pos = None;
                }
            }
            POS_ADDR => {
                if let (Some(p), Some(playing)) = (m.f(0), m.i(1)) {
                    self.pos = Some((p, playing != 0, at));
                }
            }
            _ => return false,
        }
        true
    }

    /// Where playback is now: the last position, moved on by the time since if playing.
    pub fn position(&self, now: Instant) -> Option<(f32, bool)> {
        let (p, playing, at) = self.pos?;
        let mut p = p;
        if playing {
            p += now.saturating_duration_since(at).as_secs_f32();
        }
        if let Some(Some(t)) = &self.track {
            if t.duration_s > 0.0 {
                p = p.min(t.duration_s);
            }
        }
        Some((p, playing))
    }

    pub fn lines(&self, now: Instant, width: usize) -> Vec<Line<'static>> {
        let t = match &self.track {
            None => return vec![Line::styled("no track seen yet", ui::dim())],
            Some(None) => return vec![Line::styled("nothing playing", ui::dim())],
            Some(Some(t)) => t,
        };
        let pos = self.position(now);
        let state = match pos {
            Some((_, true)) => Span::styled("▶ playing", ui::good()),
            Some((_, false)) => Span::styled("❚❚ paused", ui::warn()),
            None => Span::styled("position —", ui::dim()),
        };
        let mut head = vec![Span::styled(format!("{} ", t.source), ui::dim()), state];
        if t.has_lyrics {
            head.push(Span::styled("  ♪ lyrics", ui::dim()));
        }
        let name = if t.artist.is_empty() {
            t.title.clone()
        } else {
            format!("{} – {}", t.artist, t.title)
        };
        let seconds = pos.map_or(0.0, |(p, _)| p);
        let times = if t.duration_s > 0.0 {
            format!(" {} / {}", clock_time(seconds), clock_time(t.duration_s))
        } else {
            format!(" {}", clock_time(seconds))
        };
        let position = if t.duration_s > 0.0 {
            let bar_width = width.saturating_sub(times.chars().count()).max(4);
            Line::from(vec![
                Span::styled(ui::hbar(seconds / t.duration_s, bar_width), ui::good()),
                Span::raw(times),
            ])
        } else {
            Line::from(vec![
                Span::raw(format!("at{times}")),
                Span::styled("  (length unknown)", ui::dim()),
            ])
        };
        let mut lines = vec![
            Line::from(head),
            Line::styled(ui::fit(&name, width), ui::bold()),
            position,
        ];
        if !t.album.is_empty() {
            lines.push(Line::styled(ui::fit(&t.album, width), ui::dim()));
        }
        lines
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, now: Instant) {
        let lines = self.lines(now, usize::from(area.width));
        ui::draw_lines(f, area, Line::from(" now playing "), lines);
    }

    pub fn plain(&self, now: Instant) -> String {
        self.lines(now, 30)
            .iter()
            .map(ui::text_of)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn the_position_moves_on_while_playing_and_stops_at_the_end() {
        let t0 = Instant::now();
        let mut p = PlayingPanel::default();
        let track = json!([1, "virtualdj", "Daft Punk", "One More Time", "", 320.0, 1]);
        p.apply(
            &OscMsg::new(TRACK_ADDR, track.as_array().unwrap().clone()),
            t0,
        );
        p.apply(&OscMsg::new(POS_ADDR, vec![json!(10.0), json!(1)]), t0);
        let (at, playing) = p.position(t0 + Duration::from_secs(5)).unwrap();
        assert!((at - 15.0).abs() < 0.01 && playing);
        assert_eq!(p.position(t0 + Duration::from_secs(900)).unwrap().0, 320.0);
        let text: Vec<String> = p.lines(t0, 38).iter().map(ui::text_of).collect();
        assert_eq!(text[0], "virtualdj ▶ playing  ♪ lyrics");
        assert_eq!(text[1], "Daft Punk – One More Time");
        assert!(text[2].ends_with(" 0:10 / 5:20"), "{text:?}");
        p.apply(&OscMsg::new(POS_ADDR, vec![json!(12.0), json!(0)]), t0);
        assert_eq!(p.position(t0 + Duration::from_secs(5)), Some((12.0, false)));
        let nothing = json!([0, "", "", "", "", 0.0, 0]);
        p.apply(
            &OscMsg::new(TRACK_ADDR, nothing.as_array().unwrap().clone()),
            t0,
        );
        assert_eq!(ui::text_of(&p.lines(t0, 38)[0]), "nothing playing");
    }
}
