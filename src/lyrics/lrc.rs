//! LRC text to lyric lines: `[mm:ss.xx]` and `[mm:ss.xxx]` stamps (the digits after the point
//! are a decimal fraction, so `.5` is 500 ms, `.05` is 50 ms and `.005` is 5 ms), several
//! stamps on one line, `[offset:±ms]`, metadata tags, and plain (unsynced) lyrics.
//!
//! [`parse`] is total: any text gives a [`Lyrics`], never a panic (proptested, fuzzed).

use std::collections::BTreeMap;

/// One sung line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LyricLine {
    /// When it starts, in ms from the start of the song, `[offset:]` applied; `None` for plain
    /// lyrics.
    pub time_ms: Option<i64>,
    pub text: String,
}

/// A song's lyrics as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lyrics {
    /// Non-blank lines; sorted by time when synced, in file order when plain.
    pub lines: Vec<LyricLine>,
    /// Times of timed blank lines: an instrumental gap starts there and no line is sung.
    pub breaks_ms: Vec<i64>,
    /// The `[offset:]` tag that was applied to every time (positive = lines earlier).
    pub offset_ms: i64,
    /// Other `[key:value]` tags (`ar`, `ti`, `al`, `length`, `by`, …), keys lowercased.
    pub tags: BTreeMap<String, String>,
}

impl Lyrics {
    /// True when the lines carry times.
    pub fn is_synced(&self) -> bool {
        self.lines.first().is_some_and(|l| l.time_ms.is_some())
    }

    /// Lyrics with no timing, one line per non-blank line of `text` (LRCLIB's `plainLyrics`).
    pub fn plain(text: &str) -> Lyrics {
        Lyrics {
            lines: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| LyricLine {
                    time_ms: None,
                    text: l.to_string(),
                })
                .collect(),
            ..Lyrics::default()
        }
    }
}

/// Largest time accepted, so sums never overflow: 100 hours.
const MAX_MS: i64 = 100 * 3600 * 1000;

/// Parses LRC. Text with no time stamp at all is kept as plain lyrics; in a synced file,
/// untimed lines (credits, comments) are dropped, and timed blank lines become breaks.
pub fn parse(text: &str) -> Lyrics {
    let mut timed: Vec<(i64, usize, String)> = Vec::new();
    let mut breaks = Vec::new();
    let mut untimed = Vec::new();
    let mut tags = BTreeMap::new();
    let mut offset_ms = 0i64;

    for raw in text.split('\n') {
        let line = raw.trim();
        let mut rest = line;
        let mut stamps = Vec::new();
        while let Some(after_open) = rest.strip_prefix('[') {
            let Some(close) = after_open.find(']') else {
                break;
            };
            let inner = &after_open[..close];
            if let Some(ms) = parse_stamp(inner) {
                stamps.push(ms);
                rest = after_open[close + 1..].trim_start();
            } else if stamps.is_empty() {
                if let Some((key, value)) = parse_tag(inner) {
                    if key == "offset" {
                        if let Some(ms) = parse_offset(value) {
                            offset_ms = ms;
                        }
                    } else {
                        tags.insert(key, value.to_string());
                    }
                    rest = after_open[close + 1..].trim_start();
                    // A tag line carries no lyric, whatever follows it.
                    if rest.is_empty() || !rest.starts_with('[') {
                        rest = "";
                    }
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        let words = strip_word_stamps(rest);
        if stamps.is_empty() {
            if !words.is_empty() && rest.len() == line.len() {
                untimed.push(words);
            }
            continue;
        }
        for ms in stamps {
            if words.is_empty() {
                breaks.push(ms);
            } else {
                timed.push((ms, timed.len(), words.clone()));
            }
        }
    }

    if timed.is_empty() {
        return Lyrics {
            lines: untimed
                .into_iter()
                .map(|text| LyricLine {
                    time_ms: None,
                    text,
                })
                .collect(),
            breaks_ms: Vec::new(),
            offset_ms,
            tags,
        };
    }
    // Stable by time, then file order: several stamps on a line interleave correctly.
    timed.sort_by_key(|(ms, seq, _)| (*ms, *seq));
    breaks.sort_unstable();
    breaks.dedup();
    Lyrics {
        lines: timed
            .into_iter()
            .map(|(ms, _, text)| LyricLine {
                time_ms: Some(ms - offset_ms),
                text,
            })
            .collect(),
        breaks_ms: breaks.into_iter().map(|ms| ms - offset_ms).collect(),
        offset_ms,
        tags,
    }
}

/// `mm:ss`, `mm:ss.f…` or `mm:ss:ff` (some editors write a colon) to ms.
fn parse_stamp(s: &str) -> Option<i64> {
    let (min, rest) = s.split_once(':')?;
    let (sec, frac) = match rest.find(['.', ':']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let min = digits(min.trim_start(), 1, 4)?;
    let sec = digits(sec, 1, 2)?;
    if sec >= 60 {
        return None;
    }
    let frac_ms = match frac {
        None => 0,
        Some(f) => {
            let f = f.trim_end();
            let value = digits(f, 1, 3)?;
            // A decimal fraction: .5 = 500 ms, .05 = 50 ms, .005 = 5 ms.
            value * [100, 10, 1][f.len() - 1]
        }
    };
    let ms = (min * 60 + sec) * 1000 + frac_ms;
    (ms <= MAX_MS).then_some(ms)
}

/// An ASCII decimal of `min..=max` digits.
fn digits(s: &str, min: usize, max: usize) -> Option<i64> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `key:value` with an alphabetic key (`ar`, `offset`, `length`, `re`, `ve`, `#`).
fn parse_tag(inner: &str) -> Option<(String, &str)> {
    let (key, value) = inner.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.len() > 16 || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim()))
}

/// `+250`, `-100`, `250` (ms), bounded so times cannot overflow.
fn parse_offset(value: &str) -> Option<i64> {
    let v = value.trim();
    let (neg, num) = match v.as_bytes().first()? {
        b'+' => (false, &v[1..]),
        b'-' => (true, &v[1..]),
        _ => (false, v),
    };
    let n = digits(num.trim(), 1, 9)?;
    (n <= MAX_MS).then_some(if neg { -n } else { n })
}

/// Drops enhanced-LRC word stamps (`<00:12.34>`) and tidies the spaces they leave.
fn strip_word_stamps(text: &str) -> String {
    if !text.contains('<') {
        return text.trim().to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close) if parse_stamp(&after[..close]).is_some() => rest = &after[close + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn times(l: &Lyrics) -> Vec<(i64, &str)> {
        l.lines
            .iter()
            .map(|l| (l.time_ms.unwrap(), l.text.as_str()))
            .collect()
    }

    #[test]
    fn centiseconds_and_milliseconds_are_told_apart() {
        let l = parse("[00:01.5]a\n[00:02.05]b\n[00:03.005]c\n[00:04.50]d\n[00:05.500]e\n[01:06]f");
        assert_eq!(
            times(&l),
            vec![
                (1500, "a"),
                (2050, "b"),
                (3005, "c"),
                (4500, "d"),
                (5500, "e"),
                (66_000, "f")
            ]
        );
        assert!(l.is_synced());
    }

    #[test]
    fn several_stamps_on_one_line_give_one_line_each_in_time_order() {
        let l = parse("[00:10.00][00:30.00]Chorus\n[00:20.00]Verse\n");
        assert_eq!(
            times(&l),
            vec![(10_000, "Chorus"), (20_000, "Verse"), (30_000, "Chorus")]
        );
    }

    #[test]
    fn offset_moves_every_line_earlier_when_positive() {
        let l = parse("[offset:+500]\n[00:10.00]a\n[00:20.00]\n");
        assert_eq!(times(&l), vec![(9_500, "a")]);
        assert_eq!(l.breaks_ms, vec![19_500]);
        let l = parse("[00:10.00]a\n[offset:-250]");
        assert_eq!(times(&l), vec![(10_250, "a")], "the tag may come last");
        assert_eq!(l.offset_ms, -250);
    }

    #[test]
    fn metadata_is_kept_apart_and_untimed_lines_dropped_from_synced_lyrics() {
        let text = "[ar:Daft Punk]\r\n[ti: One More Time ]\n[length: 05:20]\nLyrics by someone\n\n[00:01.00]One more time\n[00:02.00]  \n";
        let l = parse(text);
        assert_eq!(times(&l), vec![(1000, "One more time")]);
        assert_eq!(l.breaks_ms, vec![2000]);
        assert_eq!(l.tags["ar"], "Daft Punk");
        assert_eq!(l.tags["ti"], "One More Time");
        assert_eq!(l.tags["length"], "05:20");
    }

    #[test]
    fn text_without_stamps_stays_plain() {
        let l = parse("[ar:Someone]\nFirst line\n\n  Second line  \n[not a stamp] third\n");
        assert!(!l.is_synced());
        let texts: Vec<_> = l.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["First line", "Second line", "[not a stamp] third"]
        );
        assert_eq!(
            Lyrics::plain("a\n\n b \n").lines.len(),
            2,
            "plain lyrics skip blank lines"
        );
    }

    #[test]
    fn word_stamps_and_bad_stamps() {
        let l =
            parse("[00:01.00]<00:01.00>Hel<00:01.20>lo <00:01.50> world\n[00:99.00]x\n[ab:cd.ef]y");
        assert_eq!(times(&l), vec![(1000, "Hello world")]);
        assert!(parse("[00:12.3456]too precise").lines[0].time_ms.is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_lrc_like_noise(text in "([\\[\\]:.+\\-<>0-9a-z \n\r]|é|字){0,200}") {
            let l = parse(&text);
            for w in l.lines.windows(2) {
                prop_assert!(w[0].time_ms <= w[1].time_ms || w[0].time_ms.is_none());
            }
        }

        #[test]
        fn every_written_stamp_reads_back(
            lines in proptest::collection::vec((0i64..6_000_000, "[a-zA-Z][a-zA-Z ]{0,20}[a-zA-Z]", 1usize..=3), 1..30),
            offset in -5000i64..5000,
        ) {
            let mut text = format!("[offset:{offset:+}]\n");
            let mut expected = Vec::new();
            for (ms, words, digits) in &lines {
                let (m, s, f) = (ms / 60_000, ms / 1000 % 60, ms % 1000);
                let stamp = match digits {
                    1 => format!("[{m:02}:{s:02}.{}]", f / 100),
                    2 => format!("[{m:02}:{s:02}.{:02}]", f / 10),
                    _ => format!("[{m:02}:{s:02}.{f:03}]"),
                };
                let exact = match digits { 1 => ms - ms % 100, 2 => ms - ms % 10, _ => *ms };
                text.push_str(&format!("{stamp}{words}\n"));
                expected.push((exact - offset, words.trim().to_string()));
            }
            expected.sort_by_key(|(t, _)| *t);
            let l = parse(&text);
            let got: Vec<_> = l.lines.iter().map(|l| (l.time_ms.unwrap(), l.text.clone())).collect();
            prop_assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), expected.iter().map(|e| e.0).collect::<Vec<_>>());
            let mut g: Vec<_> = got.iter().map(|g| g.1.clone()).collect();
            let mut e: Vec<_> = expected.iter().map(|e| e.1.clone()).collect();
            g.sort();
            e.sort();
            prop_assert_eq!(g, e);
        }
    }
}
