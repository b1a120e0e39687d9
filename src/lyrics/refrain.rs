//! The refrain: lines sung more than once, compared after normalising case, punctuation and
//! spacing ("Oh, baby!" and "oh baby" are the same line).

use super::lrc::LyricLine;

/// One distinct repeated line.
#[derive(Debug, Clone, PartialEq)]
pub struct RefrainLine {
    /// When it is first sung (ms), `None` for plain lyrics.
    pub time_ms: Option<i64>,
    pub text: String,
    /// How many times it is sung.
    pub count: usize,
}

/// The refrain of a song and, for each lyric line, which refrain line it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refrain {
    pub lines: Vec<RefrainLine>,
    /// `of_line[i]` = index into `lines` for lyric line `i`.
    pub of_line: Vec<Option<usize>>,
}

/// Lowercase letters and digits, words separated by one space.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Finds the lines sung more than once, in order of first appearance.
pub fn find(lines: &[LyricLine]) -> Refrain {
    let keys: Vec<String> = lines.iter().map(|l| normalise(&l.text)).collect();
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for k in keys.iter().filter(|k| !k.is_empty()) {
        *counts.entry(k).or_default() += 1;
    }
    let mut index = std::collections::HashMap::<&str, usize>::new();
    let mut refrain = Refrain {
        lines: Vec::new(),
        of_line: Vec::with_capacity(lines.len()),
    };
    for (line, key) in lines.iter().zip(&keys) {
        let count = counts.get(key.as_str()).copied().unwrap_or(0);
        if count < 2 {
            refrain.of_line.push(None);
            continue;
        }
        let next = refrain.lines.len();
        let i = *index.entry(key).or_insert(next);
        if i == next {
            refrain.lines.push(RefrainLine {
                time_ms: line.time_ms,
                text: line.text.clone(),
                count,
            });
        }
        refrain.of_line.push(Some(i));
    }
    refrain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: i64, text: &str) -> LyricLine {
        LyricLine {
            time_ms: Some(ms),
            text: text.into(),
        }
    }

    #[test]
    fn repeated_lines_match_despite_case_and_punctuation() {
        let lines = vec![
            line(0, "Verse one"),
            line(1000, "Oh, baby, baby!"),
            line(2000, "Verse two"),
            line(3000, "oh baby baby"),
            line(4000, "Don't stop"),
            line(5000, "don't STOP..."),
        ];
        let r = find(&lines);
        assert_eq!(r.lines.len(), 2);
        assert_eq!(r.lines[0].text, "Oh, baby, baby!");
        assert_eq!(r.lines[0].time_ms, Some(1000));
        assert_eq!(r.lines[0].count, 2);
        assert_eq!(
            r.of_line,
            vec![None, Some(0), None, Some(0), Some(1), Some(1)]
        );
    }

    #[test]
    fn a_song_with_no_repeats_has_no_refrain() {
        let r = find(&[
            line(0, "a b"),
            line(1, "c d"),
            line(2, "!!!"),
            line(3, "..."),
        ]);
        assert!(
            r.lines.is_empty(),
            "punctuation-only lines are not a refrain"
        );
        assert_eq!(normalise("  Ça   VA? "), "ça va");
    }
}
