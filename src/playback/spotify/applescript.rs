//! macOS: asks the Spotify app through `osascript`, only when it already runs (never launches
//! it). Position comes in seconds, duration in milliseconds; -1743 means Automation is denied.

use std::time::Duration;

use tokio::sync::mpsc;

use super::config::SpotifyConfig;
use crate::karaoke::NowPlaying;
use crate::worker::Health;

use super::Report;

/// `is running` is checked first, so asking never starts Spotify.
const SCRIPT: &str = r#"if application "Spotify" is running then
  tell application "Spotify"
    set s to player state as string
    if s is "stopped" then return "stopped"
    set t to current track
    return s & tab & (artist of t) & tab & (name of t) & tab & (album of t) & tab & (duration of t) & tab & (player position) & tab & (id of t)
  end tell
else
  return "not running"
end if"#;

/// What one answer of the script says.
pub fn parse_answer(out: &str) -> Report {
    let out = out.trim_end_matches(['\n', '\r']);
    let nothing = |kind: &str| Report::Playing {
        track: None,
        progress_s: None,
        playing: false,
        kind: kind.into(),
    };
    if out == "stopped" || out == "not running" {
        return nothing(if out == "stopped" {
            "none"
        } else {
            "not running"
        });
    }
    let f: Vec<&str> = out.split('\t').collect();
    if f.len() < 7 {
        return nothing("unknown");
    }
    // Decimal commas appear with some locales.
    let num = |s: &str| s.trim().replace(',', ".").parse::<f64>().ok();
    let id = f[6];
    if !id.starts_with("spotify:track:") && !id.starts_with("spotify:local:") {
        let kind = if id.contains(":ad:") { "ad" } else { "episode" };
        return nothing(kind);
    }
    Report::Playing {
        track: Some(NowPlaying {
            source: "spotify".into(),
            artist: f[1].to_string(),
            title: f[2].to_string(),
            album: f[3].to_string(),
            duration_s: num(f[4]).map_or(0.0, |ms| (ms / 1000.0) as f32),
            has_lyrics: false,
        }),
        progress_s: num(f[5]),
        playing: f[0] == "playing",
        kind: "track".into(),
    }
}

/// Asks Spotify every `poll_interval_ms`.
pub async fn follow(c: SpotifyConfig, tx: mpsc::Sender<Report>) {
    let poll = Duration::from_millis(c.poll_interval_ms);
    loop {
        let out = tokio::process::Command::new("/usr/bin/osascript")
            .args(["-e", SCRIPT])
            .kill_on_drop(true)
            .output();
        let health = match tokio::time::timeout(Duration::from_millis(c.timeout_ms), out).await {
            Ok(Ok(o)) if o.status.success() => {
                let report = parse_answer(&String::from_utf8_lossy(&o.stdout));
                let running =
                    !matches!(&report, Report::Playing { kind, .. } if kind == "not running");
                let _ = tx.send(report).await;
                if running {
                    (Health::Ok, "live: Spotify app (AppleScript)".to_string())
                } else {
                    (
                        Health::Ok,
                        "live: AppleScript; the Spotify app is not running".to_string(),
                    )
                }
            }
            Ok(Ok(o)) => {
                let err = String::from_utf8_lossy(&o.stderr);
                if err.contains("-1743") {
                    (Health::Degraded, "macOS denies vj-spotify control of Spotify (-1743); allow it in System Settings > Privacy & Security > Automation".to_string())
                } else {
                    (
                        Health::Degraded,
                        format!("osascript failed: {}", err.trim()),
                    )
                }
            }
            Ok(Err(e)) => (Health::Degraded, format!("cannot run osascript: {e}")),
            Err(_) => (
                Health::Degraded,
                "Spotify did not answer AppleScript in time".to_string(),
            ),
        };
        let _ = tx.send(Report::Health(health.0, health.1)).await;
        tokio::time::sleep(poll).await;
    }
}
