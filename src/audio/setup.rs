//! The machine's sound setup as seen from outside ALSA: the kernel's cards, the device nodes,
//! the sound servers' sockets and the ALSA configuration files. While the demo loop waits for a
//! capture device, ALSA is asked again only when this changed: every scan opens ALSA's plugins,
//! and some (PulseAudio's) print their complaints straight to stderr, the journal, each time.

use std::path::{Path, PathBuf};

/// A snapshot to compare with the next; equal snapshots mean nothing a scan could find changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundSetup(Vec<String>);

impl SoundSetup {
    /// Now; `None` where there is no such view (not Linux): then every scan asks.
    pub fn now() -> Option<SoundSetup> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut files = vec![PathBuf::from("/etc/asound.conf")];
        if let Some(run) = env("XDG_RUNTIME_DIR") {
            files.push(run.join("pulse/native"));
            files.push(run.join("pipewire-0"));
        }
        if let Some(home) = env("HOME") {
            files.push(home.join(".asoundrc"));
            let config = env("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
            files.push(config.join("alsa/asoundrc"));
        }
        Some(Self::read(
            Path::new("/proc/asound/cards"),
            Path::new("/dev/snd"),
            &files,
        ))
    }

    /// The cards list, the nodes in `dev`, and whether and when each of `files` last changed.
    fn read(cards: &Path, dev: &Path, files: &[PathBuf]) -> SoundSetup {
        let mut parts = vec![std::fs::read_to_string(cards).unwrap_or_default()];
        let mut nodes: Vec<String> = std::fs::read_dir(dev)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        nodes.sort();
        parts.extend(nodes);
        for f in files {
            let changed = std::fs::symlink_metadata(f).and_then(|m| m.modified()).ok();
            parts.push(format!("{} {changed:?}", f.display()));
        }
        SoundSetup(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_device_node_card_or_config_file_changes_it_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let (cards, dev, rc) = (
            dir.path().join("cards"),
            dir.path().join("snd"),
            dir.path().join("asoundrc"),
        );
        std::fs::create_dir(&dev).unwrap();
        std::fs::write(&cards, "--- no soundcards ---\n").unwrap();
        let look = || SoundSetup::read(&cards, &dev, std::slice::from_ref(&rc));
        let first = look();
        assert_eq!(look(), first, "nothing changed");
        std::fs::write(dev.join("pcmC1D0c"), "").unwrap();
        let plugged = look();
        assert_ne!(plugged, first, "a capture node appeared");
        std::fs::write(&cards, " 1 [Device ]: USB-Audio\n").unwrap();
        let card = look();
        assert_ne!(card, plugged, "a card appeared");
        std::fs::write(&rc, "pcm.mic { type dsnoop }\n").unwrap();
        assert_ne!(look(), card, "an ~/.asoundrc appeared");
    }
}
