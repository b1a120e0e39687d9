//! Secrets (Spotify refresh token and client secret, an LLM API key): from systemd credentials
//! (`$CREDENTIALS_DIRECTORY/<name>`, `LoadCredential=`) or a 0600 file in the state dir.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A secret value. Its `Debug` and `Display` never show it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for the one place that must send it (an HTTP request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "credential file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot read credential file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a credential saved by the suite itself lives (e.g. by `vj-spotify login`).
pub fn state_path(name: &str) -> PathBuf {
    crate::config::state_dir().join("credentials").join(name)
}

/// Reads credential `name`: `$CREDENTIALS_DIRECTORY/<name>` first, else the state-dir file,
/// which must not be readable by group or others. `Ok(None)` when neither exists.
pub fn read(name: &str) -> Result<Option<Secret>, CredentialError> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return read_file(path, false);
        }
    }
    let path = state_path(name);
    if !path.exists() {
        return Ok(None);
    }
    read_file(path, true)
}

fn read_file(path: PathBuf, check_mode: bool) -> Result<Option<Secret>, CredentialError> {
    let meta = std::fs::metadata(&path).map_err(|source| CredentialError::Read {
        path: path.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if check_mode && mode & 0o077 != 0 {
        return Err(CredentialError::TooOpen { path, mode });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| CredentialError::Read {
        path: path.clone(),
        source,
    })?;
    let value = text.trim();
    Ok((!value.is_empty()).then(|| Secret::new(value)))
}

/// Saves a credential to the state dir with mode 0600 (atomically).
pub fn save(name: &str, secret: &Secret) -> std::io::Result<PathBuf> {
    let path = state_path(name);
    super::files::write_atomic(&path, secret.expose().as_bytes(), 0o600)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_loose_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "abc\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_file(path.clone(), true).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("abc"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_file(path, true).unwrap(), Some(Secret::new("abc")));
    }
}
