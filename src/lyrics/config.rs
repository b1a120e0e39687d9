//! `[lyrics]` and `[lyrics.llm]` of `vj.toml`: LRCLIB, timing, and the optional mood LLM.

use serde::{Deserialize, Serialize};

use crate::config::Section;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LyricsConfig {
    pub listen: String,
    pub lrclib_url: String,
    pub timeout_ms: u64,
    pub retries: u32,
    pub offset_ms: i64,
    pub llm: LlmConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub url: String,
    pub model: String,
    pub timeout_ms: u64,
}

impl Section for LyricsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.timeout_ms == 0 || self.llm.timeout_ms == 0 {
            return Err("lyrics.timeout_ms and lyrics.llm.timeout_ms must be above 0".into());
        }
        crate::config::check_http_url("lyrics.lrclib_url", &self.lrclib_url)?;
        if !self.llm.url.is_empty() {
            crate::config::check_http_url("lyrics.llm.url", &self.llm.url)?;
        }
        Ok(())
    }
}
