//! One song's lyrics ready for the stage: lines, refrain and keywords, and the OSC messages
//! that announce them and follow the sung line (SPEC section 4).

use rosc::{OscMessage, OscType};

use super::cache::Entry;
use super::keywords;
use super::lrc::{self, Lyrics};
use super::refrain::{self, Refrain};

pub const LYRICS_RESET: &str = "/karaoke/lyrics/reset";
pub const REFRAIN_RESET: &str = "/karaoke/refrain/reset";
pub const KEYWORDS_RESET: &str = "/karaoke/keywords/reset";
pub const LYRICS_LINE: &str = "/karaoke/lyrics/line";
pub const REFRAIN_LINE: &str = "/karaoke/refrain/line";
pub const KEYWORDS_LINE: &str = "/karaoke/keywords/line";
pub const LINE_ACTIVE: &str = "/karaoke/line/active";
pub const REFRAIN_ACTIVE: &str = "/karaoke/refrain/active";
pub const KEYWORDS_ACTIVE: &str = "/karaoke/keywords/active";
pub const CATEGORIES: &str = "/karaoke/categories/";

/// The time sent for a line of plain (unsynced) lyrics.
pub const NO_TIME: f32 = -1.0;

/// A song's lyrics, analysed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Song {
    pub lyrics: Lyrics,
    pub refrain: Refrain,
    /// Keywords of each line ("" when none).
    pub keywords: Vec<String>,
    pub instrumental: bool,
}

/// Which refrain and keywords were last announced, so "none" is sent once, not per line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ActiveShown {
    refrain: bool,
    keywords: bool,
}

fn msg(addr: &str, args: Vec<OscType>) -> OscMessage {
    OscMessage {
        addr: addr.to_string(),
        args,
    }
}

fn seconds(ms: Option<i64>) -> f32 {
    ms.map_or(NO_TIME, |ms| ms as f32 / 1000.0)
}

fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

impl Song {
    /// Synced lyrics when there are any, else plain ones.
    pub fn from_entry(entry: &Entry) -> Song {
        let synced = entry
            .synced
            .as_deref()
            .map(lrc::parse)
            .filter(|l| !l.lines.is_empty());
        let lyrics = synced
            .or_else(|| entry.plain.as_deref().map(Lyrics::plain))
            .unwrap_or_default();
        Song::new(lyrics, entry.instrumental)
    }

    pub fn new(lyrics: Lyrics, instrumental: bool) -> Song {
        let refrain = refrain::find(&lyrics.lines);
        let keywords = lyrics
            .lines
            .iter()
            .map(|l| keywords::of_line(&l.text))
            .collect();
        Song {
            lyrics,
            refrain,
            keywords,
            instrumental,
        }
    }

    pub fn has_lyrics(&self) -> bool {
        !self.lyrics.lines.is_empty()
    }

    /// Every line, refrain line and keyword line, in that order.
    pub fn announce(&self) -> Vec<OscMessage> {
        let lines = &self.lyrics.lines;
        let mut out = Vec::with_capacity(lines.len() * 2 + self.refrain.lines.len());
        for (i, l) in lines.iter().enumerate() {
            out.push(msg(
                LYRICS_LINE,
                vec![
                    OscType::Int(index(i)),
                    OscType::Float(seconds(l.time_ms)),
                    OscType::String(l.text.clone()),
                ],
            ));
        }
        for (i, r) in self.refrain.lines.iter().enumerate() {
            out.push(msg(
                REFRAIN_LINE,
                vec![
                    OscType::Int(index(i)),
                    OscType::Float(seconds(r.time_ms)),
                    OscType::String(r.text.clone()),
                ],
            ));
        }
        for (i, (l, k)) in lines.iter().zip(&self.keywords).enumerate() {
            if !k.is_empty() {
                out.push(msg(
                    KEYWORDS_LINE,
                    vec![
                        OscType::Int(index(i)),
                        OscType::Float(seconds(l.time_ms)),
                        OscType::String(k.clone()),
                    ],
                ));
            }
        }
        out
    }

    /// The messages for "line `line` is now sung" (-1 = none): the line, then its refrain
    /// line and keywords (or, once, that there are none).
    pub fn active(&self, line: i32, shown: &mut ActiveShown) -> Vec<OscMessage> {
        let mut out = vec![msg(LINE_ACTIVE, vec![OscType::Int(line)])];
        let i = usize::try_from(line)
            .ok()
            .filter(|&i| i < self.lyrics.lines.len());
        let refrain = i.and_then(|i| self.refrain.of_line.get(i).copied().flatten());
        match refrain {
            Some(r) => {
                out.push(msg(
                    REFRAIN_ACTIVE,
                    vec![
                        OscType::Int(index(r)),
                        OscType::String(self.refrain.lines[r].text.clone()),
                    ],
                ));
                shown.refrain = true;
            }
            None if shown.refrain => {
                out.push(msg(
                    REFRAIN_ACTIVE,
                    vec![OscType::Int(-1), OscType::String(String::new())],
                ));
                shown.refrain = false;
            }
            None => {}
        }
        let keywords = i
            .map(|i| self.keywords[i].as_str())
            .filter(|k| !k.is_empty());
        match keywords {
            Some(k) => {
                out.push(msg(
                    KEYWORDS_ACTIVE,
                    vec![OscType::Int(line), OscType::String(k.to_string())],
                ));
                shown.keywords = true;
            }
            None if shown.keywords => {
                out.push(msg(
                    KEYWORDS_ACTIVE,
                    vec![OscType::Int(line), OscType::String(String::new())],
                ));
                shown.keywords = false;
            }
            None => {}
        }
        out
    }
}

/// The three resets that start a song.
pub fn resets() -> [OscMessage; 3] {
    [
        msg(LYRICS_RESET, vec![]),
        msg(REFRAIN_RESET, vec![]),
        msg(KEYWORDS_RESET, vec![]),
    ]
}

/// `/karaoke/categories/<mood> f` for each score.
pub fn categories(scores: &[(&str, f32)]) -> Vec<OscMessage> {
    scores
        .iter()
        .map(|(mood, s)| msg(&format!("{CATEGORIES}{mood}"), vec![OscType::Float(*s)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osc::type_tags;

    fn song() -> Song {
        Song::new(
            lrc::parse("[00:01.00]Dancing in the moonlight\n[00:02.00]Verse line\n[00:03.00]dancing in the MOONLIGHT!\n[00:04.00]Oh yeah"),
            false,
        )
    }

    #[test]
    fn announces_lines_refrain_and_keywords_with_spec_types() {
        let msgs = song().announce();
        let summary: Vec<_> = msgs
            .iter()
            .map(|m| (m.addr.as_str(), type_tags(&m.args)))
            .collect();
        assert_eq!(summary.iter().filter(|(a, _)| *a == LYRICS_LINE).count(), 4);
        assert_eq!(
            summary.iter().filter(|(a, _)| *a == REFRAIN_LINE).count(),
            1
        );
        assert_eq!(
            summary.iter().filter(|(a, _)| *a == KEYWORDS_LINE).count(),
            3,
            "'Oh yeah' has none"
        );
        assert!(summary.iter().all(|(_, t)| t == "ifs"));
        assert_eq!(msgs[0].args[1], OscType::Float(1.0));
        assert_eq!(
            msgs[4].args[2],
            OscType::String("Dancing in the moonlight".into())
        );
    }

    #[test]
    fn active_line_carries_refrain_and_keywords_and_clears_them_once() {
        let s = song();
        let mut shown = ActiveShown::default();
        let on = s.active(0, &mut shown);
        assert_eq!(on.len(), 3);
        assert_eq!(type_tags(&on[1].args), "is");
        assert_eq!(on[2].args[1], OscType::String("moonlight dancing".into()));
        let off = s.active(3, &mut shown);
        assert_eq!(off.len(), 3, "refrain and keywords are cleared");
        assert_eq!(off[1].args[0], OscType::Int(-1));
        assert_eq!(
            s.active(-1, &mut shown).len(),
            1,
            "already clear: just the line"
        );
    }

    #[test]
    fn plain_lyrics_have_no_time() {
        let entry = Entry {
            found: true,
            plain: Some("a b c\nd e f".into()),
            ..Entry::miss("x", "y")
        };
        let s = Song::from_entry(&entry);
        assert!(!s.lyrics.is_synced());
        assert_eq!(s.announce()[0].args[1], OscType::Float(NO_TIME));
    }
}
