//! `vj-spotify login`: the Authorization Code flow with PKCE (no client secret), redirected to
//! `http://127.0.0.1:<port>/callback` (Spotify forbids `localhost`), storing the refresh token 0600.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::config::SpotifyConfig;
use crate::service::credentials::{self, Secret};

use super::web_api::{token_request, ApiError, REFRESH_TOKEN};

/// What the worker needs to read the player.
pub const SCOPES: &str = "user-read-playback-state user-read-currently-playing";
/// The redirect port registered with the Spotify app by default.
pub const DEFAULT_PORT: u16 = 8888;
/// How long the browser has to come back.
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("spotify.client_id is empty: create an app at https://developer.spotify.com/dashboard, add the redirect URI http://127.0.0.1:{0}/callback and set spotify.client_id in vj.toml")]
    NoClientId(u16),
    #[error("cannot listen on 127.0.0.1:{port} for Spotify's redirect: {source} (choose another with --port, and register it in the Spotify app)")]
    Listen { port: u16, source: std::io::Error },
    #[error("Spotify's redirect did not come back within {0:?}; run `vj-spotify login` again")]
    Timeout(Duration),
    #[error("Spotify did not authorize vj-spotify: {0}")]
    Denied(String),
    #[error("the redirect carried a state that is not ours (a stale or forged request); run `vj-spotify login` again")]
    StateMismatch,
    #[error("exchanging the code failed: {0}")]
    Exchange(#[from] ApiError),
    #[error(
        "Spotify gave no refresh token; check the app's settings and run `vj-spotify login` again"
    )]
    NoRefreshToken,
    #[error("cannot save the refresh token: {0}")]
    Save(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A PKCE verifier (43..128 unreserved characters) and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    (verifier.clone(), challenge(&verifier))
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The URL the user opens.
pub fn authorize_url(
    accounts_url: &str,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
) -> Result<Url, LoginError> {
    let base = format!("{}/authorize", accounts_url.trim_end_matches('/'));
    Url::parse_with_params(
        &base,
        &[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("code_challenge_method", "S256"),
            ("code_challenge", challenge),
            ("scope", SCOPES),
            ("state", state),
        ],
    )
    .map_err(|e| LoginError::Io(std::io::Error::other(format!("spotify.accounts_url: {e}"))))
}

/// Runs the flow: prints the URL to `out`, waits for the redirect, stores the refresh token.
pub async fn login(
    c: &SpotifyConfig,
    port: u16,
    out: &mut (impl Write + Send),
) -> Result<PathBuf, LoginError> {
    let client_id = c.client_id.trim();
    if client_id.is_empty() {
        return Err(LoginError::NoClientId(port));
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| LoginError::Listen { port, source })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (verifier, challenge) = pkce_pair();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the OS random source works");
    let state = crate::service::files::hex_string(&nonce);
    let url = authorize_url(
        &c.accounts_url,
        client_id,
        &redirect_uri,
        &challenge,
        &state,
    )?;
    writeln!(
        out,
        "Open this URL in a browser and allow vj-spotify to read what you play:\n\n{url}\n\n\
         Waiting for Spotify to redirect to {redirect_uri} …"
    )?;
    out.flush()?;

    let code = tokio::time::timeout(WAIT, wait_for_code(&listener, &state))
        .await
        .map_err(|_| LoginError::Timeout(WAIT))??;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(c.timeout_ms))
        .build()
        .map_err(|e| LoginError::Io(std::io::Error::other(e.to_string())))?;
    let tokens = token_request(
        &http,
        &c.accounts_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", client_id),
            ("code_verifier", &verifier),
        ],
    )
    .await?;
    let refresh: Secret = tokens.refresh.ok_or(LoginError::NoRefreshToken)?;
    let path = credentials::save(REFRESH_TOKEN, &refresh).map_err(LoginError::Save)?;
    writeln!(
        out,
        "Logged in. The refresh token is saved in {} (mode 0600); vj-spotify reads it from there.\n\
         To hand it as a systemd credential instead, move it and add to a drop-in of vj-spotify.service:\n  \
         LoadCredential={REFRESH_TOKEN}:/path/to/the/file",
        path.display()
    )?;
    Ok(path)
}

/// Serves the redirect until a request to `/callback` carries our `state`.
async fn wait_for_code(listener: &TcpListener, state: &str) -> Result<String, LoginError> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let Some(target) = read_request_target(&mut stream).await else {
            continue;
        };
        let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else {
            respond(&mut stream, 400, "Bad request").await;
            continue;
        };
        if url.path() != "/callback" {
            respond(&mut stream, 404, "Not the Spotify callback").await;
            continue;
        }
        let q = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        if q("state").as_deref() != Some(state) {
            respond(
                &mut stream,
                400,
                "This login is stale: run vj-spotify login again.",
            )
            .await;
            return Err(LoginError::StateMismatch);
        }
        if let Some(e) = q("error") {
            respond(
                &mut stream,
                200,
                "vj-spotify was not authorized. You can close this tab.",
            )
            .await;
            return Err(LoginError::Denied(e));
        }
        let Some(code) = q("code").filter(|c| !c.is_empty()) else {
            respond(&mut stream, 400, "The redirect has no code.").await;
            continue;
        };
        respond(
            &mut stream,
            200,
            "vj-spotify is logged in. You can close this tab.",
        )
        .await;
        return Ok(code);
    }
}

/// The request target of an HTTP/1 request (`/callback?code=…`), read with a size limit.
async fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let line = std::str::from_utf8(&buf).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET").then(|| target.to_string())
}

async fn respond(stream: &mut TcpStream, status: u16, text: &str) {
    let body =
        format!("<!doctype html><meta charset=utf-8><title>vj-spotify</title><p>{text}</p>\n");
    let reason = if status == 200 { "OK" } else { "Error" };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (v, c) = pkce_pair();
        assert!((43..=128).contains(&v.len()));
        assert_eq!(c, challenge(&v));
    }

    #[test]
    fn the_authorize_url_names_loopback_and_s256() {
        let u = authorize_url(
            "https://accounts.spotify.com/",
            "cid",
            "http://127.0.0.1:8888/callback",
            "ch",
            "st",
        )
        .unwrap();
        let s = u.to_string();
        assert!(s.starts_with("https://accounts.spotify.com/authorize?"));
        assert!(
            s.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A8888%2Fcallback"),
            "{s}"
        );
        assert!(s.contains("code_challenge_method=S256") && s.contains("response_type=code"));
    }
}
