//! Drawing helpers every panel uses: the panel frame, bars made of eighth blocks, the styles.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

/// Eighths of a cell, empty to full.
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const HORIZONTAL: [char; 9] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

pub fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub fn good() -> Style {
    Style::default().fg(Color::Green)
}

pub fn warn() -> Style {
    Style::default().fg(Color::Yellow)
}

pub fn bad() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// A lit indicator (beat, kick, drop): dark text on a bright background.
pub fn lit(color: Color) -> Style {
    Style::default()
        .fg(Color::Black)
        .bg(color)
        .add_modifier(Modifier::BOLD)
}

/// A panel: a title in its top rule, content below, no side borders (80 columns are precious).
pub fn panel(title: impl Into<Line<'static>>) -> Block<'static> {
    Block::default()
        .borders(Borders::TOP)
        .border_style(dim())
        .title(title.into().style(bold()))
}

/// Draws a panel's frame — `title` at the left of a dim rule along the top row of `area`, as
/// [`panel`] looks — and returns the area below it. Written into the buffer cell by cell: a
/// `Block`, like a `Paragraph`, also restyles every cell of its area each frame, and those
/// passes were a fifth of the console's CPU at 200×60 (docs/BENCHMARKS.md).
pub fn frame(f: &mut Frame, area: Rect, title: Line<'static>) -> Rect {
    if area.is_empty() {
        return area;
    }
    let buf = f.buffer_mut();
    let width = usize::from(area.width);
    buf.set_stringn(area.x, area.y, "─".repeat(width), width, dim());
    buf.set_line(area.x, area.y, &title.style(bold()), area.width);
    Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    }
}

/// Writes `lines` into `area` top down, each cut at its width (what a `Paragraph` without
/// wrapping draws, without its pass over every cell).
pub fn write_lines(f: &mut Frame, area: Rect, lines: &[Line<'_>]) {
    let buf = f.buffer_mut();
    for (line, y) in lines.iter().zip(area.top()..area.bottom()) {
        buf.set_line(area.x, y, line, area.width);
    }
}

/// Draws `lines` in `area` inside a panel titled `title`.
pub fn draw_lines(f: &mut Frame, area: Rect, title: Line<'static>, lines: Vec<Line<'static>>) {
    let inner = frame(f, area, title);
    write_lines(f, inner, &lines);
}

/// Vertical bars, `height` rows tall, each `width` cells wide with `gap` between: the rows top
/// to bottom. Values are 0..1 (clamped).
pub fn column_bars(values: &[f32], height: u16, width: usize, gap: usize) -> Vec<String> {
    let h = usize::from(height.max(1));
    (0..h)
        .map(|row| {
            let from_bottom = h - 1 - row;
            let mut s = String::new();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    s.extend(std::iter::repeat_n(' ', gap));
                }
                let units = (v.clamp(0.0, 1.0) * (h * 8) as f32).round() as usize;
                let here = units.saturating_sub(from_bottom * 8).min(8);
                s.extend(std::iter::repeat_n(EIGHTHS[here], width));
            }
            s
        })
        .collect()
}

/// A horizontal bar `width` cells long filled to `fraction` (0..1), in eighths.
pub fn hbar(fraction: f32, width: usize) -> String {
    let units = (fraction.clamp(0.0, 1.0) * (width * 8) as f32).round() as usize;
    (0..width)
        .map(|i| HORIZONTAL[units.saturating_sub(i * 8).min(8)])
        .collect()
}

/// `text` cut to `width` characters, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A line of one plain span.
pub fn plain(text: impl Into<String>) -> Line<'static> {
    Line::from(Span::raw(text.into()))
}

/// A line's text without styles (the non-TTY snapshot, tests).
pub fn text_of(line: &Line<'_>) -> String {
    line.spans.iter().map(|s| s.content.as_ref()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_from_the_bottom_in_eighths() {
        let rows = column_bars(&[1.0, 0.0, 0.5, 1.0 / 16.0], 2, 1, 0);
        assert_eq!(rows, ["█   ", "█ █▁"]);
        assert_eq!(column_bars(&[0.5, 0.5], 1, 2, 1), ["▄▄ ▄▄"]);
        assert_eq!(hbar(0.5, 4), "██  ");
        assert_eq!(hbar(1.0 / 32.0, 2), "▏ ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
