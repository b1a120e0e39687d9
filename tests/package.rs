//! The Debian package (`make deb`, scripts/deb.sh) built from this test run's binaries: its
//! contents and conffile checked with dpkg. Where installing system-wide is harmless — CI
//! (`CI=true`, a throw-away machine) or `VJ_TEST_SYSTEM_INSTALL=1` — it is installed with dpkg,
//! the suite started from /usr/lib/systemd/user under a private user manager (nothing in the
//! box's ~/.config/systemd/user but drop-ins moving its ports off the user's own suite's),
//! vj-status (/usr/bin) reports it healthy, and `dpkg -r`
//! leaves no unit or binary behind. A plain `make test` on a desktop never installs packages.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{wait_until, UserManager};
use vj::registry::WORKERS;

fn build_deb(out: &Path) -> PathBuf {
    let o = Command::new(common::repo().join("scripts/deb.sh"))
        .arg(common::bin_dir())
        .arg(out)
        // xz on debug binaries takes minutes; what is checked is the same.
        .env("DEB_COMPRESS", "gzip")
        .output()
        .expect("deb.sh runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().expect(program)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the package must hold: every binary, every unit of the registry, the drop-ins.
fn expected_paths() -> Vec<String> {
    let mut want: Vec<String> = WORKERS
        .iter()
        .flat_map(|w| {
            let mut units = w.sockets();
            units.push(w.service());
            units
        })
        .map(|u| format!("./usr/lib/systemd/user/{u}"))
        .collect();
    want.extend(WORKERS.iter().map(|w| format!("./usr/bin/{}", w.binary)));
    want.extend(
        [
            "./usr/bin/vj-status",
            "./usr/lib/systemd/user/vj.target",
            "./usr/lib/systemd/user/vj-.service.d/10-service.conf",
            "./usr/lib/systemd/user/vj-.service.d/20-sandbox.conf",
            "./usr/lib/systemd/user/vj-audio.service.d/20-sandbox.conf",
            "./etc/vj/vj.toml",
            "./usr/share/doc/vj-suite/README.md",
            "./usr/share/doc/vj-suite/docs/ARCHITECTURE.md",
            "./usr/share/doc/vj-suite/copyright",
        ]
        .map(String::from),
    );
    want
}

#[test]
fn the_deb_holds_the_suite_in_the_system_wide_layout() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let listing = text(&run("dpkg", &["-c", deb.to_str().unwrap()]));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in expected_paths() {
        assert!(paths.contains(&want.as_str()), "{want} missing:\n{listing}");
    }
    assert!(
        listing
            .lines()
            .filter(|l| l.contains("./usr/bin/vj-"))
            .all(|l| l.starts_with("-rwxr-xr-x root/root")),
        "{listing}"
    );
    let conffiles = text(&run(
        "dpkg-deb",
        &["-I", deb.to_str().unwrap(), "conffiles"],
    ));
    assert_eq!(conffiles.trim(), "/etc/vj/vj.toml");
    let control = text(&run(
        "dpkg-deb",
        &["-f", deb.to_str().unwrap(), "Package", "Depends"],
    ));
    assert!(control.contains("Package: vj-suite"), "{control}");

    // The units point at /usr/bin, and nothing of the per-user layout is left in them.
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let untar = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" ./usr/lib/systemd/user")
        .args(["sh", deb.to_str().unwrap(), root.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(untar.success());
    let units = root.join("usr/lib/systemd/user");
    let service = std::fs::read_to_string(units.join("vj-oscquery.service")).unwrap();
    assert!(
        service.contains("ExecStart=/usr/bin/vj-oscquery"),
        "{service}"
    );
    assert!(service.contains("file:///usr/share/doc/vj-suite/README.md"));
    for entry in walk(&units) {
        let t = std::fs::read_to_string(&entry).unwrap();
        assert!(!t.contains("%h/.local/bin"), "{}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn system_install_allowed() -> bool {
    let on = |v: &str| std::env::var(v).is_ok_and(|x| x == "true" || x == "1");
    (on("CI") || on("VJ_TEST_SYSTEM_INSTALL")) && rustix::process::geteuid().is_root()
}

/// dpkg, retried while another process holds its lock (apt on a shared machine).
fn dpkg(args: &[&str]) -> Output {
    let mut out = run("dpkg", args);
    for _ in 0..60 {
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains("lock") {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        out = run("dpkg", args);
    }
    out
}

fn installed() -> bool {
    text(&run("dpkg-query", &["-W", "-f=${Status}", "vj-suite"])).contains("install ok installed")
}

/// Removes the package however the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = dpkg(&["-P", "vj-suite"]);
    }
}

fn left_behind() -> Vec<String> {
    let mut left = Vec::new();
    for dir in ["/usr/bin", "/usr/lib/systemd/user"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("vj-") || name == "vj.target" {
                left.push(format!("{dir}/{name}"));
            }
        }
    }
    left
}

#[test]
#[cfg_attr(
    not(vj_system_install),
    ignore = "installs system-wide: only as root with CI=true or VJ_TEST_SYSTEM_INSTALL=1"
)]
fn installed_with_dpkg_the_suite_runs_from_usr_lib_and_removes_cleanly() {
    assert!(
        system_install_allowed(),
        "built for a system-wide install (CI=true or VJ_TEST_SYSTEM_INSTALL=1, as root) but not run so"
    );
    if installed() {
        assert!(
            std::env::var("CI").is_ok_and(|c| c == "true"),
            "vj-suite is installed on this machine; the test would replace and remove it: dpkg -r vj-suite first"
        );
        // A throw-away CI machine with a package left by a run that was killed.
        let _ = dpkg(&["-P", "vj-suite"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let guard = Installed;
    let out = dpkg(&["-i", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "dpkg -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut m = UserManager::start_bare(None);
    assert!(
        !m.home.join(".config/systemd/user").exists(),
        "nothing per-user"
    );
    // The units stay /usr/lib's; only their ports move, as every test's do (the user's own
    // suite, `make run`, may hold the defaults: its vj-oscquery kept this one from starting).
    m.own_ports();
    // The playback monitors healthy without a player: a VirtualDJ file that exists, and
    // Spotify's Web API with nobody signed in is degraded by design; follow MPRIS on a bus
    // that does not exist instead would be too, so vj-status is asked per worker below.
    let vdj = m.home.join("now_playing.txt");
    std::fs::write(&vdj, "").unwrap();
    m.write_config(&format!(
        "[audio]\nsource = \"demo\"\n[virtualdj]\npath = \"{}\"\n",
        vdj.display()
    ));
    m.ok(&["enable", "--now", "vj.target"]);
    let fragment = m.show("vj-oscquery.service", "FragmentPath");
    assert_eq!(fragment, "/usr/lib/systemd/user/vj-oscquery.service");
    let report = || {
        let out = m
            .command("/usr/bin/vj-status")
            .arg("--json")
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    // Every worker's unit active and the worker ok, but Spotify's, degraded as it says.
    let healthy = |r: &serde_json::Value| {
        let rows = r["workers"].as_array().cloned().unwrap_or_default();
        rows.len() == WORKERS.len()
            && rows.iter().all(|w| {
                let expected = if w["worker"] == "spotify_monitor" {
                    "degraded"
                } else {
                    "ok"
                };
                w["state"] == "active" && w["health"] == expected
            })
    };
    let mut last = serde_json::Value::Null;
    let ok = wait_until(Duration::from_secs(30), || {
        last = report();
        healthy(&last)
    });
    assert!(ok, "vj-status: {last:#}");
    let state = common::request(
        &m.bus_socket("oscquery_server"),
        &serde_json::json!({"type": "command", "cmd": "get_state", "msg_id": 1}),
    );
    assert_eq!(
        state["data"]["config_file"],
        m.home.join(".config/vj/vj.toml").display().to_string(),
        "{state}"
    );
    let failed: Vec<&serde_json::Value> = last["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["health"] == "failed")
        .collect();
    assert!(failed.is_empty(), "{last:#}");
    m.ok(&["disable", "--now", "vj.target"]);
    drop(m);

    let out = dpkg(&["-r", "vj-suite"]);
    assert!(
        out.status.success(),
        "dpkg -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(left_behind(), Vec::<String>::new(), "dpkg -r left these");
    assert!(
        Path::new("/etc/vj/vj.toml").exists(),
        "a conffile stays until purge"
    );
    drop(guard);
    assert!(!Path::new("/etc/vj/vj.toml").exists(), "purged");
}
