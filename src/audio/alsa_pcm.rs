//! Capture from an ALSA PCM by name (`audio.device = "dsnoop_mic"`), for PCMs that cpal does
//! not list: cpal's ALSA host enumerates only `default`, a few built-ins and the hardware
//! cards, so a dsnoop, loopback or plug defined in `~/.asoundrc` is reached here, through the
//! same `alsa` crate cpal uses. The stream gets a thread of its own, like cpal's, and feeds
//! the same ring the same way.

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::stream::Capture;

/// Frames per read: about one analysis hop.
const PERIOD: i64 = 512;

/// Opens `name` for capture at 44.1 kHz (or the nearest rate it offers), 16-bit, stereo or
/// mono. The error is ALSA's own words.
fn open_pcm(name: &str) -> Result<(PCM, u32, u16), String> {
    let pcm = PCM::new(name, Direction::Capture, false).map_err(|e| e.to_string())?;
    let (rate, channels) = {
        let hw = HwParams::any(&pcm).map_err(|e| e.to_string())?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| e.to_string())?;
        hw.set_format(Format::s16())
            .map_err(|e| format!("no 16-bit capture: {e}"))?;
        let channels = hw.set_channels_near(2).map_err(|e| e.to_string())?;
        let rate = hw
            .set_rate_near(super::DEFAULT_RATE, ValueOr::Nearest)
            .map_err(|e| e.to_string())?;
        hw.set_period_size_near(PERIOD, ValueOr::Nearest)
            .map_err(|e| e.to_string())?;
        pcm.hw_params(&hw).map_err(|e| e.to_string())?;
        (rate, channels as u16)
    };
    pcm.start().map_err(|e| e.to_string())?;
    Ok((pcm, rate, channels))
}

/// Opens PCM `name` on a thread of its own and starts pushing mono samples into `ring`,
/// unparking `reader` after each read. The thread reads until the `Capture` is dropped.
pub fn open(
    name: &str,
    mut ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
    timeout: std::time::Duration,
) -> Result<Capture, String> {
    let (opened_tx, opened) = mpsc::channel();
    let pcm_name = name.to_string();
    std::thread::Builder::new()
        .name("vj-audio-alsa".into())
        .spawn(move || {
            // Not real-time: see the cpal thread in `capture::open`.
            let _ = crate::service::realtime::ordinary();
            let (pcm, rate, channels) = match open_pcm(&pcm_name) {
                Ok(p) => p,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let shown = format!("'{pcm_name}'");
            let (capture, closed, flags) =
                Capture::fed_by_thread(pcm_name, shown, false, rate, channels);
            if opened_tx.send(Ok(capture)).is_err() {
                return;
            }
            let Ok(io) = pcm.io_i16() else {
                let _ = flags.error.set("cannot read 16-bit samples".into());
                return;
            };
            let channels = channels.max(1) as usize;
            let scale = 1.0 / (channels as f32 * 32768.0);
            let mut buf = vec![0i16; PERIOD as usize * channels];
            // Until the `Capture` is dropped (its sender with it).
            while let Err(mpsc::TryRecvError::Empty) = closed.try_recv() {
                match io.readi(&mut buf) {
                    Ok(frames) => {
                        flags.callbacks.fetch_add(1, Ordering::Relaxed);
                        let mut lost = 0u64;
                        for frame in buf[..frames * channels].chunks_exact(channels) {
                            let mono = frame.iter().map(|&s| f32::from(s)).sum::<f32>() * scale;
                            if ring.push(mono).is_err() {
                                lost += 1;
                            }
                        }
                        if lost > 0 {
                            flags.overruns.fetch_add(lost, Ordering::Relaxed);
                        }
                        reader.unpark();
                    }
                    // An overrun (EPIPE) and the like: ALSA's own recovery, then on.
                    Err(e) if pcm.try_recover(e, true).is_ok() => {}
                    Err(e) => {
                        let _ = flags.error.set(e.to_string());
                        reader.unpark();
                        return;
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start its thread: {e}"))?;
    opened.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(format!(
            "opening it did not finish in {} s",
            timeout.as_secs()
        ))
    })
}
