//! Linux: follows a desktop player over the D-Bus session bus (MPRIS). Metadata and
//! PlaybackStatus come from PropertiesChanged; Position is never signalled, so it is read at
//! most once a second while playing and taken from Seeked; a player that comes back is followed.

use std::collections::HashMap;
use std::time::Duration;

use futures_lite::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};
use zbus::zvariant::{OwnedValue, Value};

use super::config::SpotifyConfig;
use crate::karaoke::NowPlaying;
use crate::worker::Health;

use super::Report;

const PREFIX: &str = "org.mpris.MediaPlayer2.";
/// Position is read no more often than this.
const POSITION_MIN_PERIOD: Duration = Duration::from_secs(1);
const RECONNECT: Duration = Duration::from_secs(5);
const SETTLE: Duration = Duration::from_millis(30);
/// A track without an artist may be a player naming the file before it has read the tags
/// (mpv does): it is announced only if no tags come within this long.
const TAGS_WAIT: Duration = Duration::from_millis(1500);
/// A property read that takes longer is given up (a player shutting down may hold its name
/// but answer nothing): the loop must keep hearing that the player left.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

#[zbus::proxy(
    interface = "org.mpris.MediaPlayer2.Player",
    default_path = "/org/mpris/MediaPlayer2",
    gen_blocking = false
)]
trait Player {
    #[zbus(property)]
    fn metadata(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn playback_status(&self) -> zbus::Result<String>;
    /// Never signalled: always fetched.
    #[zbus(property(emits_changed_signal = "false"))]
    fn position(&self) -> zbus::Result<i64>;
    #[zbus(signal)]
    fn seeked(&self, position: i64) -> zbus::Result<()>;
}

/// Whether bus name `name` is the player `wanted` (`""` = any MPRIS player; instance suffixes
/// such as `org.mpris.MediaPlayer2.vlc.instance42` count).
pub fn is_wanted(name: &str, wanted: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    wanted.is_empty() || rest == wanted || rest.starts_with(&format!("{wanted}."))
}

fn text(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::ObjectPath(p) => Some(p.to_string()),
        Value::Value(b) => text(b),
        _ => None,
    }
}

fn texts(v: &Value<'_>) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        Value::Value(b) => texts(b),
        other => text(other).into_iter().collect(),
    }
}

fn number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::I64(n) => Some(*n as f64),
        Value::U64(n) => Some(*n as f64),
        Value::I32(n) => Some(f64::from(*n)),
        Value::U32(n) => Some(f64::from(*n)),
        Value::F64(n) => Some(*n),
        Value::Value(b) => number(b),
        _ => None,
    }
}

/// Reads MPRIS `Metadata`: `xesam:artist` is a list, `mpris:length` is in µs. Spotify's ads and
/// episodes (track ids under `/com/spotify/ad/`, `…/episode/`) are not songs.
pub fn track_from_metadata(
    m: &HashMap<String, OwnedValue>,
    source: &str,
) -> (Option<NowPlaying>, String) {
    let get = |k: &str| m.get(k).map(|v| &**v);
    let id = get("mpris:trackid").and_then(text).unwrap_or_default();
    if id.contains("/ad/") || id.contains(":ad:") {
        return (None, "ad".into());
    }
    if id.contains("episode") {
        return (None, "episode".into());
    }
    let title = get("xesam:title").and_then(text).unwrap_or_default();
    if title.trim().is_empty() {
        return (None, "none".into());
    }
    let artists = get("xesam:artist").map(texts).unwrap_or_default();
    let track = NowPlaying {
        source: source.into(),
        artist: artists.join(", "),
        title,
        album: get("xesam:album").and_then(text).unwrap_or_default(),
        duration_s: get("mpris:length")
            .and_then(number)
            .filter(|us| *us > 0.0)
            .map_or(0.0, |us| (us / 1e6) as f32),
        has_lyrics: false,
    };
    (Some(track), "track".into())
}

/// Follows the player named by `spotify.mpris_player` on the session bus, for ever.
pub async fn follow(c: SpotifyConfig, tx: mpsc::Sender<Report>) {
    loop {
        if let Err(e) = follow_bus(&c, &tx).await {
            let line = format!(
                "D-Bus session bus unusable ({e}); retry in {}s",
                RECONNECT.as_secs()
            );
            let _ = tx.send(Report::Health(Health::Degraded, line)).await;
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

fn nothing(kind: &str) -> Report {
    Report::Playing {
        track: None,
        progress_s: None,
        playing: false,
        kind: kind.into(),
    }
}

async fn follow_bus(c: &SpotifyConfig, tx: &mpsc::Sender<Report>) -> zbus::Result<()> {
    let conn = zbus::Connection::session().await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut owners = dbus.receive_name_owner_changed().await?;
    let wanted = c.mpris_player.trim();
    let shown = if wanted.is_empty() {
        "any MPRIS player".to_string()
    } else {
        format!("{PREFIX}{wanted}")
    };
    loop {
        let mut names: Vec<String> = dbus
            .list_names()
            .await?
            .into_iter()
            .map(|n| n.to_string())
            .filter(|n| is_wanted(n, wanted))
            .collect();
        names.sort();
        let Some(name) = names.into_iter().next() else {
            let _ = tx.send(nothing("none")).await;
            let line = format!("waiting for {shown} on the D-Bus session bus");
            let _ = tx.send(Report::Health(Health::Degraded, line)).await;
            // Sleep until a wanted player appears.
            while let Some(sig) = owners.next().await {
                let args = sig.args()?;
                if is_wanted(args.name(), wanted) && args.new_owner().is_some() {
                    break;
                }
            }
            continue;
        };
        info!(player = %name, "following the MPRIS player {name}");
        follow_player(&conn, &name, c, tx, &mut owners).await?;
        info!(player = %name, "the MPRIS player {name} quit: nothing plays");
        let _ = tx.send(nothing("none")).await;
    }
}

/// Resolves once `name` has no owner any more (the player quit), or the bus is gone.
async fn lost(owners: &mut zbus::fdo::NameOwnerChangedStream, name: &str) {
    while let Some(sig) = owners.next().await {
        if let Ok(args) = sig.args() {
            if args.name() == name && args.new_owner().is_none() {
                return;
            }
        }
    }
}

/// A property read, given up after [`READ_TIMEOUT`].
async fn read<T>(call: impl std::future::Future<Output = zbus::Result<T>>) -> Option<T> {
    tokio::time::timeout(READ_TIMEOUT, call).await.ok()?.ok()
}

/// Whether a report may still change in a moment: a song without its artist yet.
fn awaiting_tags(report: &Report) -> bool {
    matches!(report, Report::Playing { track: Some(t), .. } if t.artist.trim().is_empty())
}

/// Follows one player until its bus name loses its owner.
async fn follow_player(
    conn: &zbus::Connection,
    name: &str,
    c: &SpotifyConfig,
    tx: &mpsc::Sender<Report>,
    owners: &mut zbus::fdo::NameOwnerChangedStream,
) -> zbus::Result<()> {
    // Setting up asks the player too (its properties for the cache): a player that quits
    // meanwhile must not hold us up.
    let setup = async {
        let player = PlayerProxy::builder(conn)
            .destination(name.to_string())?
            .build()
            .await?;
        let metadata = player.receive_metadata_changed().await;
        let status = player.receive_playback_status_changed().await;
        let seeked = player.receive_seeked().await?;
        zbus::Result::Ok((player, metadata, status, seeked))
    };
    let (player, mut metadata, mut status, mut seeked) = tokio::select! {
        r = setup => r?,
        () = lost(owners, name) => return Ok(()),
    };
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    let short = short.split('.').next().unwrap_or(short);
    let source = if short == "spotify" { "spotify" } else { short }.to_string();
    let poll = Duration::from_millis(c.poll_interval_ms).max(POSITION_MIN_PERIOD);
    let mut last_read: Option<Instant> = None;
    let mut next_read = None;
    let mut seek_to: Option<f64> = None;
    let mut changed = true;
    // A report held back while the player may still be reading tags, and until when.
    let mut held: Option<(Report, Instant)> = None;
    loop {
        if changed {
            changed = false;
            let snapshot = async {
                // Players change several properties in a burst (file name, then tags): read once.
                tokio::time::sleep(SETTLE).await;
                let meta = read(player.metadata()).await.unwrap_or_default();
                let (track, kind) = track_from_metadata(&meta, &source);
                let playing = read(player.playback_status())
                    .await
                    .is_some_and(|s| s == "Playing");
                // Position: from Seeked, else read (at most once a second), else interpolated.
                let progress_s = match seek_to.take() {
                    Some(s) => Some(s),
                    None if last_read.is_none_or(|t| t.elapsed() >= POSITION_MIN_PERIOD) => {
                        last_read = Some(Instant::now());
                        read(player.position())
                            .await
                            .map(|us| us.max(0) as f64 / 1e6)
                    }
                    None => None,
                };
                Report::Playing {
                    track,
                    progress_s,
                    playing,
                    kind,
                }
            };
            // The player may quit while it is being asked: that is heard at once.
            let report = tokio::select! {
                r = snapshot => r,
                () = lost(owners, name) => return Ok(()),
            };
            debug!(?report, "MPRIS report");
            let playing = matches!(report, Report::Playing { playing: true, .. });
            if awaiting_tags(&report) {
                let until = held.as_ref().map_or(Instant::now() + TAGS_WAIT, |h| h.1);
                held = Some((report, until));
            } else {
                held = None;
                let _ = tx.send(report).await;
                let line = format!("live: MPRIS player {name}");
                let _ = tx.send(Report::Health(Health::Ok, line)).await;
            }
            next_read = playing.then(|| Instant::now() + poll);
        }
        tokio::select! {
            Some(_) = metadata.next() => changed = true,
            Some(_) = status.next() => changed = true,
            Some(s) = seeked.next() => {
                if let Ok(a) = s.args() {
                    seek_to = Some(a.position.max(0) as f64 / 1e6);
                }
                changed = true;
            }
            _ = crate::playback::clock::sleep_until_some(next_read) => changed = true,
            // No tags came: the name is all there is.
            _ = crate::playback::clock::sleep_until_some(held.as_ref().map(|h| h.1)) => {
                if let Some((report, _)) = held.take() {
                    let _ = tx.send(report).await;
                    let line = format!("live: MPRIS player {name}");
                    let _ = tx.send(Report::Health(Health::Ok, line)).await;
                }
            }
            () = lost(owners, name) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{Array, ObjectPath, Str};

    fn meta(pairs: Vec<(&str, Value<'static>)>) -> HashMap<String, OwnedValue> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap()))
            .collect()
    }

    #[test]
    fn artists_are_a_list_and_length_is_microseconds() {
        let m = meta(vec![
            (
                "mpris:trackid",
                Value::ObjectPath(ObjectPath::try_from("/com/spotify/track/1").unwrap()),
            ),
            ("xesam:title", Value::Str(Str::from("Get Lucky"))),
            (
                "xesam:artist",
                Value::Array(Array::from(vec!["Daft Punk", "Pharrell Williams"])),
            ),
            ("xesam:album", Value::Str(Str::from("RAM"))),
            ("mpris:length", Value::U64(369_000_000)),
        ]);
        let (t, kind) = track_from_metadata(&m, "spotify");
        let t = t.unwrap();
        assert_eq!(kind, "track");
        assert_eq!(t.artist, "Daft Punk, Pharrell Williams");
        assert_eq!(
            (t.title.as_str(), t.album.as_str(), t.duration_s),
            ("Get Lucky", "RAM", 369.0)
        );
    }

    #[test]
    fn ads_and_empty_metadata_are_not_songs() {
        let ad = meta(vec![
            (
                "mpris:trackid",
                Value::ObjectPath(ObjectPath::try_from("/com/spotify/ad/22").unwrap()),
            ),
            ("xesam:title", Value::Str(Str::from("Spotify"))),
        ]);
        assert_eq!(track_from_metadata(&ad, "spotify"), (None, "ad".into()));
        assert_eq!(track_from_metadata(&HashMap::new(), "spotify").0, None);
    }

    #[test]
    fn player_names() {
        assert!(is_wanted("org.mpris.MediaPlayer2.spotify", "spotify"));
        assert!(is_wanted("org.mpris.MediaPlayer2.vlc.instance42", "vlc"));
        assert!(!is_wanted("org.mpris.MediaPlayer2.spotifyd", "spotify"));
        assert!(is_wanted("org.mpris.MediaPlayer2.mpv", ""));
        assert!(!is_wanted("org.freedesktop.DBus", ""));
    }
}
