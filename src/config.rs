//! The suite's configuration: `etc/vj.toml` is the built-in default, a user file overrides it
//! key by key, and `set_config` overrides a worker's own section (kept in the state dir).
//!
//! Merging happens on TOML tables before deserializing, so an unknown key is reported with its
//! full dotted path (`osc_debugger.capasity`) and every default lives in one file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// The defaults, exactly `etc/vj.toml`.
pub const DEFAULT_TOML: &str = include_str!("../etc/vj.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config key `{0}` (etc/vj.toml lists every key)")]
    UnknownKey(String),
    #[error("config key `{key}` must be {expected}, not {got}")]
    WrongType {
        key: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bus: BusConfig,
    pub osc: OscConfig,
    pub audio: AudioConfig,
    pub spotify: SpotifyConfig,
    pub virtualdj: VirtualDjConfig,
    pub lyrics: LyricsConfig,
    pub osc_debugger: OscDebuggerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscConfig {
    pub targets: Vec<OscTarget>,
    #[serde(default)]
    pub routes: Vec<OscRoute>,
}

/// `"host:port"`, or `{ addr = "host:port", bundle = true }` for a receiver that wants bundles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OscTarget {
    Plain(String),
    Detailed {
        addr: String,
        #[serde(default)]
        bundle: bool,
    },
}

impl OscTarget {
    pub fn addr(&self) -> &str {
        match self {
            OscTarget::Plain(a) | OscTarget::Detailed { addr: a, .. } => a,
        }
    }
    pub fn bundle(&self) -> bool {
        matches!(self, OscTarget::Detailed { bundle: true, .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscRoute {
    pub prefix: String,
    pub targets: Vec<OscTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    pub source: String,
    pub device: String,
    /// Feature toggles: which `/audio/*` messages are computed and sent.
    pub spectrum: bool,
    pub bpm: bool,
    pub pitch: bool,
    pub structure: bool,
    pub bpm_min: f64,
    pub bpm_max: f64,
    /// Release smoothing of `/audio/levels`, 0..=0.99.
    pub smoothing: f64,
    /// The 8 edges in Hz of the 7 bands of `/audio/levels`.
    pub band_edges: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotifyConfig {
    pub source: String,
    pub client_id: String,
    pub api_url: String,
    pub accounts_url: String,
    pub poll_interval_ms: u64,
    pub timeout_ms: u64,
    pub mpris_player: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualDjConfig {
    pub path: String,
    pub lead_s: f64,
    pub poll_interval_ms: u64,
}

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscDebuggerConfig {
    pub listen: String,
    pub capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_table(defaults(), "built-in defaults")
            .expect("etc/vj.toml is a valid config (tested)")
    }
}

/// The defaults as a TOML table.
pub fn defaults() -> Table {
    DEFAULT_TOML
        .parse()
        .expect("etc/vj.toml is valid TOML (tested)")
}

/// Lays `over` onto `base`. A key `base` does not have is an error naming its dotted path;
/// tables merge key by key, anything else (values, arrays) is replaced whole.
pub fn merge(base: &mut Table, over: Table, path: &str) -> Result<(), ConfigError> {
    for (key, value) in over {
        let dotted = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match (base.get_mut(&key), value) {
            (None, _) => return Err(ConfigError::UnknownKey(dotted)),
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o, &dotted)?,
            // An integer where the default is a float is fine (`offset = 1`).
            (Some(slot @ Value::Float(_)), Value::Integer(i)) => *slot = Value::Float(i as f64),
            (Some(slot), v) if slot.same_type(&v) => *slot = v,
            (Some(slot), v) => {
                return Err(ConfigError::WrongType {
                    key: dotted,
                    expected: slot.type_str(),
                    got: v.type_str(),
                })
            }
        }
    }
    Ok(())
}

impl Config {
    /// Deserializes a full table (defaults already merged in) and checks ranges.
    pub fn from_table(table: Table, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                origin: origin.to_string(),
                message: e.message().to_string(),
            })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.osc_debugger.capacity) {
            return Err(format!(
                "osc_debugger.capacity must be 1..=1000000, not {}",
                self.osc_debugger.capacity
            ));
        }
        if self.spotify.poll_interval_ms < 200 {
            return Err(format!(
                "spotify.poll_interval_ms must be at least 200, not {}",
                self.spotify.poll_interval_ms
            ));
        }
        let a = &self.audio;
        let source_ok = matches!(a.source.as_str(), "auto" | "device" | "demo")
            || a.source
                .strip_prefix("file:")
                .is_some_and(|p| !p.is_empty());
        if !source_ok {
            return Err(format!(
                "audio.source must be auto, device, demo or file:PATH, not {:?}",
                a.source
            ));
        }
        if !(30.0..=300.0).contains(&a.bpm_min)
            || !(30.0..=300.0).contains(&a.bpm_max)
            || a.bpm_max < a.bpm_min * 1.5
        {
            return Err(format!(
                "audio.bpm_min/bpm_max must lie in 30..=300 with bpm_max ≥ 1.5 × bpm_min, not {}/{}",
                a.bpm_min, a.bpm_max
            ));
        }
        if !(0.0..=0.99).contains(&a.smoothing) {
            return Err(format!(
                "audio.smoothing must be 0..=0.99, not {}",
                a.smoothing
            ));
        }
        if a.band_edges.len() != 8
            || a.band_edges.windows(2).any(|w| w[0] >= w[1])
            || a.band_edges[0] <= 0.0
        {
            return Err(format!(
                "audio.band_edges must be 8 ascending frequencies in Hz, not {:?}",
                a.band_edges
            ));
        }
        if self.spotify.timeout_ms == 0
            || !matches!(
                self.spotify.source.as_str(),
                "auto" | "web_api" | "mpris" | "applescript"
            )
        {
            return Err(format!(
                "spotify.timeout_ms must be above 0 and spotify.source one of auto, web_api, mpris, applescript (not {:?})",
                self.spotify.source
            ));
        }
        if !(0.0..=600.0).contains(&self.virtualdj.lead_s) || self.virtualdj.poll_interval_ms < 100
        {
            return Err(format!(
                "virtualdj.lead_s must be 0..=600 (not {}) and virtualdj.poll_interval_ms at least 100 (not {})",
                self.virtualdj.lead_s, self.virtualdj.poll_interval_ms
            ));
        }
        if self.lyrics.timeout_ms == 0 || self.lyrics.llm.timeout_ms == 0 {
            return Err("lyrics.timeout_ms and lyrics.llm.timeout_ms must be above 0".into());
        }
        for r in &self.osc.routes {
            if !r.prefix.starts_with('/') {
                return Err(format!(
                    "osc.routes prefix {:?} must start with '/'",
                    r.prefix
                ));
            }
        }
        Ok(())
    }

    /// The config a worker runs with: defaults, then the first config file found, then the
    /// worker's persisted `set_config` overrides (`overrides` is a table of its section).
    pub fn load(section: &str, overrides: Option<Table>) -> Result<Loaded, ConfigError> {
        let mut table = defaults();
        let file = config_file();
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let user: Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            merge(&mut table, user, "")?;
        }
        let origin = file
            .as_ref()
            .map_or("built-in defaults".to_string(), |p| p.display().to_string());
        let base = Config::from_table(table.clone(), &origin)?;
        let Some(overrides) = overrides else {
            return Ok(Loaded {
                config: base,
                table,
                file,
                overrides_rejected: None,
            });
        };
        // Persisted overrides that no longer fit (a key removed in a newer version) must not
        // keep the worker from starting: run without them and say why.
        let mut with = table.clone();
        let applied = merge_section(&mut with, section, overrides)
            .and_then(|()| Config::from_table(with.clone(), "saved set_config"));
        Ok(match applied {
            Ok(config) => Loaded {
                config,
                table: with,
                file,
                overrides_rejected: None,
            },
            Err(e) => Loaded {
                config: base,
                table,
                file,
                overrides_rejected: Some(e),
            },
        })
    }

    /// One section as JSON, for `get_state`.
    pub fn section_json(&self, section: &str) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut(section).map(serde_json::Value::take))
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Lays `over` onto the `section` table of `table`, naming keys as `section.key`.
pub fn merge_section(table: &mut Table, section: &str, over: Table) -> Result<(), ConfigError> {
    match table.get_mut(section) {
        Some(Value::Table(t)) => merge(t, over, section),
        _ => Err(ConfigError::UnknownKey(section.to_string())),
    }
}

/// A loaded config and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The merged table `config` was made from; `set_config` merges into it.
    pub table: Table,
    pub file: Option<PathBuf>,
    /// Saved `set_config` overrides that could not be applied.
    pub overrides_rejected: Option<ConfigError>,
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// `$VJ_CONFIG`, else `$XDG_CONFIG_HOME/vj/vj.toml`, else `/etc/vj/vj.toml`, whichever exists
/// first (`$VJ_CONFIG` is taken even if missing, so a typo there is an error, not a surprise).
pub fn config_file() -> Option<PathBuf> {
    if let Some(p) = env_path("VJ_CONFIG") {
        return Some(p);
    }
    let user = env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("vj/vj.toml");
    [user, PathBuf::from("/etc/vj/vj.toml")]
        .into_iter()
        .find(|p| p.exists())
}

/// `$XDG_STATE_HOME/vj` (default `~/.local/state/vj`).
pub fn state_dir() -> PathBuf {
    env_path("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local/state"))
        .join("vj")
}

/// `$XDG_CACHE_HOME/vj` (default `~/.cache/vj`).
pub fn cache_dir() -> PathBuf {
    env_path("XDG_CACHE_HOME")
        .unwrap_or_else(|| home().join(".cache"))
        .join("vj")
}

/// Where control sockets live: `$VJ_BUS_DIR`, else `bus.dir`, else `$XDG_RUNTIME_DIR/vj-bus`
/// (macOS: `$TMPDIR/vj-bus`).
pub fn bus_dir(config: &Config) -> PathBuf {
    if let Some(p) = env_path("VJ_BUS_DIR") {
        return p;
    }
    if !config.bus.dir.is_empty() {
        return PathBuf::from(&config.bus.dir);
    }
    let runtime = if cfg!(target_os = "macos") {
        env_path("TMPDIR")
    } else {
        env_path("XDG_RUNTIME_DIR")
    };
    runtime.unwrap_or_else(std::env::temp_dir).join("vj-bus")
}

/// The control socket of a worker.
pub fn socket_path(bus_dir: &Path, bus_name: &str) -> PathBuf {
    bus_dir.join(format!("{bus_name}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_exactly_etc_vj_toml() {
        let c = Config::default();
        assert_eq!(c.osc_debugger.capacity, 1000);
        assert_eq!(c.osc.targets.len(), 2);
        assert_eq!(c.osc.targets[1].addr(), "127.0.0.1:9001");
        assert_eq!(c.osc.routes[0].prefix, "/karaoke/");
        assert_eq!(c.lyrics.listen, "127.0.0.1:9002");
        assert_eq!(c.spotify.poll_interval_ms, 2000);
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path() {
        let mut t = defaults();
        let over: Table = "[osc_debugger]\ncapasity = 5".parse().unwrap();
        let err = merge(&mut t, over, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown config key `osc_debugger.capasity` (etc/vj.toml lists every key)"
        );
        let over: Table = "[lyrics.llm]\nurll = 'x'".parse().unwrap();
        assert!(merge(&mut t, over, "")
            .unwrap_err()
            .to_string()
            .contains("`lyrics.llm.urll`"));
    }

    #[test]
    fn an_unknown_key_in_a_route_is_named() {
        let mut t = defaults();
        let over: Table = "[[osc.routes]]\nprefix = '/a/'\ntargetz = []"
            .parse()
            .unwrap();
        merge(&mut t, over, "").unwrap();
        let err = Config::from_table(t, "test").unwrap_err().to_string();
        assert!(err.contains("targetz"), "{err}");
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let mut t = defaults();
        let over: Table = "[osc]\ntargets = [{ addr = '127.0.0.1:7000', bundle = true }]"
            .parse()
            .unwrap();
        merge(&mut t, over, "").unwrap();
        let c = Config::from_table(t, "test").unwrap();
        assert!(c.osc.targets[0].bundle());
        assert_eq!(c.osc.routes.len(), 1, "routes keep their default");
        assert_eq!(c.osc_debugger.capacity, 1000);
    }

    #[test]
    fn a_wrong_type_or_range_says_which_key() {
        let mut t = defaults();
        merge_section(&mut t, "osc_debugger", "capacity = 0".parse().unwrap()).unwrap();
        let err = Config::from_table(t, "set_config").unwrap_err().to_string();
        assert!(err.contains("osc_debugger.capacity"), "{err}");

        let mut t = defaults();
        let err = merge_section(&mut t, "osc_debugger", "capacity = 'lots'".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config key `osc_debugger.capacity` must be integer, not string"
        );
    }
}
