//! Checks a worker's service definitions against its registry row: the systemd units, the
//! launchd plist and its `vj.toml` defaults must agree with `WorkerInfo` on names, fd names,
//! sockets and ports. `tests/registry.rs` runs it over the suite, `tests/echo.rs` over the
//! example worker.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use vj::registry::WorkerInfo;

/// A unit file: section → key → every value given (keys may repeat).
pub type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

pub fn read_unit(path: &Path) -> Result<Unit, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("{}: not key=value: {line}", path.display()));
        };
        unit.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(unit)
}

/// Every word of every `key=` line of `section` (`Sockets=a b` and `Sockets=c` → a, b, c).
pub fn words(unit: &Unit, section: &str, key: &str) -> Vec<String> {
    unit.get(section)
        .and_then(|s| s.get(key))
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

fn one(unit: &Unit, section: &str, key: &str) -> Option<String> {
    unit.get(section)?.get(key)?.last().cloned()
}

/// What is wrong with `w`'s units in `units`, as sentences; empty when all agree.
pub fn check_units(w: &WorkerInfo, units: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what)
        }
    };
    let service = w.service();
    let control = w.control_socket();
    let sockets = w.sockets();

    match read_unit(&units.join(&service)) {
        Err(e) => expect(false, e),
        Ok(u) => {
            let exec = one(&u, "Service", "ExecStart").unwrap_or_default();
            expect(
                exec.ends_with(&format!("/{}", w.binary)),
                format!("{service}: ExecStart={exec} does not run {}", w.binary),
            );
            let mut listed = words(&u, "Service", "Sockets");
            listed.sort();
            let mut want = sockets.clone();
            want.sort();
            expect(
                listed == want,
                format!(
                    "{service}: Sockets={} but the registry says {}",
                    listed.join(" "),
                    want.join(" ")
                ),
            );
            let requires = words(&u, "Unit", "Requires");
            for s in &sockets {
                expect(
                    requires.contains(s),
                    format!("{service}: Requires= lacks {s}"),
                );
            }
        }
    }

    let socket_unit = |name: &str, problems: &mut Vec<String>| -> Option<Unit> {
        match read_unit(&units.join(name)) {
            Ok(u) => {
                let svc = one(&u, "Socket", "Service").unwrap_or_default();
                if svc != service {
                    problems.push(format!("{name}: Service={svc}, not {service}"));
                }
                Some(u)
            }
            Err(e) => {
                problems.push(e);
                None
            }
        }
    };
    if let Some(u) = socket_unit(&control, &mut problems) {
        let listen = one(&u, "Socket", "ListenStream").unwrap_or_default();
        let want = format!("%t/vj-bus/{}.sock", w.bus_name);
        if listen != want {
            problems.push(format!("{control}: ListenStream={listen}, not {want}"));
        }
        let fd = one(&u, "Socket", "FileDescriptorName").unwrap_or_default();
        if fd != "control" {
            problems.push(format!("{control}: FileDescriptorName={fd}, not control"));
        }
    }
    let osc_file = units.join(format!("{}-osc.socket", w.binary));
    match (w.osc_in, w.osc_socket()) {
        (Some(osc), Some(name)) => {
            if let Some(u) = socket_unit(&name, &mut problems) {
                let listen = one(&u, "Socket", "ListenDatagram").unwrap_or_default();
                let want = format!("127.0.0.1:{}", osc.port);
                if listen != want {
                    problems.push(format!("{name}: ListenDatagram={listen}, not {want}"));
                }
                let fd = one(&u, "Socket", "FileDescriptorName").unwrap_or_default();
                if fd != "osc" {
                    problems.push(format!("{name}: FileDescriptorName={fd}, not osc"));
                }
            }
        }
        _ if osc_file.exists() => problems.push(format!(
            "{} exists but the registry gives {} no OSC input",
            osc_file.display(),
            w.bus_name
        )),
        _ => {}
    }
    let http_file = units.join(format!("{}-http.socket", w.binary));
    match (w.http_port, w.http_socket()) {
        (Some(port), Some(name)) => {
            if let Some(u) = socket_unit(&name, &mut problems) {
                let listen = one(&u, "Socket", "ListenStream").unwrap_or_default();
                let want = format!("127.0.0.1:{port}");
                if listen != want {
                    problems.push(format!("{name}: ListenStream={listen}, not {want}"));
                }
                let fd = one(&u, "Socket", "FileDescriptorName").unwrap_or_default();
                if fd != "http" {
                    problems.push(format!("{name}: FileDescriptorName={fd}, not http"));
                }
            }
        }
        _ if http_file.exists() => problems.push(format!(
            "{} exists but the registry gives {} no HTTP port",
            http_file.display(),
            w.bus_name
        )),
        _ => {}
    }
    problems
}

/// What is wrong with `w`'s launchd plist in `launchd`.
pub fn check_plist(w: &WorkerInfo, launchd: &Path) -> Vec<String> {
    let path = launchd.join(format!("{}.plist", w.launchd_label()));
    // Python's plistlib, a reader nobody here wrote.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(&path)
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        return vec![format!(
            "{}: not a readable plist: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let plist: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plistlib's JSON");
    let mut problems = Vec::new();
    let label = plist["Label"].as_str().unwrap_or_default();
    if label != w.launchd_label() {
        problems.push(format!(
            "{}: Label {label}, not {}",
            path.display(),
            w.launchd_label()
        ));
    }
    let program = plist["ProgramArguments"][0].as_str().unwrap_or_default();
    if !program.ends_with(&format!("/{}", w.binary)) {
        problems.push(format!(
            "{}: runs {program}, not {}",
            path.display(),
            w.binary
        ));
    }
    let sockets = plist["Sockets"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<&str> = sockets.keys().map(String::as_str).collect();
    names.sort();
    let mut want: Vec<&str> = vec!["control"];
    if w.http_port.is_some() {
        want.push("http");
    }
    if w.osc_in.is_some() {
        want.push("osc");
    }
    if names != want {
        problems.push(format!(
            "{}: Sockets {names:?}, not {want:?}",
            path.display()
        ));
    }
    let control = sockets
        .get("control")
        .and_then(|c| c["SockPathName"].as_str())
        .unwrap_or_default();
    if !control.ends_with(&format!("/{}.sock", w.bus_name)) {
        problems.push(format!("{}: control socket {control}", path.display()));
    }
    if let (Some(osc), Some(s)) = (w.osc_in, sockets.get("osc")) {
        let port = s["SockServiceName"].as_str().unwrap_or_default();
        if port != osc.port.to_string()
            || s["SockType"] != "dgram"
            || s["SockNodeName"] != "127.0.0.1"
        {
            problems.push(format!(
                "{}: osc socket {s}, not dgram 127.0.0.1:{}",
                path.display(),
                osc.port
            ));
        }
    }
    if let (Some(port), Some(s)) = (w.http_port, sockets.get("http")) {
        if s["SockServiceName"].as_str() != Some(port.to_string().as_str())
            || s["SockType"] != "stream"
            || s["SockNodeName"] != "127.0.0.1"
        {
            problems.push(format!(
                "{}: http socket {s}, not stream 127.0.0.1:{port}",
                path.display()
            ));
        }
    }
    problems
}

/// What is wrong with `w`'s section of the defaults (`etc/vj.toml`).
pub fn check_defaults(w: &WorkerInfo, defaults: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(section) = defaults.get(w.config_section).and_then(|s| s.as_table()) else {
        return vec![format!("etc/vj.toml has no [{}]", w.config_section)];
    };
    if let Some(port) = w.http_port {
        let addr = format!("127.0.0.1:{port}");
        let listen = section.get("listen").and_then(|v| v.as_str());
        if listen != Some(addr.as_str()) {
            problems.push(format!(
                "etc/vj.toml: {}.listen = {listen:?}, not {addr:?}",
                w.config_section
            ));
        }
    }
    let Some(osc) = w.osc_in else {
        return problems;
    };
    let addr = format!("127.0.0.1:{}", osc.port);
    let key = w.osc_listen_key();
    let listen = section.get(key).and_then(|v| v.as_str());
    if listen != Some(addr.as_str()) {
        problems.push(format!(
            "etc/vj.toml: {}.{key} = {listen:?}, not {addr:?}",
            w.config_section
        ));
    }
    let has = |targets: Option<&toml::Value>| {
        targets
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
            .any(|t| {
                t.as_str() == Some(&addr) || t.get("addr").and_then(|a| a.as_str()) == Some(&addr)
            })
    };
    let osc_table = &defaults["osc"];
    let fed = match osc.route {
        None => has(osc_table.get("targets")),
        Some(prefix) => osc_table
            .get("routes")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter(|r| r.get("prefix").and_then(|p| p.as_str()) == Some(prefix))
            .any(|r| has(r.get("targets"))),
    };
    if !fed {
        problems.push(match osc.route {
            None => format!("etc/vj.toml: [osc] targets lack {addr} ({})", w.bus_name),
            Some(p) => format!(
                "etc/vj.toml: no [[osc.routes]] {p:?} sends to {addr} ({})",
                w.bus_name
            ),
        });
    }
    problems
}

/// What is wrong with `vj.target` for `w`: it wants every socket, and the service too when the
/// worker starts with the target.
pub fn check_target(w: &WorkerInfo, target: &Unit) -> Vec<String> {
    let wants = words(target, "Unit", "Wants");
    let mut problems = Vec::new();
    for s in w.sockets() {
        if !wants.contains(&s) {
            problems.push(format!("vj.target does not want {s}"));
        }
    }
    if wants.contains(&w.service()) != w.starts_with_target {
        problems.push(format!(
            "vj.target {} {}, but the registry says it {} with the target",
            if w.starts_with_target {
                "does not want"
            } else {
                "wants"
            },
            w.service(),
            if w.starts_with_target {
                "starts"
            } else {
                "does not start"
            },
        ));
    }
    problems
}
