//! vj-audio under a real systemd user manager, capturing through cpal from ALSA's `file`
//! plugin: the unit starts with vj.target, says what it analyses in STATUS=, and a UDP
//! receiver sees every /audio address with its exact type tags at ≥ 80 frames a second.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{alsa_file_pcm, alsa_raw, request, wait_until, OscReceiver, UserManager};
use serde_json::json;
use vj::audio::synth::Genre;

const SERVICE: &str = "vj-audio.service";

#[test]
fn the_unit_captures_through_alsa_and_sends_every_address() {
    let m = UserManager::start();
    let osc = OscReceiver::bind();
    let infile = m.home.join("clip.raw");
    std::fs::write(&infile, alsa_raw(Genre::House, 9, 40.0)).unwrap();
    alsa_file_pcm(&m.home, &infile);
    m.write_config(&format!(
        "[osc]\ntargets = [\"{}\"]\nroutes = []\n[audio]\nsource = \"device\"\n",
        osc.addr()
    ));
    m.ok(&["start", "vj.target"]);
    assert!(
        wait_until(Duration::from_secs(15), || m
            .show(SERVICE, "StatusText")
            .starts_with("analyzing 'default'")),
        "status: {:?}, journal:\n{}",
        m.show(SERVICE, "StatusText"),
        m.journal("vj-audio")
    );
    // vj.target also starts the playback monitors, whose "nothing plays" /karaoke/track may
    // arrive here too: this test checks what vj-audio sends.
    let msgs: Vec<_> = osc
        .collect(Duration::from_secs(2))
        .into_iter()
        .filter(|m| m.address.starts_with("/audio/"))
        .collect();
    let spectrum_tags = "f".repeat(32);
    let want: HashMap<&str, &str> = [
        ("/audio/levels", "ffffffff"),
        ("/audio/spectrum", spectrum_tags.as_str()),
        ("/audio/beat", "if"),
        ("/audio/bpm", "ff"),
        ("/audio/pitch", "ff"),
        ("/audio/structure", "iiff"),
        ("/audio/phase", "ffff"),
        ("/audio/count", "iii"),
        ("/audio/kick", "if"),
        ("/audio/snare", "if"),
        ("/audio/hat", "if"),
    ]
    .into_iter()
    .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for msg in &msgs {
        assert_eq!(
            want.get(msg.address.as_str()).copied(),
            Some(msg.types.as_str()),
            "{}",
            msg.address
        );
        *seen.entry(msg.address.clone()).or_default() += 1;
    }
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen["/audio/levels"] >= 160, "≥ 80 fps: {seen:?} in 2 s");

    let state = request(
        &m.bus_socket("audio_analyzer"),
        &json!({"type": "command", "cmd": "get_state", "msg_id": 1}),
    );
    assert_eq!(state["data"]["source"], "device", "{state}");
    assert_eq!(state["data"]["status"], "ok", "{state}");
    assert_eq!(m.show(SERVICE, "ActiveState"), "active");

    // The journal reads as sentences with their values, and ALSA's own chatter is not there.
    let journal = m.journal("vj-audio");
    assert!(
        journal
            .lines()
            .any(|l| l.starts_with("status: analyzing 'default' at ")),
        "{journal}"
    );
    assert!(
        journal.contains("capturing from 'default' at 44100 Hz"),
        "{journal}"
    );
    assert!(!journal.contains("ALSA lib "), "{journal}");
    assert!(
        !journal
            .lines()
            .any(|l| l == "status" || l.starts_with("20")),
        "no bare field names, no second timestamps: {journal}"
    );
}
