//! Replays `fuzz/regressions/{virtualdj_file,spotify_player}/*` (seeds and anything the fuzz
//! targets of the same names find) through the parsers: none may panic.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
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
fn virtualdj_files() {
    replay("virtualdj_file", |d| {
        let _ = vj::playback::virtualdj::parse_played(d);
        let tail = vj::playback::virtualdj::parse::drop_partial_first_line(d, false);
        let _ = vj::playback::virtualdj::parse_played(tail);
    });
}

#[test]
fn spotify_player_bodies() {
    replay("spotify_player", |d| {
        let _ = vj::playback::spotify::web_api::parse_player(d);
    });
}
