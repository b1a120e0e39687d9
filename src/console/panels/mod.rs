//! One component per panel: its state (fed by OSC or by the supervisor), its keys, and pure
//! drawing from that state. The footer and the help overlay are here too.

pub mod audio;
pub mod lyrics;
pub mod osc;
pub mod playing;
pub mod workers;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::ui;

/// Every key, for the footer (short) and the help (long).
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "q",
        "quit",
        "quit (also Ctrl-C); the terminal is left as it was",
    ),
    ("?", "help", "this help; Esc or ? closes it"),
    ("↑↓", "", "select a worker (also j/k)"),
    (
        "s",
        "start",
        "start the selected worker (its sockets and the service)",
    ),
    ("S", "stop", "stop the selected worker and its sockets"),
    (
        "r",
        "restart",
        "restart the selected worker (its sockets stay open)",
    ),
    (
        "l",
        "logs",
        "show / hide the selected worker's last log lines (also Enter)",
    ),
    ("t", "tap", "tap tempo: audio_analyzer `tap`"),
    ("x", "×2", "double the tempo: `tempo_double` (also *)"),
    ("/", "÷2", "halve the tempo: `tempo_half`"),
    (
        "n/N",
        "nudge",
        "nudge the beat grid 10 ms later / earlier: `nudge {ms}`",
    ),
    (
        "i",
        "input",
        "the analyzer's next input (the system output, the sound server's sources, the \
         devices): `list_devices`, then `set_config device=…`",
    ),
];

/// The footer: the keys, or the last message while it is fresh.
pub fn footer(message: Option<&(String, bool)>) -> Line<'static> {
    if let Some((text, ok)) = message {
        let style = if *ok { ui::good() } else { ui::warn() };
        return Line::from(vec![
            Span::styled(text.clone(), style),
            Span::styled("   ? help", ui::dim()),
        ]);
    }
    let mut spans = Vec::new();
    for (key, short, _) in KEYS {
        spans.push(Span::styled(key.to_string(), ui::bold()));
        if short.is_empty() {
            spans.push(Span::raw(" "));
        } else {
            spans.push(Span::styled(format!(" {short} "), ui::dim()));
        }
    }
    Line::from(spans)
}

/// The help overlay, centred in `area`.
pub fn draw_help(f: &mut Frame, area: Rect) {
    let width = area.width.min(72);
    let height = area.height.min(KEYS.len() as u16 + 4);
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, popup, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width),
        Constraint::Fill(1),
    ])
    .areas(middle);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, _, long)| {
            Line::from(vec![
                Span::styled(format!("{k:>4}  "), ui::bold()),
                Span::raw(long.to_string()),
            ])
        })
        .collect();
    lines.push(Line::styled(
        "Tempo keys need an analyzer that knows them; its reply shows below.",
        ui::dim(),
    ));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(ui::panel(Line::from(" vj-console keys "))),
        popup,
    );
}
