//! What control over OSC may run: `[control.osc] commands` (a command name for every worker,
//! or `<bus name>/<command>` for one), and for `set_config` never a key that names a URL, a
//! path or a credential, nor a value that is one. A UDP sender is only as trustworthy as its
//! network: a URL or path set over OSC would be persisted, and a worker would then send its
//! refresh token or API key there, or read a file of the sender's choosing.

use serde_json::{Map, Value};

use crate::bus::command::POSITIONAL;

/// Words that make a config key unsafe to set over OSC, matched against each part of the key
/// split at `.`, `_` and `-` (`accounts_url` → `accounts`, `url`), case-insensitively.
/// `allow`, `allowed`, `hosts`, `origins`, `commands`: what widens who may reach the suite.
pub const FORBIDDEN_KEY_WORDS: &[&str] = &[
    "url",
    "urls",
    "uri",
    "endpoint",
    "path",
    "paths",
    "dir",
    "directory",
    "file",
    "files",
    "key",
    "secret",
    "token",
    "password",
    "credential",
    "credentials",
    "listen",
    "host",
    "hosts",
    "origin",
    "origins",
    "allow",
    "allowed",
    "commands",
    "addr",
    "address",
    "client",
];

/// Why a command is refused; the text after `not allowed: ` in the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{cmd} is not in [control.osc] commands")]
    NotListed { cmd: String },
    #[error("set_config of {key:?} over OSC: it names a URL, path or credential (use vj-status on the machine)")]
    Key { key: String },
    #[error("set_config of {key:?} over OSC: its value is a URL or a path (use vj-status on the machine)")]
    Value { key: String },
    #[error("set_config over OSC takes key value pairs")]
    Positional,
}

/// Does `key` (`accounts_url`, `llm.url`) name a URL, path or credential?
pub fn forbidden_key(key: &str) -> bool {
    key.split(['.', '_', '-']).any(|w| {
        FORBIDDEN_KEY_WORDS
            .iter()
            .any(|f| w.eq_ignore_ascii_case(f))
    })
}

/// Is `v` a URL or a path (`http://…`, `/etc/…`, `~/…`, `file:…`, `..\x`)?
fn path_like(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let s = s.trim();
    s.contains("://")
        || s.starts_with(['/', '~', '.', '\\'])
        || s.contains(['/', '\\'])
        || s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:"))
}

/// May `cmd` for worker `bus` with `args` run over OSC under the allow-list `commands`?
pub fn check(
    commands: &[String],
    bus: &str,
    cmd: &str,
    args: &Map<String, Value>,
) -> Result<(), Refusal> {
    let listed = commands
        .iter()
        .any(|c| c == cmd || c.split_once('/') == Some((bus, cmd)));
    if !listed {
        return Err(Refusal::NotListed {
            cmd: cmd.to_string(),
        });
    }
    if cmd != "set_config" {
        return Ok(());
    }
    for (key, value) in args {
        if key == POSITIONAL {
            return Err(Refusal::Positional);
        }
        if forbidden_key(key) {
            return Err(Refusal::Key { key: key.clone() });
        }
        if path_like(value) {
            return Err(Refusal::Value { key: key.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Vec<String> {
        crate::config::builtin::<super::super::ControlConfig>("control")
            .osc
            .commands
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_default_list_is_the_performance_commands() {
        let d = defaults();
        let none = Map::new();
        for cmd in [
            "tap",
            "tempo_double",
            "tempo_half",
            "nudge",
            "resync",
            "set_tempo",
        ] {
            assert_eq!(check(&d, "audio_analyzer", cmd, &none), Ok(()), "{cmd}");
        }
        for cmd in ["get_state", "health"] {
            assert_eq!(check(&d, "lyrics_fetcher", cmd, &none), Ok(()), "{cmd}");
        }
        for cmd in [
            "set_config",
            "restart",
            "fetch_lyrics",
            "clear",
            "list_devices",
        ] {
            assert_eq!(
                check(&d, "audio_analyzer", cmd, &none),
                Err(Refusal::NotListed { cmd: cmd.into() }),
                "{cmd}"
            );
        }
        let e = check(&d, "oscquery_server", "restart", &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "restart is not in [control.osc] commands",
            "the reply names the command and where to list it"
        );
    }

    #[test]
    fn a_command_may_be_listed_for_one_worker() {
        let only = vec!["lyrics_fetcher/set_config".to_string()];
        let a = args(json!({"offset_ms": 200}));
        assert_eq!(check(&only, "lyrics_fetcher", "set_config", &a), Ok(()));
        assert!(check(&only, "audio_analyzer", "set_config", &a).is_err());
    }

    /// Every key of the built-in config, sorted into what OSC may and may not set: a key added
    /// later lands on one side by its name, and this list says which on purpose.
    #[test]
    fn set_config_never_takes_a_url_path_or_credential_key() {
        let listed = vec!["set_config".to_string()];
        let mut refused = Vec::new();
        let mut allowed = Vec::new();
        fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (k, v) in t {
                let dotted = format!("{prefix}{k}");
                match v {
                    toml::Value::Table(inner) => walk(inner, &format!("{dotted}."), out),
                    _ => out.push(dotted),
                }
            }
        }
        let mut keys = Vec::new();
        walk(&crate::config::defaults(), "", &mut keys);
        for dotted in keys {
            // set_config names keys inside the worker's section: `lyrics.llm.url` → `llm.url`.
            let key = dotted.split_once('.').map_or(dotted.as_str(), |(_, k)| k);
            let a = args(json!({ key: 1 }));
            match check(&listed, "any", "set_config", &a) {
                Ok(()) => allowed.push(dotted),
                Err(_) => refused.push(dotted),
            }
        }
        for must in [
            "spotify.api_url",
            "spotify.accounts_url",
            "spotify.client_id",
            "virtualdj.path",
            "lyrics.listen",
            "lyrics.lrclib_url",
            "lyrics.llm.url",
            "osc_debugger.listen",
            "oscquery.listen",
            "oscquery.osc_listen",
            "oscquery.allowed_hosts",
            "oscquery.allowed_origins",
            "control.osc.allow",
            "control.osc.commands",
            "bus.dir",
            "control.osc.listen",
        ] {
            assert!(refused.contains(&must.to_string()), "{must}: {allowed:?}");
        }
        for may in [
            "audio.latency_ms",
            "audio.beats_per_bar",
            "audio.link.mode",
            "lyrics.offset_ms",
            "audio.smoothing",
        ] {
            assert!(allowed.contains(&may.to_string()), "{may}: {refused:?}");
        }
        assert_eq!(
            check(
                &listed,
                "spotify_monitor",
                "set_config",
                &args(json!({"ACCOUNTS_URL": "x"}))
            ),
            Err(Refusal::Key {
                key: "ACCOUNTS_URL".into()
            })
        );
    }

    #[test]
    fn set_config_never_takes_a_url_or_path_value() {
        let listed = vec!["set_config".to_string()];
        for v in [
            "http://127.0.0.1:1/steal",
            "file:/etc/passwd",
            "FILE:x.wav",
            "/etc/passwd",
            "~/.ssh/id_rsa",
            "../x",
            "a/b",
        ] {
            assert_eq!(
                check(
                    &listed,
                    "audio_analyzer",
                    "set_config",
                    &args(json!({"source": v}))
                ),
                Err(Refusal::Value {
                    key: "source".into()
                }),
                "{v}"
            );
        }
        for v in [
            json!("demo"),
            json!(120),
            json!(true),
            json!("BlackHole 2ch"),
        ] {
            assert_eq!(
                check(
                    &listed,
                    "audio_analyzer",
                    "set_config",
                    &args(json!({"source": v}))
                ),
                Ok(())
            );
        }
        assert_eq!(
            check(
                &listed,
                "audio_analyzer",
                "set_config",
                &args(json!({ POSITIONAL: ["latency_ms", 20] }))
            ),
            Err(Refusal::Positional)
        );
    }
}
