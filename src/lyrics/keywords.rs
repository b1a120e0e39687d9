//! Keywords of a lyric line: its content words (no stop words), longest first, at most three —
//! short enough to flash on screen.

use super::refrain::normalise;

/// Most keywords given for one line.
pub const MAX_PER_LINE: usize = 3;

/// Words that carry no image: articles, pronouns, auxiliaries, fillers (English).
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "cause", "could", "did", "do", "does", "don't", "for", "from",
    "get", "got", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i", "i'm", "if",
    "in", "into", "is", "it", "it's", "its", "just", "let", "like", "me", "my", "no", "not", "now",
    "of", "oh", "on", "one", "or", "our", "out", "over", "she", "so", "some", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "to", "too", "up", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would",
    "yeah", "you", "you're", "your", "ooh", "ah", "la", "na", "hey", "gonna", "wanna", "gotta",
    "i'll", "i've", "can't", "won't", "ain't", "we're", "they're", "there's", "that's", "what's",
    "let's", "she's", "he's", "be", "been", "being", "more", "very", "only", "own", "same", "such",
    "yet", "still", "ever", "every", "way", "know",
];

/// The keywords of one line, space separated; "" when it has none.
pub fn of_line(text: &str) -> String {
    let normal = normalise(text);
    let mut words: Vec<&str> = Vec::new();
    for w in normal.split(' ') {
        if w.chars().count() < 3 || STOP_WORDS.contains(&w) || words.contains(&w) {
            continue;
        }
        words.push(w);
    }
    // Longest first (stable, so equal lengths keep sung order).
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.truncate(MAX_PER_LINE);
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_longest_content_words() {
        assert_eq!(
            of_line("I'm dancing in the moonlight, it's a love supreme"),
            "moonlight dancing supreme"
        );
        assert_eq!(of_line("Oh yeah, you and me"), "");
        assert_eq!(of_line("Fire, fire, FIRE"), "fire");
    }
}
