//! The suite's configuration: `etc/vj.toml` is the built-in default, a user file overrides it
//! key by key, and `set_config` overrides a worker's own section (kept in the state dir).
//!
//! Merging happens on TOML tables before deserializing, so an unknown key is reported with its
//! full dotted path (`osc_debugger.capasity`) and every default lives in one file. Each worker's
//! section is its own type ([`Section`]), declared and validated in the worker's module; this
//! module holds only what every worker reads (`[bus]`, `[osc]`) and the loading.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
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

/// A config section: a typed table of `vj.toml`, checked beyond its types by `validate`.
pub trait Section:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Ranges and relations the types cannot say; the message names the key.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A worker without settings of its own: its section is absent (or empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Section for NoSettings {}

/// `[bus]`: where the control sockets live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub dir: String,
}

impl Section for BusConfig {}

/// `[osc]`: where every worker sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscConfig {
    pub targets: Vec<OscTarget>,
    #[serde(default)]
    pub routes: Vec<OscRoute>,
}

impl Section for OscConfig {
    fn validate(&self) -> Result<(), String> {
        let all = self.routes.iter().flat_map(|r| r.targets.iter());
        for t in self.targets.iter().chain(all) {
            t.validate()?;
        }
        for r in &self.routes {
            if !r.prefix.starts_with('/') {
                return Err(format!(
                    "osc.routes prefix {:?} must start with '/'",
                    r.prefix
                ));
            }
        }
        Ok(())
    }
}

/// `"host:port"`, or `{ addr = "host:port", bundle = true }` for a receiver that wants bundles.
/// The host may be a name (resolved in the background and again every minute) or a multicast
/// group (`239.1.2.3:9000`), which takes `ttl` (hops, default 1: the local network) and
/// `interface` (the address or, on Linux, the name of the interface to send from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OscTarget {
    Plain(String),
    Detailed {
        addr: String,
        #[serde(default)]
        bundle: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interface: Option<String>,
    },
}

impl OscTarget {
    /// A plain `host:port` target.
    pub fn plain(addr: impl Into<String>) -> Self {
        OscTarget::Plain(addr.into())
    }

    /// A `host:port` target that gets one bundle per analysis frame.
    pub fn bundled(addr: impl Into<String>) -> Self {
        OscTarget::Detailed {
            addr: addr.into(),
            bundle: true,
            ttl: None,
            interface: None,
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            OscTarget::Plain(a) | OscTarget::Detailed { addr: a, .. } => a,
        }
    }
    pub fn bundle(&self) -> bool {
        matches!(self, OscTarget::Detailed { bundle: true, .. })
    }
    /// Multicast hops, if set.
    pub fn ttl(&self) -> Option<u32> {
        match self {
            OscTarget::Detailed { ttl, .. } => *ttl,
            OscTarget::Plain(_) => None,
        }
    }
    /// The interface multicast leaves by, if set.
    pub fn interface(&self) -> Option<&str> {
        match self {
            OscTarget::Detailed { interface, .. } => interface.as_deref(),
            OscTarget::Plain(_) => None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let addr = self.addr();
        if host_port(addr).is_none() {
            return Err(format!(
                "osc target {addr:?} is not host:port (a port is 0..=65535; IPv6 in brackets)"
            ));
        }
        if let Some(ttl) = self.ttl() {
            if !(1..=255).contains(&ttl) {
                return Err(format!(
                    "osc target {addr:?}: ttl must be 1..=255, not {ttl}"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscRoute {
    pub prefix: String,
    pub targets: Vec<OscTarget>,
}

/// Checks that `key`'s value is an http(s) base URL.
pub fn check_http_url(key: &str, value: &str) -> Result<(), String> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        _ => Err(format!(
            "{key} must be an http:// or https:// URL, not {value:?}"
        )),
    }
}

/// The sections every worker reads besides its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub bus: BusConfig,
    pub osc: OscConfig,
}

/// The defaults as a TOML table.
pub fn defaults() -> Table {
    DEFAULT_TOML
        .parse()
        .expect("etc/vj.toml is valid TOML (tested)")
}

/// Section `name` of the built-in defaults (`AudioConfig::default()` is `builtin("audio")`).
pub fn builtin<S: Section>(name: &str) -> S {
    section(&defaults(), name, "built-in defaults").expect("etc/vj.toml is a valid config (tested)")
}

/// `host:port` split at its last colon, the host without IPv6 brackets (`[::1]:9000`); `None`
/// when either part is missing, an IPv6 host is not in brackets, or the port is not a number up
/// to 65535.
pub fn host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6,
        // An IPv6 address without brackets is ambiguous (`::1` is not `:` port 1).
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// Lays `over` onto `base`. A key `base` does not have is an error naming its dotted path;
/// tables merge key by key, anything else (values, arrays) is replaced whole.
pub fn merge(base: &mut Table, over: Table, path: &str) -> Result<(), ConfigError> {
    lay(base, over, path, true)
}

/// Lays `over` onto `base` as [`merge`] does, but without checking keys or types: a key `base`
/// lacks is added (a worker's saved `set_config` keys, each checked when it was set).
pub fn overlay(base: &mut Table, over: Table) {
    let unchecked = lay(base, over, "", false);
    debug_assert!(unchecked.is_ok());
}

fn lay(base: &mut Table, over: Table, path: &str, checked: bool) -> Result<(), ConfigError> {
    for (key, value) in over {
        let dotted = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => lay(b, o, &dotted, checked)?,
            (_, v) if !checked => {
                base.insert(key, v);
            }
            (None, _) => return Err(ConfigError::UnknownKey(dotted)),
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

/// Lays `over` onto the `section` table of `table`, naming keys as `section.key`. A section the
/// table lacks is a worker without settings: every key of it is unknown.
pub fn merge_section(table: &mut Table, section: &str, over: Table) -> Result<(), ConfigError> {
    match table.get_mut(section) {
        Some(Value::Table(t)) => merge(t, over, section),
        Some(_) => Err(ConfigError::UnknownKey(section.to_string())),
        None => merge(&mut Table::new(), over, section),
    }
}

/// What `set_config` asks of section `section`: its arguments, as TOML, laid onto a copy of
/// `table` and the result read by `read` (the section's check). Gives the new table, the
/// arguments as TOML (what is saved) and what `read` made of it; or the error the client gets.
pub fn set_config<T>(
    table: &Table,
    section: &str,
    args: serde_json::Map<String, serde_json::Value>,
    read: impl FnOnce(&Table) -> Result<T, ConfigError>,
) -> Result<(Table, Table, T), String> {
    if args.is_empty() {
        return Err(format!("set_config needs at least one key of [{section}]"));
    }
    let over =
        Table::try_from(serde_json::Value::Object(args)).map_err(|e| format!("set_config: {e}"))?;
    let mut table = table.clone();
    merge_section(&mut table, section, over.clone()).map_err(|e| e.to_string())?;
    let read = read(&table).map_err(|e| e.to_string())?;
    Ok((table, over, read))
}

/// Deserializes and validates section `name` of a merged table. Errors name the key
/// (`spotify.source`) and where the table came from.
pub fn section<S: Section>(table: &Table, name: &str, origin: &str) -> Result<S, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_string(),
        message,
    };
    let value = table
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Table(Table::new()));
    let parsed: S = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_string();
        invalid(if path == "." {
            format!("[{name}]: {message}")
        } else {
            format!("`{name}.{path}`: {message}")
        })
    })?;
    parsed.validate().map_err(invalid)?;
    Ok(parsed)
}

/// A worker's own section as the registry describes it to config, which names no worker: the
/// section, the binary that fails on it, and how to check it.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub section: &'static str,
    pub binary: &'static str,
    /// `(table, section, origin)`: whether `table`'s `section` is a valid one.
    pub check: fn(&Table, &str, &str) -> Result<(), ConfigError>,
}

/// The `check` of a worker whose section is `S`.
pub fn check<S: Section>(table: &Table, name: &str, origin: &str) -> Result<(), ConfigError> {
    section::<S>(table, name, origin).map(drop)
}

/// Checks every section the suite knows (the common ones and each worker's), all alike: a
/// mistake anywhere fails. A worker starts with [`check_for`], which fails only on its own.
pub fn check_all(table: &Table, origin: &str, owners: &[Owner]) -> Result<Common, ConfigError> {
    let common = Common {
        bus: section(table, "bus", origin)?,
        osc: section(table, "osc", origin)?,
    };
    for w in owners {
        (w.check)(table, w.section, origin)?;
    }
    Ok(common)
}

/// Checks the sections `own` depends on strictly — the shared ones (`[bus]`, `[osc]`, …) and
/// its own — and every other worker's section as a warning: a mistake in `[lyrics]` stops
/// vj-lyrics, not vj-audio. Gives the shared sections, the table with each faulty section of
/// another worker back at its defaults, and the faults found there (each names its key).
pub fn check_for(
    table: &Table,
    own: &str,
    origin: &str,
    owners: &[Owner],
) -> Result<(Common, Table, Vec<Elsewhere>), ConfigError> {
    let mut table = table.clone();
    let mut elsewhere = Vec::new();
    let defaults = defaults();
    for w in owners {
        if w.section == own {
            continue;
        }
        if let Err(error) = (w.check)(&table, w.section, origin) {
            elsewhere.push(Elsewhere {
                section: w.section.to_string(),
                binary: w.binary,
                error,
            });
            if let Some(d) = defaults.get(w.section) {
                table.insert(w.section.to_string(), d.clone());
            }
        }
    }
    let common = check_all(&table, origin, owners)?;
    Ok((common, table, elsewhere))
}

/// A mistake in a section another worker reads: the section, that worker's binary, and the
/// error naming the key.
#[derive(Debug)]
pub struct Elsewhere {
    pub section: String,
    pub binary: &'static str,
    pub error: ConfigError,
}

impl std::fmt::Display for Elsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] is wrong, so {} will not start until it is fixed: {}",
            self.section, self.binary, self.error
        )
    }
}

/// The worker whose own section is `section` (none for `[bus]`, `[osc]`, or a name no worker
/// has — every worker reads those, or may have meant them).
fn owner_of<'a>(section: &str, owners: &'a [Owner]) -> Option<&'a Owner> {
    owners.iter().find(|w| w.section == section)
}

/// The config a worker runs with, and where it came from.
#[derive(Debug)]
pub struct Loaded<S> {
    pub common: Common,
    /// The worker's own section.
    pub section: S,
    /// The merged table the config was made from; `set_config` merges into it.
    pub table: Table,
    pub file: Option<PathBuf>,
    /// Saved `set_config` overrides that could not be applied.
    pub overrides_rejected: Option<ConfigError>,
    /// Mistakes in other workers' sections: theirs to fail on, this one's to warn about once.
    pub elsewhere: Vec<Elsewhere>,
}

/// The defaults with the first config file found merged in, section by section.
struct Read {
    table: Table,
    file: Option<PathBuf>,
    /// The file, or "built-in defaults", for errors.
    origin: String,
    /// The sections of the file that did not merge (an unknown key, a wrong type), left at
    /// their defaults, with their errors: whose they are is the caller's to decide.
    unmerged: Vec<(String, ConfigError)>,
}

fn read_table() -> Result<Read, ConfigError> {
    let mut table = defaults();
    let mut unmerged = Vec::new();
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
        unmerged = merge_sections(&mut table, user);
    }
    let origin = file
        .as_ref()
        .map_or("built-in defaults".to_string(), |p| p.display().to_string());
    Ok(Read {
        table,
        file,
        origin,
        unmerged,
    })
}

/// Lays `user` onto `table` a top-level section at a time: a section that does not merge is
/// left as it was, and comes back with its error.
pub(crate) fn merge_sections(table: &mut Table, user: Table) -> Vec<(String, ConfigError)> {
    let mut unmerged = Vec::new();
    for (name, value) in user {
        let mut one = Table::new();
        if let Some(d) = table.get(&name) {
            one.insert(name.clone(), d.clone());
        }
        match merge(&mut one, Table::from_iter([(name.clone(), value)]), "") {
            Ok(()) => table.extend(one),
            Err(e) => unmerged.push((name, e)),
        }
    }
    unmerged
}

/// Worker `name`'s view of a merged table: the shared sections, its own, the table it runs
/// with, and the mistakes that are other workers'. Fails on a mistake in its own section or a
/// shared one (including a section no worker has: a typo of any of them).
pub(crate) fn view<S: Section>(
    table: &Table,
    unmerged: Vec<(String, ConfigError)>,
    name: &str,
    origin: &str,
    owners: &[Owner],
) -> Result<(Common, S, Table, Vec<Elsewhere>), ConfigError> {
    let mut elsewhere = Vec::new();
    for (section, error) in unmerged {
        match owner_of(&section, owners) {
            Some(w) if section != name => elsewhere.push(Elsewhere {
                section,
                binary: w.binary,
                error,
            }),
            _ => return Err(error),
        }
    }
    let (common, table, others) = check_for(table, name, origin, owners)?;
    elsewhere.extend(others);
    let own: S = section(&table, name, origin)?;
    Ok((common, own, table, elsewhere))
}

/// The whole config as tools see it (defaults, then the first config file found): the merged
/// table and the sections every worker shares. A mistake in a shared section fails; one in a
/// worker's own section is that worker's to fail on, and its section reads as the defaults.
pub fn suite(owners: &[Owner]) -> Result<(Table, Common), ConfigError> {
    let Read {
        table,
        origin,
        unmerged,
        ..
    } = read_table()?;
    if let Some((_, error)) = unmerged
        .into_iter()
        .find(|(s, _)| owner_of(s, owners).is_none())
    {
        return Err(error);
    }
    let (common, table, _) = check_for(&table, "", &origin, owners)?;
    Ok((table, common))
}

/// The config a worker runs with: defaults, then the first config file found, then the
/// worker's persisted `set_config` overrides (`overrides` is a table of its section `name`).
/// It fails on a mistake in its own section or a shared one; a mistake in another worker's
/// section is that worker's to fail on, and comes back in [`Loaded::elsewhere`].
pub fn load<S: Section>(
    name: &str,
    overrides: Option<Table>,
    owners: &[Owner],
) -> Result<Loaded<S>, ConfigError> {
    let Read {
        table,
        file,
        origin,
        unmerged,
    } = read_table()?;
    let (common, base, table, elsewhere) = view::<S>(&table, unmerged, name, &origin, owners)?;
    let Some(overrides) = overrides else {
        return Ok(Loaded {
            common,
            section: base,
            table,
            file,
            overrides_rejected: None,
            elsewhere,
        });
    };
    // Persisted overrides that no longer fit (a key removed in a newer version) must not
    // keep the worker from starting: run without them and say why.
    let mut with = table.clone();
    let applied = merge_section(&mut with, name, overrides)
        .and_then(|()| section::<S>(&with, name, "saved set_config"));
    Ok(match applied {
        Ok(section) => Loaded {
            common,
            section,
            table: with,
            file,
            overrides_rejected: None,
            elsewhere,
        },
        Err(e) => Loaded {
            common,
            section: base,
            table,
            file,
            overrides_rejected: Some(e),
            elsewhere,
        },
    })
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
pub fn bus_dir(bus: &BusConfig) -> PathBuf {
    if let Some(p) = env_path("VJ_BUS_DIR") {
        return p;
    }
    if !bus.dir.is_empty() {
        return PathBuf::from(&bus.dir);
    }
    let runtime = if cfg!(target_os = "macos") {
        env_path("TMPDIR")
    } else {
        env_path("XDG_RUNTIME_DIR")
    };
    runtime.unwrap_or_else(std::env::temp_dir).join("vj-bus")
}

/// The bus dir as the user's config says it, for tools (`vj-status`): a broken config must not
/// stop them looking, so it falls back to the default.
pub fn configured_bus_dir() -> PathBuf {
    let bus = read_table()
        .ok()
        .and_then(|r| section::<BusConfig>(&r.table, "bus", &r.origin).ok())
        .unwrap_or_else(|| builtin("bus"));
    bus_dir(&bus)
}

/// The control socket of a worker.
pub fn socket_path(bus_dir: &Path, bus_name: &str) -> PathBuf {
    bus_dir.join(format!("{bus_name}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(text: &str) -> Table {
        let mut t = defaults();
        merge(&mut t, text.parse().unwrap(), "").unwrap();
        t
    }

    #[test]
    fn the_defaults_are_exactly_etc_vj_toml() {
        let common = check_all(&defaults(), "built-in defaults", &[]).unwrap();
        assert_eq!(common.osc.targets.len(), 3);
        assert_eq!(common.osc.targets[1].addr(), "127.0.0.1:9001");
        assert_eq!(common.osc.routes[0].prefix, "/karaoke/");
        assert_eq!(builtin::<BusConfig>("bus").dir, "");
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
        let t = merged("[[osc.routes]]\nprefix = '/a/'\ntargetz = []");
        let err = check_all(&t, "test", &[]).unwrap_err().to_string();
        assert!(err.contains("targetz"), "{err}");
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let t = merged("[osc]\ntargets = [{ addr = '127.0.0.1:7000', bundle = true }]");
        let c = check_all(&t, "test", &[]).unwrap();
        assert!(c.osc.targets[0].bundle());
        assert_eq!(c.osc.routes.len(), 1, "routes keep their default");
    }

    #[test]
    fn a_wrong_type_says_which_key() {
        let mut t = defaults();
        let err = merge_section(&mut t, "osc_debugger", "capacity = 'lots'".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config key `osc_debugger.capacity` must be integer, not string"
        );
    }

    #[test]
    fn a_section_the_defaults_lack_has_no_keys() {
        let mut t = defaults();
        let err = merge_section(&mut t, "echo", "greeting = 'hi'".parse().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown config key `echo.greeting` (etc/vj.toml lists every key)"
        );
        assert_eq!(
            section::<NoSettings>(&t, "echo", "test").unwrap(),
            NoSettings {}
        );
    }

    #[test]
    fn host_port_takes_names_ipv4_and_bracketed_ipv6() {
        assert_eq!(
            host_port("visuals.local:9000"),
            Some(("visuals.local", 9000))
        );
        assert_eq!(host_port("[::1]:7000"), Some(("::1", 7000)));
        for bad in ["visuals", ":9000", "[]:9000", "host:70000", "host:x", "::1"] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn overlay_adds_what_merge_refuses() {
        let over: Table = "[lyrics]\nllm = { model = 'x' }".parse().unwrap();
        let mut saved = Table::new();
        overlay(&mut saved, over.clone());
        overlay(
            &mut saved,
            "[lyrics]\nlrclib_url = 'http://a'".parse().unwrap(),
        );
        assert_eq!(saved["lyrics"]["llm"]["model"].as_str(), Some("x"));
        assert_eq!(saved["lyrics"]["lrclib_url"].as_str(), Some("http://a"));
        assert!(merge(&mut Table::new(), over, "").is_err());
    }

    #[test]
    fn a_bad_route_prefix_is_refused() {
        let t = merged("[[osc.routes]]\nprefix = 'karaoke'\ntargets = []");
        let err = check_all(&t, "set_config", &[]).unwrap_err().to_string();
        assert!(err.contains("must start with '/'"), "{err}");
    }
}
