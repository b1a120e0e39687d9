//! An open capture stream as the analysis thread sees it, whoever feeds it (cpal, an ALSA PCM,
//! the sound server): the flags the feeding side raises without blocking, and what it is.

use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use serde::Serialize;

/// What an entry of `list_devices` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A microphone, a line in: something that records.
    Input,
    /// What an output plays (a sound server's monitor of it).
    Monitor,
}

/// What the callback and the analysis thread share.
#[derive(Debug, Default)]
pub struct CaptureFlags {
    /// The first error the stream reported: the device is gone or broken.
    pub error: OnceLock<String>,
    /// Samples the ring had no room for.
    pub overruns: AtomicU64,
    /// Callbacks so far (a stalled device stops counting).
    pub callbacks: AtomicU64,
    /// What is captured now, when it changed under the same stream (the sound server moved
    /// `device = "system"` to a new default output); the analysis thread takes it.
    renamed: Mutex<Option<(String, String)>>,
}

impl CaptureFlags {
    /// The capture now reads from `name`, which a person calls `shown` (not from the audio
    /// callback).
    pub fn rename(&self, name: String, shown: String) {
        *crate::service::lock(&self.renamed) = Some((name, shown));
    }

    /// The new name and how it is shown, since the last look; never waits (the capture side
    /// may hold the lock).
    pub fn renamed(&self) -> Option<(String, String)> {
        self.renamed.try_lock().ok()?.take()
    }
}

/// An open input stream. Dropping it stops capture (on the stream's own thread).
pub struct Capture {
    /// Dropped with the `Capture`: tells the stream's thread to close it.
    pub(super) _close: mpsc::Sender<()>,
    pub name: String,
    /// How a person names it: `'USB Mic'`, or `what plays on 'HDMI'` for a monitor.
    pub shown: String,
    /// Whether it is what an output plays (a monitor) rather than an input.
    pub monitor: bool,
    pub rate: u32,
    pub channels: u16,
    pub flags: Arc<CaptureFlags>,
}

impl Capture {
    /// A capture fed by a thread of its own (an ALSA PCM, the sound server): the capture, the
    /// receiver that tells that thread the capture was dropped, and the flags it raises.
    pub(super) fn fed_by_thread(
        name: String,
        shown: String,
        monitor: bool,
        rate: u32,
        channels: u16,
    ) -> (Capture, mpsc::Receiver<()>, Arc<CaptureFlags>) {
        let (close, closed) = mpsc::channel::<()>();
        let flags = Arc::new(CaptureFlags::default());
        let capture = Capture {
            _close: close,
            name,
            shown,
            monitor,
            rate,
            channels,
            flags: flags.clone(),
        };
        (capture, closed, flags)
    }
}
