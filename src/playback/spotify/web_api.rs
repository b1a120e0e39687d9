//! The Spotify Web API: an access token refreshed from the stored refresh token before it
//! expires, and `GET /v1/me/player` read into what plays. Tokens never reach a message or log.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::karaoke::NowPlaying;
use crate::service::credentials::{self, Secret};

/// The credential `vj-spotify login` stores and the worker reads.
pub const REFRESH_TOKEN: &str = "spotify_refresh_token";
/// An access token is refreshed this long before Spotify says it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("spotify.client_id is empty: create an app at https://developer.spotify.com/dashboard and set its client id")]
    NoClientId,
    #[error("no Spotify refresh token: run `vj-spotify login` (or hand it as the systemd credential {REFRESH_TOKEN})")]
    NoRefreshToken,
    #[error("the Spotify refresh token is unreadable: {0}")]
    Credential(String),
    #[error("Spotify refused the refresh token ({0}); refresh tokens expire after months: run `vj-spotify login` again")]
    RefreshRejected(String),
    #[error("Spotify rejected a fresh access token (401); run `vj-spotify login` again if this persists")]
    Unauthorized,
    #[error("Spotify asks to wait {0}s (429 Too Many Requests)")]
    RateLimited(u64),
    #[error("Spotify answered HTTP {status} for {what}")]
    Status { status: u16, what: &'static str },
    #[error("cannot reach Spotify for {what}: {reason}")]
    Network { what: &'static str, reason: String },
    #[error("Spotify's answer for {what} is not the JSON expected: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// What the player endpoint says.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerState {
    /// `None`: nothing plays, or an episode or an ad (not a song).
    pub track: Option<NowPlaying>,
    pub progress_s: Option<f64>,
    pub playing: bool,
    /// `track`, `episode`, `ad`, `unknown`, or `none` (HTTP 204: nothing, or a private session).
    pub kind: String,
}

impl PlayerState {
    pub fn nothing(kind: &str) -> Self {
        PlayerState {
            track: None,
            progress_s: None,
            playing: false,
            kind: kind.into(),
        }
    }
}

#[derive(Deserialize)]
struct PlayerBody {
    #[serde(default)]
    is_playing: bool,
    progress_ms: Option<f64>,
    #[serde(default)]
    currently_playing_type: Option<String>,
    item: Option<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    artists: Vec<Named>,
    album: Option<Named>,
    duration_ms: Option<f64>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

/// Reads a `GET /v1/me/player` (or `/currently-playing`) 200 body.
pub fn parse_player(body: &[u8]) -> Result<PlayerState, ApiError> {
    let b: PlayerBody = serde_json::from_slice(body).map_err(|e| ApiError::Malformed {
        what: "the player state",
        reason: e.to_string(),
    })?;
    let kind = b
        .currently_playing_type
        .clone()
        .or_else(|| b.item.as_ref().and_then(|i| i.kind.clone()))
        .unwrap_or_else(|| "unknown".into());
    let item = b
        .item
        .filter(|i| i.kind.as_deref().unwrap_or("track") == "track" && kind == "track");
    let Some(item) = item else {
        return Ok(PlayerState {
            playing: b.is_playing,
            progress_s: None,
            ..PlayerState::nothing(&kind)
        });
    };
    let artists: Vec<&str> = item
        .artists
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    Ok(PlayerState {
        track: Some(NowPlaying {
            source: "spotify".into(),
            artist: artists.join(", "),
            title: item.name,
            album: item.album.map(|a| a.name).unwrap_or_default(),
            duration_s: item.duration_ms.map_or(0.0, |d| (d / 1000.0) as f32),
            has_lyrics: false,
        }),
        progress_s: b
            .progress_ms
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map(|p| p / 1000.0),
        playing: b.is_playing,
        kind,
    })
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
    refresh_token: Option<String>,
}

fn default_expiry() -> u64 {
    3600
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

/// What the token endpoint gave.
pub struct Tokens {
    pub access: Secret,
    pub expires_in: Duration,
    /// Spotify rotates refresh tokens with PKCE: a new one replaces the stored one.
    pub refresh: Option<Secret>,
}

/// POSTs a form to `{accounts_url}/api/token`.
pub async fn token_request(
    http: &reqwest::Client,
    accounts_url: &str,
    form: &[(&str, &str)],
) -> Result<Tokens, ApiError> {
    let url = format!("{}/api/token", accounts_url.trim_end_matches('/'));
    let what = "a token";
    let resp = http
        .post(&url)
        .form(form)
        .send()
        .await
        .map_err(|e| network(what, &e))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| network(what, &e))?;
    match status {
        200 => {
            let t: TokenBody = serde_json::from_slice(&body).map_err(|e| ApiError::Malformed {
                what,
                reason: e.to_string(),
            })?;
            Ok(Tokens {
                access: Secret::new(t.access_token),
                expires_in: Duration::from_secs(t.expires_in.max(1)),
                refresh: t.refresh_token.filter(|r| !r.is_empty()).map(Secret::new),
            })
        }
        400 | 401 => {
            let e: Option<TokenError> = serde_json::from_slice(&body).ok();
            let reason = e
                .map(|e| {
                    // Spotify's own words; they never echo a token.
                    format!(
                        "{}: {}",
                        e.error.unwrap_or_default(),
                        e.error_description.unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| format!("HTTP {status}"));
            Err(ApiError::RefreshRejected(reason))
        }
        429 => Err(ApiError::RateLimited(5)),
        s => Err(ApiError::Status { status: s, what }),
    }
}

fn network(what: &'static str, e: &reqwest::Error) -> ApiError {
    // reqwest's message may name the URL (base URL + path: no secret in it), never a header.
    let reason = if e.is_timeout() {
        "no answer in time".to_string()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        s
    };
    ApiError::Network { what, reason }
}

/// The refresh token: the systemd credential, unless Spotify has since rotated it and the new
/// one was saved in the state dir (with PKCE the old token stops working once exchanged).
pub fn stored_refresh_token() -> Result<Option<Secret>, ApiError> {
    use std::os::unix::fs::MetadataExt;
    let credential =
        credentials::read(REFRESH_TOKEN).map_err(|e| ApiError::Credential(e.to_string()))?;
    let state = credentials::state_path(REFRESH_TOKEN);
    let from_systemd = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(|d| std::path::PathBuf::from(d).join(REFRESH_TOKEN))
        .filter(|p| p.exists());
    let modified = |p: &std::path::Path| std::fs::metadata(p).ok().and_then(|m| m.modified().ok());
    if let Some(cred) = from_systemd {
        if let (Some(c), Ok(meta)) = (modified(&cred), std::fs::metadata(&state)) {
            let rotated_later = meta.modified().is_ok_and(|s| s > c);
            if rotated_later && meta.mode() & 0o077 == 0 {
                let text = std::fs::read_to_string(&state).map_err(|e| {
                    ApiError::Credential(format!("cannot read {}: {e}", state.display()))
                })?;
                let text = text.trim();
                if !text.is_empty() {
                    return Ok(Some(Secret::new(text)));
                }
            }
        }
    }
    Ok(credential)
}

/// A Web API session: client id, refresh token, the current access token.
pub struct WebApi {
    http: reqwest::Client,
    api_url: String,
    accounts_url: String,
    client_id: String,
    refresh: Secret,
    access: Option<(Secret, Instant)>,
    pub refreshes: u64,
}

impl WebApi {
    /// Reads the refresh token; errors say what to do (`vj-spotify login`).
    pub fn new(c: &super::config::SpotifyConfig) -> Result<WebApi, ApiError> {
        if c.client_id.trim().is_empty() {
            return Err(ApiError::NoClientId);
        }
        let refresh = stored_refresh_token()?.ok_or(ApiError::NoRefreshToken)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(c.timeout_ms))
            .user_agent(concat!("vj-suite v", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| network("a client", &e))?;
        Ok(WebApi {
            http,
            api_url: c.api_url.trim_end_matches('/').to_string(),
            accounts_url: c.accounts_url.clone(),
            client_id: c.client_id.trim().to_string(),
            refresh,
            access: None,
            refreshes: 0,
        })
    }

    /// A valid access token, refreshed when it is about to expire.
    async fn access_token(&mut self, force: bool) -> Result<Secret, ApiError> {
        if let Some((t, expires)) = &self.access {
            if !force && Instant::now() + REFRESH_MARGIN < *expires {
                return Ok(t.clone());
            }
        }
        let tokens = token_request(
            &self.http,
            &self.accounts_url,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh.expose()),
                ("client_id", &self.client_id),
            ],
        )
        .await?;
        self.refreshes += 1;
        debug!(
            expires_in = tokens.expires_in.as_secs(),
            "access token refreshed"
        );
        if let Some(r) = tokens.refresh {
            if r != self.refresh {
                match credentials::save(REFRESH_TOKEN, &r) {
                    Ok(path) => {
                        info!(path = %path.display(), "Spotify rotated the refresh token; saved the new one in {}", path.display())
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot save Spotify's new refresh token ({e}); `vj-spotify login` may be needed after a restart")
                    }
                }
                self.refresh = r;
            }
        }
        self.access = Some((tokens.access.clone(), Instant::now() + tokens.expires_in));
        Ok(tokens.access)
    }

    /// When the access token will be refreshed (for get_state), seconds from now.
    pub fn token_valid_for(&self) -> Option<f64> {
        self.access
            .as_ref()
            .map(|(_, e)| e.saturating_duration_since(Instant::now()).as_secs_f64())
    }

    /// What plays now: one GET, and on 401 one refresh and one more GET.
    pub async fn player(&mut self) -> Result<PlayerState, ApiError> {
        let token = self.access_token(false).await?;
        match self.get_player(&token).await {
            Err(ApiError::Unauthorized) => {
                let token = self.access_token(true).await?;
                self.get_player(&token).await
            }
            r => r,
        }
    }

    async fn get_player(&self, token: &Secret) -> Result<PlayerState, ApiError> {
        let what = "the player state";
        let url = format!("{}/v1/me/player?additional_types=episode", self.api_url);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| network(what, &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match status {
            204 => return Ok(PlayerState::nothing("none")),
            401 => return Err(ApiError::Unauthorized),
            429 => return Err(ApiError::RateLimited(retry_after.unwrap_or(5).max(1))),
            200 => {}
            s => return Err(ApiError::Status { status: s, what }),
        }
        let body = resp.bytes().await.map_err(|e| network(what, &e))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(PlayerState::nothing("none"));
        }
        parse_player(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_with_several_artists() {
        let body = br#"{"is_playing":true,"progress_ms":61500,"currently_playing_type":"track",
            "item":{"type":"track","name":"Get Lucky","duration_ms":369000,
            "artists":[{"name":"Daft Punk"},{"name":"Pharrell Williams"}],"album":{"name":"Random Access Memories"}}}"#;
        let s = parse_player(body).unwrap();
        let t = s.track.unwrap();
        assert_eq!(t.artist, "Daft Punk, Pharrell Williams");
        assert_eq!(
            (t.title.as_str(), t.album.as_str(), t.duration_s),
            ("Get Lucky", "Random Access Memories", 369.0)
        );
        assert_eq!((s.progress_s, s.playing), (Some(61.5), true));
    }

    #[test]
    fn null_progress_episodes_and_ads() {
        let s = parse_player(br#"{"is_playing":true,"progress_ms":null,"currently_playing_type":"track","item":{"type":"track","name":"X","artists":[],"album":null,"duration_ms":1000}}"#).unwrap();
        assert!(s.track.is_some() && s.progress_s.is_none());
        let ep = parse_player(br#"{"is_playing":true,"progress_ms":5,"currently_playing_type":"episode","item":{"type":"episode","name":"Podcast"}}"#).unwrap();
        assert_eq!((ep.track, ep.kind.as_str()), (None, "episode"));
        let ad = parse_player(
            br#"{"is_playing":true,"progress_ms":5,"currently_playing_type":"ad","item":null}"#,
        )
        .unwrap();
        assert_eq!((ad.track, ad.kind.as_str()), (None, "ad"));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        let e = parse_player(b"{not json").unwrap_err();
        assert!(e.to_string().contains("not the JSON"), "{e}");
        assert!(parse_player(br#"{"item": 5}"#).is_err());
    }
}
