//! The workers panel: one row per registered worker as `vj-status` sees it (unit state,
//! health and its detail, PID, uptime, restarts), the keys that start, stop and restart the
//! selected one, and the pane with its last log lines.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

use crate::console::feed::{self, Request};
use crate::console::ui;
use crate::registry::{WorkerInfo, WORKERS};
use crate::status::supervisor::Action;
use crate::status::{fmt_uptime, Report, RowHealth};
use crate::worker::Health;

/// The log pane of one worker.
#[derive(Debug, Clone)]
pub struct LogPane {
    pub worker: &'static WorkerInfo,
    /// The last lines, or why there are none; `None` until the first answer.
    pub lines: Option<Result<Vec<String>, String>>,
}

#[derive(Debug, Default)]
pub struct WorkersPanel {
    pub report: Option<Report>,
    pub selected: usize,
    pub logs: Option<LogPane>,
}

/// The rows the panel takes: title, header, one per worker, the selected worker's detail.
pub const HEIGHT: u16 = 1 + 1 + WORKERS.len() as u16 + 1;

fn health_style(h: RowHealth) -> Style {
    match h {
        RowHealth::Worker(Health::Ok) => ui::good(),
        RowHealth::Worker(Health::Degraded) => ui::warn(),
        RowHealth::Worker(Health::Failed) | RowHealth::Unreachable => ui::bad(),
        _ => ui::dim(),
    }
}

impl WorkersPanel {
    pub fn selected(&self) -> &'static WorkerInfo {
        WORKERS[self.selected.min(WORKERS.len() - 1)]
    }

    /// Whether systemd (or, without it, the worker itself) says `bus_name` runs.
    pub fn is_running(&self, bus_name: &str) -> bool {
        self.report
            .as_ref()
            .is_some_and(|r| feed::is_running(r, bus_name))
    }

    /// Every worker is down: nothing runs, and nothing answers.
    pub fn all_down(&self) -> bool {
        self.report.as_ref().is_some_and(|r| {
            r.workers
                .iter()
                .all(|w| !matches!(w.health, RowHealth::Worker(_)))
        })
    }

    /// Its keys: ↑/↓ (j/k) select, `s` start, `S` stop, `r` restart, `l`/Enter the log pane.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Request> {
        let w = self.selected();
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.checked_sub(1).unwrap_or(WORKERS.len() - 1);
                self.follow_selection()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1) % WORKERS.len();
                self.follow_selection()
            }
            KeyCode::Char('s') => Some(Request::Supervise(Action::Start, w)),
            KeyCode::Char('S') => Some(Request::Supervise(Action::Stop, w)),
            KeyCode::Char('r') => Some(Request::Supervise(Action::Restart, w)),
            KeyCode::Char('l') | KeyCode::Enter => {
                if self.logs.take().is_some() {
                    return None;
                }
                self.logs = Some(LogPane {
                    worker: w,
                    lines: None,
                });
                Some(Request::Logs(w))
            }
            _ => None,
        }
    }

    /// An open log pane follows the selection.
    fn follow_selection(&mut self) -> Option<Request> {
        let w = self.selected();
        let pane = self.logs.as_mut()?;
        *pane = LogPane {
            worker: w,
            lines: None,
        };
        Some(Request::Logs(w))
    }

    pub fn set_logs(&mut self, worker: &'static WorkerInfo, lines: Result<Vec<String>, String>) {
        if let Some(pane) = self
            .logs
            .as_mut()
            .filter(|p| p.worker.bus_name == worker.bus_name)
        {
            pane.lines = Some(lines);
        }
    }

    fn title(&self) -> Line<'static> {
        let mut spans = vec![Span::raw(" workers ")];
        match &self.report {
            None => spans.push(Span::styled("asking systemd… ", ui::dim())),
            Some(_) if self.all_down() => spans.push(Span::styled(
                " every worker is down: s starts the selected one ",
                ui::bad(),
            )),
            Some(r) if !r.systemd => spans.push(Span::styled(
                format!(
                    "no systemd user manager: sockets in {} only ",
                    r.bus_dir.display()
                ),
                ui::warn(),
            )),
            Some(_) => {}
        }
        Line::from(spans)
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        let inner = ui::frame(f, area, self.title());
        let header = Row::new([
            "WORKER", "STATE", "HEALTH", "PID", "UPTIME", "RST", "DETAIL",
        ])
        .style(ui::dim());
        let rows: Vec<Row> = WORKERS
            .iter()
            .map(|w| {
                let row = self
                    .report
                    .as_ref()
                    .and_then(|r| r.workers.iter().find(|r| r.worker == w.bus_name));
                match row {
                    None => Row::new([Cell::from(w.bus_name), Cell::from("…")]),
                    Some(r) => Row::new([
                        Cell::from(r.worker.clone()),
                        Cell::from(r.state.clone()),
                        Cell::from(Span::styled(r.health.to_string(), health_style(r.health))),
                        Cell::from(r.pid.map_or("-".into(), |p| p.to_string())),
                        Cell::from(fmt_uptime(r.uptime_sec)),
                        Cell::from(r.restarts.map_or("-".into(), |n| n.to_string())),
                        Cell::from(r.detail.clone()),
                    ]),
                }
            })
            .collect();
        let widths = [
            Constraint::Length(17),
            Constraint::Length(10),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(3),
            Constraint::Fill(1),
        ];
        let table_area = Rect {
            height: inner.height.saturating_sub(1),
            ..inner
        };
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(Style::default().add_modifier(ratatui::style::Modifier::REVERSED));
        let mut state = TableState::default().with_selected(Some(self.selected));
        f.render_stateful_widget(table, table_area, &mut state);
        if inner.height > 1 {
            let detail = Rect {
                y: inner.y + inner.height - 1,
                height: 1,
                ..inner
            };
            ui::write_lines(f, detail, &[self.detail_line()]);
        }
    }

    /// The selected worker's whole detail (the table cuts it).
    fn detail_line(&self) -> Line<'static> {
        let w = self.selected();
        let row = self
            .report
            .as_ref()
            .and_then(|r| r.workers.iter().find(|r| r.worker == w.bus_name));
        let (style, detail) = match row {
            Some(r) => (health_style(r.health), r.detail.clone()),
            None => (ui::dim(), String::new()),
        };
        Line::from(vec![
            Span::styled(format!("▸ {}: ", w.binary), ui::bold()),
            Span::styled(detail, style),
        ])
    }

    /// The log pane, over `area`.
    pub fn draw_logs(&self, f: &mut Frame, area: Rect) {
        let Some(pane) = &self.logs else { return };
        let title = Line::from(format!(" log of {} — l closes ", pane.worker.binary));
        let rows = usize::from(area.height.saturating_sub(1));
        let lines: Vec<Line<'static>> = match &pane.lines {
            None => vec![ui::plain("reading the log…")],
            Some(Err(e)) => vec![Line::styled(e.clone(), ui::bad())],
            Some(Ok(l)) if l.is_empty() => vec![ui::plain("no log lines yet")],
            Some(Ok(l)) => l[l.len().saturating_sub(rows)..]
                .iter()
                .map(|s| ui::plain(s.clone()))
                .collect(),
        };
        f.render_widget(ratatui::widgets::Clear, area);
        ui::draw_lines(f, area, title, lines);
    }
}
