//! Mood categories of a song (`/karaoke/categories/<mood>`): from an OpenAI-compatible chat
//! API when one is configured, else from word lists that need no network.

use std::time::Duration;

use serde_json::{json, Value};

use crate::service::credentials::Secret;

use super::refrain::normalise;

/// The moods, as SPEC section 4 names them.
pub const MOODS: [&str; 12] = [
    "dark",
    "happy",
    "sad",
    "energetic",
    "calm",
    "love",
    "death",
    "romantic",
    "aggressive",
    "peaceful",
    "nostalgic",
    "uplifting",
];
/// How many moods are sent per song.
pub const TOP: usize = 5;

/// Mood scores 0..1, highest first, only moods with a score above 0.
pub type MoodScores = Vec<(&'static str, f32)>;

/// Word stems per mood (a word counts when it starts with the stem).
const WORDS: [(&str, &[&str]); 12] = [
    (
        "dark",
        &[
            "dark", "shadow", "night", "black", "cold", "fear", "ghost", "devil", "hell", "demon",
            "alone", "empty", "void",
        ],
    ),
    (
        "happy",
        &[
            "happy",
            "smile",
            "laugh",
            "fun",
            "joy",
            "sunshine",
            "sun",
            "good time",
            "party",
            "celebrat",
            "glad",
            "bright",
        ],
    ),
    (
        "sad",
        &[
            "sad", "cry", "tear", "lonely", "alone", "goodbye", "miss", "broken", "pain", "hurt",
            "sorrow", "blue", "lost",
        ],
    ),
    (
        "energetic",
        &[
            "run", "jump", "dance", "move", "fast", "fire", "loud", "wild", "shake", "go", "power",
            "electric", "faster",
        ],
    ),
    (
        "calm",
        &[
            "calm", "slow", "quiet", "still", "breathe", "gentle", "soft", "easy", "rest", "sleep",
            "float",
        ],
    ),
    (
        "love",
        &[
            "love", "lover", "heart", "kiss", "hold", "darling", "baby", "honey", "together",
            "forever",
        ],
    ),
    (
        "death",
        &[
            "death", "dead", "die", "dying", "kill", "grave", "funeral", "blood", "bury", "murder",
            "coffin",
        ],
    ),
    (
        "romantic",
        &[
            "romanc",
            "kiss",
            "candle",
            "moonlight",
            "rose",
            "embrace",
            "tender",
            "desire",
            "touch",
            "sweet",
        ],
    ),
    (
        "aggressive",
        &[
            "fight", "hate", "rage", "anger", "angry", "war", "scream", "destroy", "smash", "gun",
            "enemy", "burn",
        ],
    ),
    (
        "peaceful",
        &[
            "peace", "harmony", "serene", "river", "ocean", "sky", "free", "breeze", "garden",
            "heaven",
        ],
    ),
    (
        "nostalgic",
        &[
            "remember",
            "memor",
            "yesterday",
            "used to",
            "old",
            "young",
            "back then",
            "childhood",
            "past",
            "again",
            "years",
        ],
    ),
    (
        "uplifting",
        &[
            "rise",
            "hope",
            "believe",
            "fly",
            "high",
            "shine",
            "strong",
            "dream",
            "light",
            "higher",
            "stand up",
            "never give up",
        ],
    ),
];

/// Scores moods by counting mood words in the lyrics; the best mood gets 1.0.
pub fn score_words(lines: &[&str]) -> MoodScores {
    let mut counts = [0u32; 12];
    for line in lines {
        let text = format!(" {} ", normalise(line));
        for (i, (_, stems)) in WORDS.iter().enumerate() {
            for stem in *stems {
                counts[i] += text.matches(&format!(" {stem}")).count() as u32;
            }
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Vec::new();
    }
    let scores = MOODS
        .iter()
        .zip(counts)
        .map(|(m, c)| (*m, c as f32 / max as f32))
        .collect();
    top(scores)
}

/// The [`TOP`] highest scores above 0, highest first (ties in SPEC order).
pub fn top(mut scores: Vec<(&'static str, f32)>) -> MoodScores {
    scores.retain(|(_, s)| *s > 0.0);
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores.truncate(TOP);
    scores
}

/// Reads an LLM's answer: a JSON object of mood → score, possibly wrapped in prose or a code
/// fence. Unknown moods are dropped, scores clamped to 0..1; `None` when nothing usable.
pub fn parse_llm_answer(content: &str) -> Option<MoodScores> {
    let start = content.find('{')?;
    let end = content.rfind('}')?;
    let object: serde_json::Map<String, Value> =
        serde_json::from_str(content.get(start..=end)?).ok()?;
    let scores: Vec<(&'static str, f32)> = MOODS
        .iter()
        .filter_map(|m| {
            let v = object.get(*m)?.as_f64()?;
            v.is_finite().then_some((*m, v.clamp(0.0, 1.0) as f32))
        })
        .collect();
    let scores = top(scores);
    (!scores.is_empty()).then_some(scores)
}

/// Why the LLM gave no moods.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM at {url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the LLM at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the LLM at {url} answered something that is not mood scores")]
    Garbage { url: String },
}

/// An OpenAI-compatible chat API (`POST {url}/chat/completions`), e.g. Ollama's `/v1`.
#[derive(Debug, Clone)]
pub struct MoodLlm {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<Secret>,
}

impl MoodLlm {
    pub fn new(url: &str, model: &str, key: Option<Secret>, timeout: Duration) -> MoodLlm {
        MoodLlm {
            http: reqwest::Client::builder()
                .user_agent(super::lrclib::USER_AGENT)
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            url: format!("{}/chat/completions", url.trim_end_matches('/')),
            model: model.to_string(),
            key,
        }
    }

    /// Asks for the moods of these lyrics.
    pub async fn moods(
        &self,
        artist: &str,
        title: &str,
        lyrics: &str,
    ) -> Result<MoodScores, LlmError> {
        let lyrics: String = lyrics.chars().take(6000).collect();
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "stream": false,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": format!(
                    "You rate the mood of song lyrics. Answer with one JSON object only, \
                     mapping each of these moods to a score from 0 to 1: {}.",
                    MOODS.join(", "))},
                {"role": "user", "content": format!("\"{title}\" by {artist}:\n\n{lyrics}")},
            ],
        });
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose());
        }
        let unreachable = |e: reqwest::Error| LlmError::Unreachable {
            url: self.url.clone(),
            reason: if e.is_timeout() {
                "timed out".into()
            } else {
                // reqwest errors name the URL, never headers: the key stays out.
                e.without_url().to_string()
            },
        };
        let resp = req.send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(LlmError::Status {
                url: self.url.clone(),
                status: resp.status().as_u16(),
            });
        }
        let answer: Value = resp.json().await.map_err(|_| LlmError::Garbage {
            url: self.url.clone(),
        })?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .and_then(parse_llm_answer)
            .ok_or_else(|| LlmError::Garbage {
                url: self.url.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_find_the_obvious_mood() {
        let s = score_words(&[
            "I cry alone tonight, my broken heart",
            "tears fall, goodbye my love",
        ]);
        assert_eq!(s[0], ("sad", 1.0));
        assert!(s.len() <= TOP);
        assert!(s.iter().all(|(_, v)| (0.0..=1.0).contains(v)));
        assert!(score_words(&["la la la"]).is_empty());
    }

    #[test]
    fn llm_answers_are_read_leniently_but_never_trusted() {
        let s = parse_llm_answer(
            "Sure! ```json\n{\"happy\": 0.9, \"sad\": 3, \"bogus\": 1, \"dark\": \"x\"}\n```",
        )
        .unwrap();
        assert_eq!(s, vec![("sad", 1.0), ("happy", 0.9)]);
        assert_eq!(parse_llm_answer("I cannot help with that."), None);
        assert_eq!(parse_llm_answer("{\"bogus\": 1}"), None);
        assert_eq!(parse_llm_answer("} {"), None);
    }
}
