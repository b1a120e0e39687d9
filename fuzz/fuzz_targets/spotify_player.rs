#![no_main]
//! A body from Spotify's player endpoint (see tests/playback_fuzz.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vj::playback::spotify::web_api::parse_player(data);
});
