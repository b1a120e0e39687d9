//! The registry (`src/registry.rs`) against the files that must agree with it: every unit in
//! `units/`, every plist in `launchd/`, `vj.target` and `etc/vj.toml`. A socket name, fd name or
//! port changed in one place and not the others fails here.

mod registry_check;

use std::path::{Path, PathBuf};

use registry_check::{check_defaults, check_plist, check_target, check_units, read_unit};
use vj::registry::WORKERS;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn defaults() -> toml::Table {
    vj::config::defaults()
}

#[test]
fn every_worker_agrees_with_its_units_plist_target_and_defaults() {
    let target = read_unit(&repo().join("units/vj.target")).unwrap();
    let mut problems = Vec::new();
    for w in WORKERS {
        problems.extend(check_units(w, &repo().join("units")));
        problems.extend(check_plist(w, &repo().join("launchd")));
        problems.extend(check_defaults(w, &defaults()));
        problems.extend(check_target(w, &target));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn names(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

#[test]
fn no_unit_plist_or_section_lies_outside_the_registry() {
    let mut units: Vec<String> = WORKERS
        .iter()
        .flat_map(|w| {
            let mut u = w.sockets();
            u.push(w.service());
            u
        })
        .collect();
    units.sort();
    let mut found = names(&repo().join("units"), ".service");
    found.extend(names(&repo().join("units"), ".socket"));
    found.sort();
    assert_eq!(found, units, "units/ holds exactly the registry's units");

    let mut plists: Vec<String> = WORKERS
        .iter()
        .map(|w| format!("{}.plist", w.launchd_label()))
        .collect();
    plists.sort();
    assert_eq!(names(&repo().join("launchd"), ".plist"), plists);

    let mut sections: Vec<&str> = WORKERS.iter().map(|w| w.config_section).collect();
    sections.extend(["bus", "osc", "control"]);
    sections.sort();
    let d = defaults();
    let mut have: Vec<&str> = d.keys().map(String::as_str).collect();
    have.sort();
    assert_eq!(have, sections, "etc/vj.toml's sections");

    let mut bins: Vec<&str> = WORKERS.iter().map(|w| w.binary).collect();
    bins.extend(["vj-status", "vj-console"]);
    bins.sort();
    let mut sources: Vec<String> = names(&repo().join("src/bin"), ".rs")
        .into_iter()
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    sources.sort();
    assert_eq!(
        sources, bins,
        "a binary per worker, vj-status and vj-console"
    );
}

/// The check itself fails on a hand-made mismatch: a copy of units/ with the debugger's port
/// and the lyrics fetcher's fd name changed, and defaults with a moved `listen`.
#[test]
fn a_port_or_socket_name_changed_by_hand_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    for name in names(&repo().join("units"), "") {
        let from = repo().join("units").join(&name);
        if from.is_file() {
            std::fs::copy(&from, dir.path().join(&name)).unwrap();
        }
    }
    let edit = |name: &str, from: &str, to: &str| {
        let p = dir.path().join(name);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{name} has {from}");
        std::fs::write(&p, text.replace(from, to)).unwrap();
    };
    edit("vj-oscdebug-osc.socket", "127.0.0.1:9001", "127.0.0.1:9011");
    edit(
        "vj-lyrics.socket",
        "FileDescriptorName=control",
        "FileDescriptorName=ctl",
    );
    let debugger = vj::registry::find("osc_debugger").unwrap();
    let lyrics = vj::registry::find("lyrics_fetcher").unwrap();
    let p = check_units(debugger, dir.path());
    assert!(
        p.iter()
            .any(|m| m.contains("ListenDatagram=127.0.0.1:9011")),
        "{p:?}"
    );
    let p = check_units(lyrics, dir.path());
    assert!(
        p.iter().any(|m| m.contains("FileDescriptorName=ctl")),
        "{p:?}"
    );

    let mut d = defaults();
    d["osc_debugger"]["listen"] = toml::Value::String("127.0.0.1:9011".into());
    let p = check_defaults(debugger, &d);
    assert!(p.iter().any(|m| m.contains("osc_debugger.listen")), "{p:?}");
}
