#![no_main]
//! VirtualDJ's now_playing / tracklist / m3u bytes, whole or as a tail (see tests/playback_fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vj::playback::virtualdj::parse_played(data);
    let tail = vj::playback::virtualdj::parse::drop_partial_first_line(data, false);
    let _ = vj::playback::virtualdj::parse_played(tail);
});
