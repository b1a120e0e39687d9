//! Replays every input in `fuzz/regressions/<target>/` (crashes the fuzzers found, and seeds)
//! through the same code the fuzz targets run: each must be handled without a panic.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{target}: {} panics", path.display());
        }
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn control_frames() {
    replay("control_frame", targets::control_frame);
}

#[test]
fn osc_datagrams() {
    replay("osc_decode", targets::osc_decode);
}

#[test]
fn config_files() {
    replay("config", targets::config);
}

#[test]
fn lrc_texts() {
    replay("lrc", targets::lrc);
}

#[test]
fn virtualdj_files() {
    replay("virtualdj", targets::virtualdj);
}

#[test]
fn http_bodies() {
    replay("http_body", targets::http_body);
}

#[test]
fn set_config_values() {
    replay("set_config", targets::set_config);
}

#[test]
fn control_over_osc_datagrams() {
    replay("control_osc", targets::control_osc);
}

#[test]
fn oscquery_requests() {
    replay("oscquery_request", targets::oscquery_request);
}

#[test]
fn show_recordings() {
    replay("recording", targets::recording);
}
