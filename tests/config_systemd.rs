//! A mistake in one worker's section stops that worker only, under the real user manager: a
//! typo in `[lyrics]` leaves vj-audio running (across a restart, too) with one warning naming
//! the section and the key, and vj-lyrics failed (exit 78) with the key in its reason, which
//! `vj-status` shows on its row.

mod common;

use common::UserManager;

#[test]
fn a_typo_in_lyrics_fails_vj_lyrics_only() {
    let m = UserManager::start();
    m.write_config("[audio]\nsource = \"demo\"\n[lyrics]\nlrclib_ulr = \"http://127.0.0.1:9\"\n");
    m.ok(&["start", "vj-audio.service"]);
    // Its next restart is where it used to fail too.
    m.ok(&["restart", "vj-audio.service"]);
    assert_eq!(m.show("vj-audio.service", "ActiveState"), "active");

    let out = m.systemctl(&["start", "vj-lyrics.service"]);
    assert!(!out.status.success(), "vj-lyrics started on a typo");
    assert!(common::wait_until(
        std::time::Duration::from_secs(10),
        || { m.show("vj-lyrics.service", "ActiveState") == "failed" }
    ));
    assert_eq!(m.show("vj-lyrics.service", "ExecMainStatus"), "78");
    assert!(
        m.show("vj-lyrics.service", "StatusText")
            .contains("lyrics.lrclib_ulr"),
        "{}",
        m.show("vj-lyrics.service", "StatusText")
    );
    assert_eq!(m.show("vj-audio.service", "ActiveState"), "active");

    let status = m.vj_status(&[]);
    let text = String::from_utf8_lossy(&status.stdout);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{text}"))
            .to_string()
    };
    let lyrics = row("lyrics_fetcher");
    assert!(
        lyrics.contains("failed") && lyrics.contains("lyrics.lrclib_ulr"),
        "{lyrics}"
    );
    assert!(row("audio_analyzer").contains("active"), "{text}");

    // vj-audio said so, once a start, naming the section and the key.
    let journal = m.journal("vj-audio");
    let warned = journal
        .lines()
        .filter(|l| l.contains("[lyrics] is wrong") && l.contains("lyrics.lrclib_ulr"))
        .count();
    assert_eq!(
        warned, 2,
        "one warning for each of its two starts:\n{journal}"
    );
}
