//! Where VirtualDJ's file is: the configured path, else the usual VirtualDJ folders
//! (`~/Library/Application Support/VirtualDJ`, `~/Documents/VirtualDJ`, `AppData\Local\VirtualDJ`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The files VirtualDJ writes, inside its folder, best first.
const NOW_PLAYING: &str = "now_playing.txt";
const TRACKLIST: &str = "History/tracklist.txt";
const HISTORY_DIR: &str = "History";

/// The file to follow and the folders to watch for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The file, when it exists (or the configured path, which may appear later).
    pub file: Option<PathBuf>,
    /// Existing folders whose changes may concern the file (its parent, or where it will appear).
    pub watch: Vec<PathBuf>,
    /// Where it was looked for, for the status line.
    pub looked_in: Vec<PathBuf>,
}

/// VirtualDJ's folders under `home`, current versions first.
pub fn usual_folders(home: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if cfg!(target_os = "macos") {
        v.push(home.join("Library/Application Support/VirtualDJ"));
    }
    v.push(home.join("Documents/VirtualDJ"));
    if cfg!(windows) {
        v.push(home.join("AppData/Local/VirtualDJ"));
    }
    v
}

/// The nearest existing folder at or above `p` (what to watch until `p` appears).
pub fn nearest_existing(p: &Path) -> Option<PathBuf> {
    p.ancestors().find(|a| a.is_dir()).map(Path::to_path_buf)
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// The files in one VirtualDJ folder that exist, with their write times.
fn files_in(folder: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut found = Vec::new();
    for name in [NOW_PLAYING, TRACKLIST] {
        let p = folder.join(name);
        if let Some(t) = modified(&p) {
            found.push((p, t));
        }
    }
    if let Ok(entries) = std::fs::read_dir(folder.join(HISTORY_DIR)) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("m3u")) {
                if let Some(t) = modified(&p) {
                    found.push((p, t));
                }
            }
        }
    }
    found
}

/// Finds the file: `configured` when it names a file (it may not exist yet); a configured
/// folder, or else the usual folders under `home`, are searched for the most recently written
/// of `now_playing.txt`, `History/tracklist.txt` and `History/*.m3u` (the dated history).
pub fn locate(configured: &str, home: &Path) -> Located {
    let configured = configured.trim();
    let folders = if configured.is_empty() {
        usual_folders(home)
    } else {
        let p = expand_home(configured, home);
        // A folder is searched; anything else (even a directory named like VirtualDJ's file,
        // which then reads as an error) is the file itself.
        let named_like_a_file = p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("txt") || x.eq_ignore_ascii_case("m3u"));
        if !p.is_dir() || named_like_a_file {
            let watch = p.parent().and_then(nearest_existing).into_iter().collect();
            return Located {
                file: Some(p.clone()),
                watch,
                looked_in: vec![p],
            };
        }
        vec![p]
    };
    let mut watch = Vec::new();
    let mut newest: Option<(PathBuf, SystemTime)> = None;
    for folder in &folders {
        if folder.is_dir() {
            watch.push(folder.clone());
            let history = folder.join(HISTORY_DIR);
            if history.is_dir() {
                watch.push(history);
            }
            for (p, t) in files_in(folder) {
                if newest.as_ref().is_none_or(|(_, n)| t > *n) {
                    newest = Some((p, t));
                }
            }
        } else if let Some(a) = nearest_existing(folder) {
            if !watch.contains(&a) {
                watch.push(a);
            }
        }
    }
    Located {
        file: newest.map(|(p, _)| p),
        watch,
        looked_in: folders,
    }
}

fn expand_home(p: &str, home: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_of_the_usual_files_is_followed() {
        let home = tempfile::tempdir().unwrap();
        let vdj = usual_folders(home.path()).pop().unwrap();
        std::fs::create_dir_all(vdj.join("History")).unwrap();
        let old = vdj.join("History/tracklist.txt");
        std::fs::write(&old, "x").unwrap();
        let m3u = vdj.join("History/2024-01-15.m3u");
        std::fs::write(&m3u, "x").unwrap();
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        let l = locate("", home.path());
        assert_eq!(l.file, Some(m3u));
        assert!(l.watch.contains(&vdj.join("History")));
    }

    #[test]
    fn nothing_yet_watches_where_it_will_appear() {
        let home = tempfile::tempdir().unwrap();
        let l = locate("", home.path());
        assert_eq!(l.file, None);
        assert!(l
            .watch
            .iter()
            .all(|w| home.path().starts_with(w) || w.starts_with(home.path())));
        assert!(!l.watch.is_empty());
        let l = locate(
            &format!("{}/a/b/now_playing.txt", home.path().display()),
            home.path(),
        );
        assert_eq!(l.watch, vec![home.path().to_path_buf()]);
        assert!(l.file.is_some());
    }
}
