//! Which line is being sung, from the last reported position interpolated with a monotonic
//! clock; a pure state machine (positions and instants in, line changes and the next deadline
//! out) so its timing can be tested and benchmarked without a clock.

use tokio::time::{Duration, Instant};

use crate::karaoke::Position;

use super::lrc::Lyrics;

/// A position this little before the stamp of the line already shown is clock jitter between
/// the player and us (or a tiny seek): the line is held rather than stepped back and forth.
const JITTER_MS: f64 = 300.0;
/// Slack for float rounding, so the instant a deadline names really is past the stamp.
const EPSILON_MS: f64 = 0.001;

#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// Position in the song (ms) at `at`.
    pos_ms: f64,
    at: Instant,
    playing: bool,
}

/// Follows playback through one song's timed lines.
#[derive(Debug, Clone, Default)]
pub struct LineFollower {
    /// (time ms, line index or -1 for a break), sorted by time.
    steps: Vec<(i64, i32)>,
    anchor: Option<Anchor>,
    /// The user's offset: positive shows lines earlier.
    offset_ms: i64,
    /// The line last reported as active.
    active: i32,
}

impl LineFollower {
    /// A follower for `lyrics`; plain lyrics have no timed lines and never become active.
    pub fn new(lyrics: &Lyrics, offset_ms: i64) -> LineFollower {
        let mut steps: Vec<(i64, i32)> = lyrics
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((l.time_ms?, i32::try_from(i).ok()?)))
            .chain(lyrics.breaks_ms.iter().map(|&ms| (ms, -1)))
            .collect();
        // At equal times a line wins over a break.
        steps.sort_by_key(|&(ms, idx)| (ms, idx >= 0));
        LineFollower {
            steps,
            anchor: None,
            offset_ms,
            active: -1,
        }
    }

    /// Follows new lyrics from the same position (they arrived after the track started).
    pub fn set_lyrics(&mut self, lyrics: &Lyrics) {
        *self = LineFollower {
            anchor: self.anchor,
            ..LineFollower::new(lyrics, self.offset_ms)
        };
    }

    /// The line last reported active (-1 none).
    pub fn active(&self) -> i32 {
        self.active
    }

    /// Where playback is at `now` (ms in the song), `None` before the first report.
    pub fn position_ms(&self, now: Instant) -> Option<f64> {
        let a = self.anchor?;
        Some(if a.playing {
            a.pos_ms + now.saturating_duration_since(a.at).as_secs_f64() * 1000.0
        } else {
            a.pos_ms
        })
    }

    /// A `/karaoke/pos` arrived at `at`. The player is always believed (so our clock never
    /// drifts from its); [`LineFollower::update`] keeps small steps back from flickering.
    pub fn set_position(&mut self, pos: Position, at: Instant) {
        self.anchor = Some(Anchor {
            pos_ms: f64::from(pos.seconds) * 1000.0,
            at,
            playing: pos.playing,
        });
    }

    /// The user offset changed (`set_config offset_ms`).
    pub fn set_offset(&mut self, offset_ms: i64) {
        self.offset_ms = offset_ms;
    }

    /// The line sung at `now` according to the position, ignoring what was reported.
    pub fn line_at(&self, now: Instant) -> i32 {
        self.line_at_shifted(now, 0.0)
    }

    fn line_at_shifted(&self, now: Instant, shift_ms: f64) -> i32 {
        let Some(pos) = self.position_ms(now) else {
            return -1;
        };
        let t = pos + shift_ms + self.offset_ms as f64 + EPSILON_MS;
        let n = self.steps.partition_point(|&(ms, _)| ms as f64 <= t);
        if n == 0 {
            -1
        } else {
            self.steps[n - 1].1
        }
    }

    /// Brings the active line up to `now`: `Some(line)` when it changed (send it).
    pub fn update(&mut self, now: Instant) -> Option<i32> {
        let line = self.line_at(now);
        if line == self.active {
            return None;
        }
        // Just before the stamp of the line already shown: we got there a little early by the
        // player's clock. Hold it; it is sung again in a moment anyway.
        if self.active >= 0 && self.line_at_shifted(now, JITTER_MS) == self.active {
            return None;
        }
        self.active = line;
        Some(line)
    }

    /// When the active line will next change if playback goes on as reported; `None` when
    /// paused, before any position, or after the last change.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let a = self.anchor.filter(|a| a.playing)?;
        let pos = self.position_ms(now)? + self.offset_ms as f64 + EPSILON_MS;
        let start = self.steps.partition_point(|&(ms, _)| ms as f64 <= pos);
        let mut current = self.active;
        for &(ms, idx) in &self.steps[start..] {
            if idx != current {
                // Position reaches `ms - offset` at anchor.at + (that - anchor.pos).
                let wait_ms = (ms - self.offset_ms) as f64 - a.pos_ms;
                let wait = Duration::from_secs_f64((wait_ms / 1000.0).max(0.0));
                // Round up to whole microseconds so the wake-up is never before the stamp.
                return Some(a.at + wait + Duration::from_micros(1));
            }
            current = idx;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lyrics::lrc::parse;

    fn follower() -> LineFollower {
        LineFollower::new(
            &parse("[00:01.00]one\n[00:02.50]two\n[00:04.00]\n[00:05.00]three"),
            0,
        )
    }

    fn at(pos: f32, playing: bool) -> Position {
        Position {
            seconds: pos,
            playing,
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn lines_change_at_their_stamps_between_position_reports() {
        let t0 = Instant::now();
        let mut f = follower();
        f.set_position(at(0.0, true), t0);
        assert_eq!(f.update(t0), None, "before the first line nothing is sung");
        let next = f.next_change(t0).unwrap();
        assert_eq!(next.duration_since(t0).as_millis(), 1000);
        assert_eq!(f.update(next), Some(0));
        let next = f.next_change(next).unwrap();
        assert_eq!(next.duration_since(t0).as_millis(), 2500);
        assert_eq!(f.update(ms(t0, 2499)), None);
        assert_eq!(f.update(next), Some(1));
        assert_eq!(f.update(ms(t0, 4000)), Some(-1), "a blank stamp is a break");
        assert_eq!(f.update(ms(t0, 5000)), Some(2));
        assert_eq!(f.next_change(ms(t0, 5000)), None, "the last line stays");
    }

    #[test]
    fn pause_freezes_and_seek_jumps() {
        let t0 = Instant::now();
        let mut f = follower();
        f.set_position(at(1.2, false), t0);
        assert_eq!(f.update(ms(t0, 10_000)), Some(0));
        assert_eq!(f.next_change(ms(t0, 10_000)), None, "paused: no deadline");
        f.set_position(at(5.5, true), ms(t0, 11_000));
        assert_eq!(f.update(ms(t0, 11_000)), Some(2), "seek forward");
        f.set_position(at(2.6, true), ms(t0, 12_000));
        assert_eq!(f.update(ms(t0, 12_000)), Some(1), "seek back");
    }

    #[test]
    fn small_backward_jitter_does_not_flicker() {
        let t0 = Instant::now();
        let mut f = follower();
        f.set_position(at(0.0, true), t0);
        assert_eq!(f.update(ms(t0, 1010)), Some(0));
        // The player says 0.95 s 10 ms after we reached 1.0 s: keep line 0.
        f.set_position(at(0.95, true), ms(t0, 1010));
        assert_eq!(f.update(ms(t0, 1010)), None);
        // A real seek back is followed.
        f.set_position(at(0.2, true), ms(t0, 1100));
        assert_eq!(f.update(ms(t0, 1100)), Some(-1));
    }

    #[test]
    fn a_slower_player_clock_is_followed_without_flicker() {
        // Lines every 400 ms; the player's clock runs 2 % slow and reports once a second.
        let text: String = (0..100)
            .map(|i| {
                format!(
                    "[{:02}:{:02}.{:02}]line {i}\n",
                    i * 400 / 60_000,
                    i * 400 / 1000 % 60,
                    i * 400 % 1000 / 10
                )
            })
            .collect();
        let mut f = LineFollower::new(&parse(&text), 0);
        let t0 = Instant::now();
        let mut shown = vec![];
        for tick in 0..4000u64 {
            let now = ms(t0, tick * 10);
            if tick % 100 == 0 {
                f.set_position(at(tick as f32 * 0.01 * 0.98, true), now);
            }
            if let Some(line) = f.update(now) {
                shown.push(line);
            }
        }
        assert!(
            shown.windows(2).all(|w| w[1] > w[0]),
            "never back: {shown:?}"
        );
        // The player's clock, not ours, says which line is sung at the end.
        let pos = f.position_ms(ms(t0, 39_990)).unwrap();
        assert_eq!(f.active(), (pos / 400.0).floor() as i32);
        assert!(
            pos < 39_990.0 * 0.985,
            "we follow the slower player ({pos} ms)"
        );
    }

    #[test]
    fn the_user_offset_shows_lines_earlier() {
        let t0 = Instant::now();
        let mut f = follower();
        f.set_offset(500);
        f.set_position(at(0.0, true), t0);
        assert_eq!(
            f.next_change(t0).unwrap().duration_since(t0).as_millis(),
            500
        );
        assert_eq!(f.update(ms(t0, 2000)), Some(1), "2.0 s + 0.5 s = line two");
    }

    proptest::proptest! {
        #[test]
        fn deadlines_hit_every_line_in_order_at_its_stamp(
            gaps in proptest::collection::vec(1i64..5000, 1..40),
            start_ms in 0i64..3000,
        ) {
            let mut t = 0;
            let text: String = gaps.iter().enumerate().map(|(i, g)| {
                t += g;
                format!("[{:02}:{:02}.{:03}]l{i}\n", t / 60_000, t / 1000 % 60, t % 1000)
            }).collect();
            let lyrics = parse(&text);
            let mut f = LineFollower::new(&lyrics, 0);
            let t0 = Instant::now();
            f.set_position(at(start_ms as f32 / 1000.0, true), t0);
            f.update(t0);
            let mut now = t0;
            while let Some(next) = f.next_change(now) {
                proptest::prop_assert!(next >= now);
                now = next;
                let line = f.update(now);
                proptest::prop_assert!(line.is_some(), "a deadline with no change");
                let stamp = lyrics.lines[line.unwrap() as usize].time_ms.unwrap() as f64;
                let pos = f.position_ms(now).unwrap();
                proptest::prop_assert!(pos >= stamp && pos - stamp < 1.0, "{} vs {}", pos, stamp);
            }
            proptest::prop_assert_eq!(f.active() as usize, lyrics.lines.len() - 1);
        }
    }

    #[test]
    fn deadlines_are_within_a_millisecond_of_stamps_for_odd_times() {
        let lyrics = parse("[00:00.333]a\n[00:07.777]b\n[01:59.999]c");
        let t0 = Instant::now();
        let mut f = LineFollower::new(&lyrics, 0);
        f.set_position(at(0.1, true), t0);
        let mut now = t0;
        for (line, stamp_ms) in [(0, 333.0), (1, 7777.0), (2, 119_999.0)] {
            now = f.next_change(now).unwrap();
            assert_eq!(f.update(now), Some(line));
            let pos = f.position_ms(now).unwrap();
            assert!((pos - stamp_ms).abs() < 1.0, "{pos} vs {stamp_ms}");
        }
    }
}
