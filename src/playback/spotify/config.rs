//! `[spotify]` of `vj.toml`: which source to follow and how to reach the Web API.

use serde::{Deserialize, Serialize};

use crate::config::Section;

/// `spotify.source`: `auto` picks the Web API when it is set up, else the desktop player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotifySource {
    Auto,
    WebApi,
    Mpris,
    #[serde(rename = "applescript")]
    AppleScript,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotifyConfig {
    pub source: SpotifySource,
    pub client_id: String,
    pub api_url: String,
    pub accounts_url: String,
    pub poll_interval_ms: u64,
    pub timeout_ms: u64,
    pub mpris_player: String,
}

impl Default for SpotifyConfig {
    /// `[spotify]` of `etc/vj.toml`.
    fn default() -> Self {
        crate::config::builtin("spotify")
    }
}

impl Section for SpotifyConfig {
    fn validate(&self) -> Result<(), String> {
        if self.poll_interval_ms < 200 {
            return Err(format!(
                "spotify.poll_interval_ms must be at least 200, not {}",
                self.poll_interval_ms
            ));
        }
        if self.timeout_ms == 0 {
            return Err("spotify.timeout_ms must be above 0".into());
        }
        crate::config::check_http_url("spotify.api_url", &self.api_url)?;
        crate::config::check_http_url("spotify.accounts_url", &self.accounts_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_as_the_words_of_etc_vj_toml() {
        let mut t = crate::config::defaults();
        for (word, source) in [
            ("auto", SpotifySource::Auto),
            ("web_api", SpotifySource::WebApi),
            ("mpris", SpotifySource::Mpris),
            ("applescript", SpotifySource::AppleScript),
        ] {
            let over = format!("source = '{word}'").parse().unwrap();
            crate::config::merge_section(&mut t, "spotify", over).unwrap();
            let c: SpotifyConfig = crate::config::section(&t, "spotify", "test").unwrap();
            assert_eq!(c.source, source);
            assert_eq!(serde_json::to_value(source).unwrap(), word);
        }
        let over = "source = 'itunes'".parse().unwrap();
        crate::config::merge_section(&mut t, "spotify", over).unwrap();
        let err = crate::config::section::<SpotifyConfig>(&t, "spotify", "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`spotify.source`") && err.contains("itunes"),
            "{err}"
        );
    }
}
