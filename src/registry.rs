//! The one list of the suite's workers, in the order `vj-status` shows them. Each worker module
//! declares its own entry (bus name, binary, units, config section, OSC port); this module
//! lists them, finds one by any of its names and tells config which sections are whose. The
//! tools (`vj-status`, `vj-console`), the binaries and the tests read it; no worker does.
//! `tests/registry.rs` checks `units/`, `launchd/` and `etc/vj.toml` against it, so a name or
//! port changed in one place only fails `make test`.

pub use crate::audio::worker::AUDIO;
use crate::config;
pub use crate::lyrics::LYRICS;
pub use crate::oscdebug::OSC_DEBUGGER;
pub use crate::oscquery::OSCQUERY;
pub use crate::playback::spotify::worker::SPOTIFY;
pub use crate::playback::virtualdj::worker::VIRTUALDJ;
pub use crate::service::unit::{OscIn, WorkerInfo};

/// Every worker of the suite, in the order `vj-status` shows them.
pub const WORKERS: [&WorkerInfo; 6] = [
    &AUDIO,
    &SPOTIFY,
    &VIRTUALDJ,
    &LYRICS,
    &OSC_DEBUGGER,
    &OSCQUERY,
];

/// Every worker's section, for config to check them all.
pub fn owners() -> Vec<config::Owner> {
    WORKERS.iter().map(|w| w.owner()).collect()
}

/// The worker called `name` (any of the names [`WorkerInfo::is_called`] takes).
pub fn find(name: &str) -> Option<&'static WorkerInfo> {
    WORKERS.into_iter().find(|w| w.is_called(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worker `name`'s view of the defaults with `user` laid on.
    fn view_of<S: config::Section>(
        name: &str,
        user: &str,
    ) -> Result<(S, Vec<config::Elsewhere>), String> {
        let mut t = config::defaults();
        let unmerged = config::merge_sections(&mut t, user.parse().unwrap());
        config::view::<S>(&t, unmerged, name, "test", &owners())
            .map(|(_, own, _, elsewhere)| (own, elsewhere))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_mistake_in_another_workers_section_is_a_warning_naming_it() {
        use crate::audio::AudioConfig;
        use crate::lyrics::LyricsConfig;
        // An unknown key (the merge) and a wrong value (the section's own check) in [lyrics].
        for user in [
            "[audio]\nlatency_ms = 20\n[lyrics]\nlrclib_ulr = 'x'",
            "[audio]\nlatency_ms = 20\n[lyrics]\nlrclib_url = 'not a url'",
        ] {
            let (audio, elsewhere) = view_of::<AudioConfig>("audio", user).unwrap();
            assert_eq!(audio.latency_ms, 20.0, "its own section still applies");
            assert_eq!(elsewhere.len(), 1, "{user}");
            let said = elsewhere[0].to_string();
            assert!(
                said.starts_with("[lyrics] is wrong, so vj-lyrics will not start"),
                "{said}"
            );
            assert!(said.contains("lyrics.lrclib_u"), "the key: {said}");
            // The worker whose section it is fails on it.
            let err = view_of::<LyricsConfig>("lyrics", user).unwrap_err();
            assert!(err.contains("lyrics.lrclib_u"), "{err}");
        }
    }

    #[test]
    fn a_mistake_in_a_shared_section_or_an_unknown_one_fails_every_worker() {
        use crate::audio::AudioConfig;
        for user in ["[osc]\ntargetz = []", "[bus]\ndir = 3", "[lyrcs]\nx = 1"] {
            let err = view_of::<AudioConfig>("audio", user).unwrap_err();
            assert!(
                err.contains("targetz") || err.contains("bus.dir") || err.contains("lyrcs"),
                "{user}: {err}"
            );
        }
    }

    #[test]
    fn workers_are_found_by_any_of_their_names() {
        for n in [
            "osc_debugger",
            "vj-oscdebug",
            "vj-oscdebug.service",
            "oscdebug",
        ] {
            assert_eq!(find(n).map(|w| w.bus_name), Some("osc_debugger"), "{n}");
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn names_are_unique_and_every_section_is_in_the_defaults() {
        let defaults = config::defaults();
        for (i, a) in WORKERS.iter().enumerate() {
            assert!(
                defaults.contains_key(a.config_section),
                "{}",
                a.config_section
            );
            (a.check_config)(&defaults, a.config_section, "built-in defaults").unwrap();
            for b in &WORKERS[i + 1..] {
                assert_ne!(a.bus_name, b.bus_name);
                assert_ne!(a.binary, b.binary);
                assert_ne!(a.config_section, b.config_section);
                if let (Some(x), Some(y)) = (a.osc_in, b.osc_in) {
                    assert_ne!(x.port, y.port);
                }
            }
        }
    }
}
