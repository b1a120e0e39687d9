//! The OSC panel: every address the debugger saw, with its rate and last value, the malformed
//! packet count, and where the suite sends (`[osc] targets` and routes).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use serde_json::Value;

use crate::config::{OscConfig, OscTarget};
use crate::console::telemetry::OscMsg;
use crate::console::ui;

/// Rates are counted over this window.
const WINDOW: Duration = Duration::from_secs(1);
/// An address silent this long has a rate of 0.
const STALE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Address {
    types: String,
    last: Vec<Value>,
    /// Arrivals within the last window.
    arrivals: VecDeque<Instant>,
    first_seen: Instant,
    /// The debugger's rate when we started watching, until our own window is full.
    seeded_rate: f64,
}

#[derive(Debug, Clone, Default)]
pub struct OscPanel {
    addresses: BTreeMap<String, Address>,
    pub malformed: Option<u64>,
    /// Messages the debugger's ring lost before the console read them.
    pub missed: u64,
    /// Where the suite sends, from the config.
    pub targets: Vec<String>,
}

/// `[osc]` as one line: `127.0.0.1:9000 127.0.0.1:9001 · /karaoke/ → 127.0.0.1:9002`.
pub fn describe_targets(osc: &OscConfig) -> Vec<String> {
    let names = |t: &[OscTarget]| {
        t.iter()
            .map(|t| {
                if t.bundle() {
                    format!("{} (bundles)", t.addr())
                } else {
                    t.addr().to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = vec![names(&osc.targets)];
    for r in &osc.routes {
        out.push(format!("{} → {}", r.prefix, names(&r.targets)));
    }
    out
}

/// An argument as it reads in a narrow column.
fn short(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(0.0)),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl OscPanel {
    pub fn new(targets: Vec<String>) -> OscPanel {
        OscPanel {
            targets,
            ..OscPanel::default()
        }
    }

    /// Takes any message: every address counts.
    pub fn apply(&mut self, m: &OscMsg, at: Instant) {
        let a = self
            .addresses
            .entry(m.address.clone())
            .or_insert_with(|| Address {
                types: String::new(),
                last: Vec::new(),
                arrivals: VecDeque::new(),
                first_seen: at,
                seeded_rate: 0.0,
            });
        a.types.clone_from(&m.types);
        a.last.clone_from(&m.args);
        // Arrivals come in order (a batch's are the debugger's), so the window is what is
        // left after dropping the front: the rate is its length.
        let newest = a.arrivals.back().map_or(at, |n| at.max(*n));
        a.arrivals.push_back(newest);
        while a
            .arrivals
            .front()
            .is_some_and(|t| newest.saturating_duration_since(*t) >= WINDOW)
        {
            a.arrivals.pop_front();
        }
    }

    /// An address's last value and rate as the debugger's stats say (at subscription).
    pub fn seed(&mut self, m: &OscMsg, rate_hz: f64, now: Instant) {
        self.addresses.insert(
            m.address.clone(),
            Address {
                types: m.types.clone(),
                last: m.args.clone(),
                arrivals: VecDeque::new(),
                first_seen: now,
                seeded_rate: rate_hz,
            },
        );
    }

    /// Arrivals in the window that ends with the newest (messages come in batches, so a
    /// window ending now would miss the batch on its way), 0 once the address is silent.
    fn rate(a: &Address, now: Instant) -> f64 {
        let Some(&newest) = a.arrivals.back() else {
            return a.seeded_rate;
        };
        if now.saturating_duration_since(newest) > STALE {
            return 0.0;
        }
        if newest.saturating_duration_since(a.first_seen) < WINDOW && a.seeded_rate > 0.0 {
            return a.seeded_rate;
        }
        a.arrivals.len() as f64 / WINDOW.as_secs_f64()
    }

    pub fn address_count(&self) -> usize {
        self.addresses.len()
    }

    fn footer(&self) -> Line<'static> {
        let mut spans = vec![Span::styled("malformed ", ui::dim())];
        match self.malformed {
            Some(0) => spans.push(Span::raw("0")),
            Some(n) => spans.push(Span::styled(n.to_string(), ui::bad())),
            None => spans.push(Span::raw("—")),
        }
        if self.missed > 0 {
            spans.push(Span::styled(
                format!(" · missed {}", self.missed),
                ui::warn(),
            ));
        }
        spans.push(Span::styled(" · targets ", ui::dim()));
        spans.push(Span::raw(self.targets.join(" · ")));
        Line::from(spans)
    }

    pub fn lines(&self, now: Instant, width: usize, height: usize) -> Vec<Line<'static>> {
        let mut out = Vec::new();
        let rows = height.saturating_sub(1);
        for (addr, a) in self.addresses.iter().take(rows) {
            let value: Vec<String> = a.last.iter().map(short).collect();
            let left = format!(
                "{:<24} {:>6.1}/s {:<8} ",
                ui::fit(addr, 24),
                Self::rate(a, now),
                ui::fit(&a.types, 8)
            );
            let room = width.saturating_sub(left.chars().count());
            out.push(Line::from(vec![
                Span::raw(left),
                Span::styled(ui::fit(&value.join(" "), room), ui::dim()),
            ]));
        }
        if self.addresses.is_empty() && rows > 0 {
            out.push(Line::styled("no OSC seen yet", ui::dim()));
        }
        out.push(self.footer());
        out
    }

    /// The title: how many addresses, and how many the panel has no room for.
    fn title(&self, rows: usize, no_telemetry: Option<&str>) -> Line<'static> {
        let n = self.addresses.len();
        let mut title = vec![Span::raw(" osc ")];
        if n > 0 {
            let hidden = n.saturating_sub(rows);
            let more = if hidden > 0 {
                format!("· {n} addresses, {hidden} below (a taller terminal shows them) ")
            } else {
                format!("· {n} addresses ")
            };
            title.push(Span::styled(more, ui::dim()));
        }
        if let Some(why) = no_telemetry {
            title.push(Span::styled(format!("no telemetry: {why} "), ui::warn()));
        }
        Line::from(title)
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, now: Instant, no_telemetry: Option<&str>) {
        let height = usize::from(area.height.saturating_sub(1));
        let lines = self.lines(now, usize::from(area.width), height);
        let title = self.title(height.saturating_sub(1), no_telemetry);
        ui::draw_lines(f, area, title, lines);
    }

    /// The snapshot's lines: every address, then the footer.
    pub fn plain(&self, now: Instant) -> Vec<String> {
        self.lines(now, 100, self.addresses.len() + 2)
            .iter()
            .map(|l| ui::text_of(l).trim_end().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_count_the_last_second_and_the_footer_says_malformed_and_targets() {
        let t0 = Instant::now();
        let mut p = OscPanel::default();
        let mut m = OscMsg::new("/audio/levels", vec![json!(0.5)]);
        m.types = "f".into();
        for i in 0..=50 {
            p.apply(&m, t0 + Duration::from_millis(20 * i));
        }
        let now = t0 + Duration::from_millis(1030);
        let a = &p.addresses["/audio/levels"];
        assert_eq!(OscPanel::rate(a, now), 50.0);
        assert_eq!(OscPanel::rate(a, now + Duration::from_secs(3)), 0.0);
        p.malformed = Some(2);
        p.targets = describe_targets(&crate::config::builtin("osc"));
        let text: Vec<String> = p.lines(now, 100, 3).iter().map(ui::text_of).collect();
        assert!(text[0].starts_with("/audio/levels"), "{text:?}");
        assert!(text[0].contains("0.50"), "{text:?}");
        assert_eq!(
            text[1],
            "malformed 2 · targets 127.0.0.1:9000 127.0.0.1:9001 (bundles) 127.0.0.1:9003 (bundles) · /karaoke/ → 127.0.0.1:9002"
        );
    }

    #[test]
    fn more_addresses_than_rows_says_how_many_are_left_out() {
        let t0 = Instant::now();
        let mut p = OscPanel::default();
        for a in ["/a", "/b", "/c", "/d"] {
            p.apply(&OscMsg::new(a, vec![]), t0);
        }
        let text: Vec<String> = p.lines(t0, 80, 3).iter().map(ui::text_of).collect();
        assert_eq!(text.len(), 3);
        assert!(text[1].starts_with("/b"));
        assert_eq!(
            ui::text_of(&p.title(2, None)),
            " osc · 4 addresses, 2 below (a taller terminal shows them) "
        );
    }
}
