//! vj-virtualdj end to end, run by hand: files written the way VirtualDJ writes them (history
//! lines appended, now_playing rewritten) reach a real OSC receiver as /karaoke/track and
//! /karaoke/pos, and every bad file leaves the worker serving.

mod playback_common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use playback_common::{positions, Rig};
use serde_json::json;
use vj::karaoke::{NowPlaying, PlaybackEvent};

const BIN: &str = env!("CARGO_BIN_EXE_vj-virtualdj");
const BUS: &str = "virtualdj_monitor";

async fn rig_with_path(path: &str) -> Rig {
    Rig::start(
        BIN,
        BUS,
        &format!("[virtualdj]\npath = \"{path}\"\nlead_s = 30.0\npoll_interval_ms = 60000\n"),
    )
    .await
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// VirtualDJ rewrites now_playing.txt in place: truncate, write.
fn rewrite(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn song(t: &Option<NowPlaying>) -> (String, String) {
    let t = t.as_ref().expect("a track, not 'nothing plays'");
    assert_eq!(t.source, "virtualdj");
    (t.artist.clone(), t.title.clone())
}

fn pair(a: &str, t: &str) -> (String, String) {
    (a.to_string(), t.to_string())
}

#[tokio::test]
async fn history_lines_appended_in_the_usual_folder_become_tracks_and_positions() {
    // No path configured: the usual folder (~/Documents/VirtualDJ), which does not exist yet.
    let rig = Rig::start(BIN, BUS, "[virtualdj]\nlead_s = 30.0\n").await;
    rig.wait_degraded_saying("waiting for VirtualDJ").await;

    let history = rig.home().join("Documents/VirtualDJ/History");
    std::fs::create_dir_all(&history).unwrap();
    let log = history.join("tracklist.txt");
    append(
        &log,
        "VirtualDJ History 2024/01/15\n------------------------------\n\n",
    );
    append(&log, "21:03 : Daft Punk - One More Time\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Daft Punk", "One More Time"));

    // Positions start at the configured lead and move, playing, several times a second.
    let heard = rig.hear_until(Duration::from_millis(1300), |_| false).await;
    let pos = positions(&heard);
    assert!(pos.len() >= 3, "{pos:?}");
    assert!(
        pos.iter().all(|(s, playing)| *s >= 30.0 && *playing),
        "{pos:?}"
    );
    assert!(
        pos.last().unwrap().0 > pos[0].0,
        "the position moves: {pos:?}"
    );

    // The next entry, written in two pieces: only the finished line counts.
    append(&log, "21:07 : Justi");
    append(&log, "ce - D.A.N.C.E.\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Justice", "D.A.N.C.E."));
    let s = rig.state().await;
    assert_eq!(s["status"], "ok");
    assert_eq!(s["entry"]["played_at"], "21:07");
    assert_eq!(s["live"], true);
    let h = rig.request("health", json!({})).await;
    assert!(
        h.data["checks"]["file"].as_str().unwrap().contains("live"),
        "{h:?}"
    );
}

#[tokio::test]
async fn the_dated_m3u_history_with_extvdj_tags() {
    let rig = Rig::start(BIN, BUS, "").await;
    let history = rig.home().join("Documents/VirtualDJ/History");
    std::fs::create_dir_all(&history).unwrap();
    let m3u = history.join("2024-01-15.m3u");
    append(&m3u, "#EXTM3U\r\n#EXTVDJ:<time>21:03</time><lastplaytime>1705350180</lastplaytime><artist>Simon &amp; Garfunkel</artist><title>Mrs. Robinson</title><remix>Extended Mix</remix><songlength>244.5</songlength>\r\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Simon & Garfunkel", "Mrs. Robinson"));
    assert_eq!(t.unwrap().duration_s, 244.5);
    append(&m3u, "C:\\Music\\mrs.flac\r\n#EXTVDJ:<artist>Bicep</artist><title>Glue</title>\r\nC:\\Music\\glue.mp3\r\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Bicep", "Glue"));
    let s = rig.state().await;
    assert_eq!(s["kind"], "history");
    assert_eq!(s["file"], m3u.display().to_string());
}

#[tokio::test]
async fn now_playing_rewritten_deleted_and_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("now_playing.txt");
    let mut rig = rig_with_path(file.to_str().unwrap()).await;
    rig.wait_state("waiting", |s| s["status"] == "degraded")
        .await;

    rewrite(&file, b"Moderat - Bad Kingdom");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Moderat", "Bad Kingdom"));

    rewrite(&file, b"Bicep - Glue\r\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Bicep", "Glue"));

    // An atomic replace (write beside, rename over).
    let tmp = dir.path().join("now_playing.tmp");
    std::fs::write(&tmp, "Four Tet - Baby").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Four Tet", "Baby"));

    // Deleted: nothing plays, degraded, still watching; re-created: followed again.
    std::fs::remove_file(&file).unwrap();
    let (_, t) = rig.next_track().await;
    assert_eq!(t, None);
    let s = rig
        .wait_state("degraded", |s| s["status"] == "degraded")
        .await;
    assert!(
        s["detail"].as_str().unwrap().contains("does not exist"),
        "{s}"
    );
    rewrite(&file, b"Burial - Archangel");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Burial", "Archangel"));
    assert!(rig.alive());
}

#[tokio::test]
async fn bad_files_degrade_and_the_worker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tracklist.txt");
    let mut rig = rig_with_path(file.to_str().unwrap()).await;

    // Non-UTF-8 bytes (Windows-1252 from VirtualDJ on Windows).
    rewrite(
        &file,
        b"VirtualDJ History 2024/01/15\n-----\n21:03 : Beyonc\xe9 - D\xe9j\xe0 Vu\n",
    );
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Beyoncé", "Déjà Vu"));

    // A huge history: only its tail is read, and its last entry wins.
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(f, "VirtualDJ History 2024/01/15\n-----").unwrap();
        for i in 0..400_000 {
            writeln!(f, "12:00 : Artist {i} - Title {i}").unwrap();
        }
    }
    let heard = rig
        .hear_until(
            Duration::from_secs(5),
            |e| matches!(e, PlaybackEvent::Track(Some(t)) if t.title == "Title 399999"),
        )
        .await;
    assert!(
        matches!(heard.last(), Some((_, PlaybackEvent::Track(Some(t)))) if t.artist == "Artist 399999"),
        "the last entry of a 12 MB file: {:?}",
        heard.last()
    );

    // Unreadable: as root, permissions do not stop reads, so a directory takes the file's place
    // (read fails the way a denied open does: degraded, the last song stays, still watching).
    std::fs::remove_file(&file).unwrap();
    rig.next_track().await; // "nothing plays" for the removal
    std::fs::create_dir(&file).unwrap();
    let s = rig
        .wait_state("degraded by a directory", |s| {
            s["detail"]
                .as_str()
                .unwrap_or("")
                .contains("not a regular file")
        })
        .await;
    assert_eq!(s["status"], "degraded");
    std::fs::remove_dir(&file).unwrap();

    // A FIFO must not hang the worker in open().
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &file,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    rig.wait_state("degraded by a FIFO", |s| {
        s["detail"].as_str().unwrap_or("").contains("FIFO")
    })
    .await;
    std::fs::remove_file(&file).unwrap();

    // Garbage that names no song: nothing is invented.
    rewrite(&file, b"VirtualDJ History\n\xff\xfe\x00\x00 : \n------\n");
    rig.wait_state("ok again", |s| s["status"] == "ok").await;
    append(&file, "23:59 : Aphex Twin - Xtal\n");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Aphex Twin", "Xtal"));
    assert!(rig.alive(), "{}", rig.stderr());
    assert!(!rig.stderr().contains("panicked"));
}

#[tokio::test]
#[cfg_attr(not(vj_root), ignore = "needs root, to drop the worker to nobody")]
async fn permission_denied_for_a_non_root_worker() {
    // Root reads anything, so the worker runs as nobody here (setpriv) to meet a real EACCES.
    assert!(
        rustix::process::geteuid().is_root(),
        "built as root, run as another user: build and run the tests as the same user"
    );
    assert!(
        which("setpriv").is_some(),
        "needs setpriv (Debian: util-linux)"
    );
    let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let file = dir.path().join("now_playing.txt");
    std::fs::write(&file, "Moderat - Reminder").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let extra = format!("[virtualdj]\npath = \"{}\"\n", file.display());
    let mut rig = Rig::start_in(dir, BIN, BUS, &extra, |cmd| {
        let program = cmd.get_program().to_owned();
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(file.with_file_name("stderr.log")).unwrap());
        *cmd = wrapped;
    })
    .await;
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Moderat", "Reminder"));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(&file, "Moderat - Running").unwrap(); // root writes; nobody cannot read
                                                         // The control socket refuses root (another uid), so the status is read from the log.
    let log = file.with_file_name("stderr.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("degraded: cannot read")
    {
        assert!(std::time::Instant::now() < deadline, "no degraded status");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("ermission denied"));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Moderat", "Running"));
    assert!(rig.alive());
}

#[tokio::test]
async fn set_config_moves_to_another_file_live() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "A - One").unwrap();
    std::fs::write(&b, "B - Two").unwrap();
    let rig = rig_with_path(a.to_str().unwrap()).await;
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("A", "One"));
    let ack = rig
        .request(
            "set_config",
            json!({"path": b.to_str().unwrap(), "lead_s": 5.0}),
        )
        .await;
    assert!(ack.success, "{ack:?}");
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("B", "Two"));
    let bad = rig.request("set_config", json!({"lead": 1})).await;
    assert!(!bad.success && bad.message.unwrap().contains("virtualdj.lead"));
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

#[tokio::test]
async fn a_folder_tree_created_at_once_is_followed_without_the_safety_recheck() {
    // The safety re-check is a minute away: only notify can find the file in time.
    let rig = Rig::start(BIN, BUS, "[virtualdj]\npoll_interval_ms = 60000\n").await;
    rig.wait_state("waiting", |s| s["status"] == "degraded")
        .await;
    let history = rig.home().join("Documents/VirtualDJ/History");
    std::fs::create_dir_all(&history).unwrap();
    std::fs::write(
        history.join("tracklist.txt"),
        "VirtualDJ History 2024/01/15\n------\n21:03 : Bicep - Glue\n",
    )
    .unwrap();
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Bicep", "Glue"));
}

#[tokio::test]
async fn the_position_stops_at_the_songs_length() {
    // lead_s = 0: the song has just begun; it is 2.5 s long.
    let rig = Rig::start(BIN, BUS, "[virtualdj]\nlead_s = 0.0\n").await;
    let history = rig.home().join("Documents/VirtualDJ/History");
    std::fs::create_dir_all(&history).unwrap();
    append(
        &history.join("2024-01-15.m3u"),
        "#EXTM3U\r\n#EXTVDJ:<artist>Bicep</artist><title>Glue</title><songlength>2.5</songlength>\r\n",
    );
    let (_, t) = rig.next_track().await;
    assert_eq!(song(&t), pair("Bicep", "Glue"));
    let heard = rig
        .hear_until(
            Duration::from_secs(5),
            |e| matches!(e, PlaybackEvent::Position(p) if !p.playing),
        )
        .await;
    let pos = positions(&heard);
    let (last, playing) = *pos.last().expect("positions");
    assert!(!playing, "it stops: {pos:?}");
    assert_eq!(last, 2.5, "at the song's length: {pos:?}");
    assert!(
        pos.iter().all(|p| p.0 <= 2.5) && pos.len() >= 5,
        "4 Hz up to the end: {pos:?}"
    );
    // Then quiet: a stopped song sends no more positions.
    let after = rig.hear_until(Duration::from_millis(800), |_| false).await;
    assert!(positions(&after).is_empty(), "{after:?}");
}
