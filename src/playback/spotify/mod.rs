//! vj-spotify: what Spotify plays, from the Web API, MPRIS (Linux) or AppleScript (macOS).
