//! The LRCLIB client (<https://lrclib.net/docs>): `/api/get` by track, artist, album and
//! duration, `/api/search` as the fallback (closest duration wins), retries with back-off on
//! network errors, 5xx and 429 (honouring `Retry-After`); 404 is an answer, not an error.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::service::backoff::Backoff;

/// `vj-suite v0.1.0 (https://github.com/vj-suite/vj-suite)`, as LRCLIB asks clients to say.
pub const USER_AGENT: &str = concat!(
    "vj-suite v",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CARGO_PKG_HOMEPAGE"),
    ")"
);
/// The longest `Retry-After` we wait inside one lookup; longer means "try later".
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// A search result whose duration is further off than this is another version of the song:
/// its plain lyrics are fine, its timings are not.
const SYNC_TOLERANCE_S: f64 = 10.0;

/// What to look up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackQuery {
    pub artist: String,
    pub title: String,
    pub album: String,
    /// Seconds; 0 = unknown.
    pub duration_s: f64,
}

/// One LRCLIB record (either lyrics field may be null; instrumental has both null).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LrclibRecord {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub track_name: Option<String>,
    #[serde(default)]
    pub artist_name: Option<String>,
    #[serde(default)]
    pub album_name: Option<String>,
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub instrumental: bool,
    #[serde(default)]
    pub plain_lyrics: Option<String>,
    #[serde(default)]
    pub synced_lyrics: Option<String>,
}

/// LRCLIB's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(LrclibRecord),
    /// 404 from `/api/get` and nothing from `/api/search`.
    NotFound,
}

/// A lookup that got no answer; worth trying again later (none of these is cached).
#[derive(Debug, thiserror::Error)]
pub enum LrclibError {
    #[error("LRCLIB at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach LRCLIB at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("LRCLIB at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("LRCLIB at {url} is rate limiting; retry after {retry_after:?}")]
    RateLimited { url: String, retry_after: Duration },
    #[error("LRCLIB at {url} sent a body that is not its JSON: {reason}")]
    BadBody { url: String, reason: String },
    #[error("lrclib_url {0:?} is not a usable http(s) URL")]
    BadUrl(String),
}

/// LRCLIB's error body `{message, name, statusCode}` (or `code` on 404).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Per request, connect to last byte.
    pub timeout: Duration,
    /// Extra attempts after the first.
    pub retries: u32,
    /// First back-off; doubles each retry.
    pub backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct LrclibClient {
    http: reqwest::Client,
    base: String,
    policy: RetryPolicy,
}

impl LrclibClient {
    pub fn new(base_url: &str, policy: RetryPolicy) -> Result<LrclibClient, LrclibError> {
        let base = base_url.trim_end_matches('/').to_string();
        if reqwest::Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .is_none()
        {
            return Err(LrclibError::BadUrl(base_url.to_string()));
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| LrclibError::Network {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(LrclibClient { http, base, policy })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Looks a song up: `/api/get` when the duration is known, then `/api/search`.
    pub async fn lookup(&self, q: &TrackQuery) -> Result<Lookup, LrclibError> {
        if q.duration_s > 0.0 {
            let mut params = vec![
                ("track_name", q.title.clone()),
                ("artist_name", q.artist.clone()),
            ];
            if !q.album.is_empty() {
                params.push(("album_name", q.album.clone()));
            }
            params.push(("duration", format!("{}", q.duration_s.round() as i64)));
            if let Some(body) = self.get_json("/api/get", &params).await? {
                let record: LrclibRecord = serde_json::from_str(&body)
                    .map_err(|e| self.bad_body("/api/get", e.to_string()))?;
                return Ok(Lookup::Found(record));
            }
        }
        let params = [
            ("track_name", q.title.clone()),
            ("artist_name", q.artist.clone()),
        ];
        let Some(body) = self.get_json("/api/search", &params).await? else {
            return Ok(Lookup::NotFound);
        };
        let records: Vec<LrclibRecord> =
            serde_json::from_str(&body).map_err(|e| self.bad_body("/api/search", e.to_string()))?;
        Ok(choose(records, q.duration_s).map_or(Lookup::NotFound, Lookup::Found))
    }

    fn bad_body(&self, path: &str, reason: String) -> LrclibError {
        LrclibError::BadBody {
            url: format!("{}{path}", self.base),
            reason,
        }
    }

    /// GETs `path`; `Ok(None)` on 404. Retries what may pass.
    async fn get_json(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Option<String>, LrclibError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = Backoff::new(self.policy.backoff, Duration::MAX);
        let mut attempt = 0;
        loop {
            let err = match self.get_once(&url, params).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            let wait = match &err {
                LrclibError::RateLimited { retry_after, .. } if *retry_after > MAX_RETRY_AFTER => {
                    return Err(err)
                }
                LrclibError::RateLimited { retry_after, .. } => *retry_after,
                LrclibError::Timeout { .. } | LrclibError::Network { .. } => backoff.next_wait(),
                LrclibError::Status { status, .. } if *status >= 500 => backoff.next_wait(),
                _ => return Err(err),
            };
            if attempt >= self.policy.retries {
                return Err(err);
            }
            tracing::debug!(error = %err, ?wait, "LRCLIB request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get_once(
        &self,
        url: &str,
        params: &[(&str, String)],
    ) -> Result<Option<String>, LrclibError> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                LrclibError::Timeout {
                    url: url.to_string(),
                    timeout: self.policy.timeout,
                }
            } else {
                LrclibError::Network {
                    url: url.to_string(),
                    reason: error_chain(&e),
                }
            }
        };
        let resp = self
            .http
            .get(url)
            .query(params)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(5), Duration::from_secs);
        let body = resp.text().await.map_err(transport)?;
        match status {
            s if s.is_success() => Ok(Some(body)),
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::TOO_MANY_REQUESTS => Err(LrclibError::RateLimited {
                url: url.to_string(),
                retry_after,
            }),
            s => {
                let message = serde_json::from_str::<ErrorBody>(&body)
                    .ok()
                    .and_then(|b| match (b.name, b.message) {
                        (Some(n), Some(m)) => Some(format!("{n}: {m}")),
                        (n, m) => m.or(n),
                    })
                    .unwrap_or_else(|| snippet(&body));
                Err(LrclibError::Status {
                    url: url.to_string(),
                    status: s.as_u16(),
                    message,
                })
            }
        }
    }
}

/// The first 120 characters of a body, for an error message.
fn snippet(body: &str) -> String {
    let s: String = body.chars().take(120).collect();
    if s.is_empty() {
        "(empty body)".into()
    } else {
        s
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Picks the search result to use: the closest duration (when known), preferring synced
/// lyrics among equally close ones; a far-off duration keeps only the plain lyrics.
pub fn choose(records: Vec<LrclibRecord>, duration_s: f64) -> Option<LrclibRecord> {
    let has_lyrics =
        |r: &LrclibRecord| r.instrumental || r.synced_lyrics.is_some() || r.plain_lyrics.is_some();
    let distance = |r: &LrclibRecord| match (duration_s > 0.0, r.duration) {
        (true, Some(d)) => (d - duration_s).abs(),
        (true, None) => f64::MAX / 2.0,
        (false, _) => 0.0,
    };
    let mut best = records.into_iter().filter(has_lyrics).min_by(|a, b| {
        distance(a)
            .total_cmp(&distance(b))
            .then(b.synced_lyrics.is_some().cmp(&a.synced_lyrics.is_some()))
    })?;
    if duration_s > 0.0 && distance(&best) > SYNC_TOLERANCE_S {
        best.synced_lyrics = None;
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(duration: f64, synced: bool) -> LrclibRecord {
        LrclibRecord {
            id: Some(duration as i64),
            track_name: Some("t".into()),
            artist_name: Some("a".into()),
            album_name: None,
            duration: Some(duration),
            instrumental: false,
            plain_lyrics: Some("plain".into()),
            synced_lyrics: synced.then(|| "[00:01.00]x".into()),
        }
    }

    #[test]
    fn search_picks_the_closest_duration_then_synced() {
        let got = choose(
            vec![
                record(180.0, true),
                record(201.0, false),
                record(199.0, true),
            ],
            200.0,
        );
        assert_eq!(got.unwrap().id, Some(199));
        let got = choose(vec![record(201.0, false), record(199.0, true)], 200.0);
        assert_eq!(got.unwrap().id, Some(199), "synced wins a tie");
        let far = choose(vec![record(260.0, true)], 200.0).unwrap();
        assert_eq!(
            far.synced_lyrics, None,
            "another version's timings are not used"
        );
        assert_eq!(far.plain_lyrics.as_deref(), Some("plain"));
        assert_eq!(choose(vec![], 200.0), None);
    }

    #[test]
    fn user_agent_names_the_suite_version_and_homepage() {
        assert!(USER_AGENT.starts_with("vj-suite v0."));
        assert!(USER_AGENT.ends_with("(https://github.com/vj-suite/vj-suite)"));
    }

    #[test]
    fn a_bad_base_url_is_refused_with_its_name() {
        let policy = RetryPolicy {
            timeout: Duration::from_secs(1),
            retries: 0,
            backoff: Duration::from_millis(1),
        };
        let err = LrclibClient::new("lrclib.net", policy).unwrap_err();
        assert!(err.to_string().contains("\"lrclib.net\""));
    }
}
