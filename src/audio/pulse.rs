//! The sound server: PulseAudio, or PipeWire through pipewire-pulse, which speaks the same
//! protocol. Its inputs and its outputs' monitors, by the server's own names and descriptions;
//! and capture from one of them, `audio.device = "system"` being the monitor of the default
//! output, followed when the user switches to headphones or HDMI.
//!
//! The capture thread reads blocks of about a hop (`pa_simple`) and feeds the same ring as
//! cpal's callback, the same way; between reads it looks at the server's change events on a
//! connection of its own, so following the default output reopens only the server stream: the
//! ring, the analysis and its tempo go on.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libpulse_binding as pulse;
use pulse::context::introspect::{ServerInfo, SinkInfo, SourceInfo};
use pulse::context::subscribe::InterestMaskSet;
use pulse::context::{Context, FlagSet, State};
use pulse::def::BufferAttr;
use pulse::mainloop::standard::{IterateResult, Mainloop};
use pulse::operation::{Operation, State as OpState};
use pulse::sample::{Format, Spec};
use pulse::stream::Direction;
use pulse_simple::Simple;
use serde::Serialize;

use libpulse_simple_binding as pulse_simple;

use super::stream::{Capture, Kind};

/// Frames per read: half a hop, so a hop is never more than ~6 ms late for the read's sake.
const READ_FRAMES: usize = super::HOP / 2;
/// How long connecting or one question to the server may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// One source of the sound server, as `list_devices` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// The server's name (`alsa_output.pci-0000_00_1f.3.analog-stereo.monitor`).
    pub name: String,
    /// The server's description ("Monitor of Built-in Audio Analog Stereo").
    pub description: String,
    pub kind: Kind,
    /// For a monitor: the output's description ("Built-in Audio Analog Stereo").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The server's default input, or the default output's monitor.
    pub default: bool,
    pub channels: u8,
    pub rate: u32,
}

/// What the server says: its name and its sources, defaults marked.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// "pulseaudio", or "PulseAudio (on PipeWire 0.3.65)".
    pub name: String,
    pub sources: Vec<Source>,
}

impl Server {
    /// The monitor of the default output.
    pub fn system(&self) -> Option<&Source> {
        self.sources
            .iter()
            .find(|s| s.kind == Kind::Monitor && s.default)
    }

    /// The source `wanted` names: its name or description exactly (case aside), else the first
    /// whose name or description contains it.
    pub fn find(&self, wanted: &str) -> Option<&Source> {
        let w = wanted.to_lowercase();
        let exact = |s: &&Source| s.name.to_lowercase() == w || s.description.to_lowercase() == w;
        let part = |s: &&Source| {
            s.name.to_lowercase().contains(&w) || s.description.to_lowercase().contains(&w)
        };
        self.sources
            .iter()
            .find(exact)
            .or_else(|| self.sources.iter().find(part))
    }
}

/// How a person reads a source: what plays on an output, or an input's description.
pub fn describe(s: &Source) -> String {
    match &s.output {
        Some(out) => format!("what plays on '{out}'"),
        None => format!("'{}'", s.description),
    }
}

/// A connection to the server, driven by a mainloop of its own on the calling thread.
struct Connection {
    /// Declared before the mainloop: fields drop in order, and the context must go first.
    context: Context,
    mainloop: Mainloop,
    /// Set by the server's change events (a default, a sink or a source changed).
    changed: Rc<Cell<bool>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.context.disconnect();
    }
}

fn text(c: &Option<Cow<'_, str>>) -> String {
    c.as_deref().unwrap_or_default().to_string()
}

impl Connection {
    /// Connects without starting a server (no autospawn): no server is an error that says so.
    fn open() -> Result<Connection, String> {
        let mainloop = Mainloop::new().ok_or("cannot create a PulseAudio mainloop")?;
        let mut context =
            Context::new(&mainloop, "vj-audio").ok_or("cannot create a PulseAudio context")?;
        context
            .connect(None, FlagSet::NOAUTOSPAWN, None)
            .map_err(|e| no_server(&e.to_string().unwrap_or_default()))?;
        let mut c = Connection {
            mainloop,
            context,
            changed: Rc::new(Cell::new(false)),
        };
        let until = Instant::now() + ASK_TIMEOUT;
        loop {
            match c.context.get_state() {
                State::Ready => break,
                State::Failed | State::Terminated => {
                    let e = c.context.errno().to_string().unwrap_or_default();
                    return Err(no_server(&e));
                }
                _ => {}
            }
            if Instant::now() > until {
                return Err(no_server("it did not answer in 2 s"));
            }
            c.turn(true)?;
        }
        Ok(c)
    }

    /// One turn of the mainloop.
    fn turn(&mut self, block: bool) -> Result<(), String> {
        match self.mainloop.iterate(block) {
            IterateResult::Success(_) => Ok(()),
            IterateResult::Quit(_) => Err("the PulseAudio mainloop quit".into()),
            IterateResult::Err(e) => Err(format!("lost the sound server: {e}")),
        }
    }

    /// Turns the mainloop until `op` is done.
    fn wait<F: ?Sized>(&mut self, mut op: Operation<F>) -> Result<(), String> {
        let until = Instant::now() + ASK_TIMEOUT;
        while op.get_state() == OpState::Running {
            if Instant::now() > until {
                op.cancel();
                return Err("the sound server did not answer in 2 s".into());
            }
            self.turn(true)?;
        }
        Ok(())
    }

    /// The server's name, defaults, outputs and sources.
    fn look(&mut self) -> Result<Server, String> {
        type Defaults = (String, String, String);
        let info: Rc<std::cell::RefCell<Defaults>> = Rc::default();
        let i = info.clone();
        let op = self
            .context
            .introspect()
            .get_server_info(move |s: &ServerInfo| {
                *i.borrow_mut() = (
                    text(&s.server_name),
                    text(&s.default_sink_name),
                    text(&s.default_source_name),
                );
            });
        self.wait(op)?;
        let sinks: Rc<std::cell::RefCell<HashMap<String, String>>> = Rc::default();
        let k = sinks.clone();
        let op = self.context.introspect().get_sink_info_list(move |r| {
            if let pulse::callbacks::ListResult::Item(s) = r {
                let s: &SinkInfo = s;
                k.borrow_mut().insert(text(&s.name), text(&s.description));
            }
        });
        self.wait(op)?;
        let sources: Rc<std::cell::RefCell<Vec<Source>>> = Rc::default();
        let (name, default_sink, default_source) = info.borrow().clone();
        let (v, sinks_here) = (sources.clone(), sinks.clone());
        let op = self.context.introspect().get_source_info_list(move |r| {
            if let pulse::callbacks::ListResult::Item(s) = r {
                let s: &SourceInfo = s;
                let name = text(&s.name);
                let of = s.monitor_of_sink_name.as_deref().map(str::to_string);
                let default = match &of {
                    Some(sink) => *sink == default_sink,
                    None => name == default_source,
                };
                v.borrow_mut().push(Source {
                    description: text(&s.description),
                    kind: if of.is_some() {
                        Kind::Monitor
                    } else {
                        Kind::Input
                    },
                    output: of.map(|sink| sinks_here.borrow().get(&sink).cloned().unwrap_or(sink)),
                    default,
                    channels: s.sample_spec.channels,
                    rate: s.sample_spec.rate,
                    name,
                });
            }
        });
        self.wait(op)?;
        let sources = sources.take();
        Ok(Server { name, sources })
    }

    /// From now on, `changed` is set whenever the server's defaults, outputs or sources change.
    fn follow(&mut self) -> Result<(), String> {
        let changed = self.changed.clone();
        self.context
            .set_subscribe_callback(Some(Box::new(move |_, _, _| changed.set(true))));
        let op = self.context.subscribe(
            InterestMaskSet::SERVER | InterestMaskSet::SINK | InterestMaskSet::SOURCE,
            |_| {},
        );
        self.wait(op)
    }

    /// Handles what the server sent since the last look, without waiting; true if anything
    /// changed.
    fn changes(&mut self) -> Result<bool, String> {
        self.turn(false)?;
        if !matches!(self.context.get_state(), State::Ready) {
            return Err("lost the sound server".into());
        }
        Ok(self.changed.replace(false))
    }
}

fn no_server(why: &str) -> String {
    format!(
        "no sound server (PulseAudio, or PipeWire with pipewire-pulse) to capture from: {why}; \
         is one running for this user (PULSE_SERVER, $XDG_RUNTIME_DIR/pulse/native)?"
    )
}

/// The server's sources, for `list_devices`; an error when there is no server.
pub fn list() -> Result<Server, String> {
    Connection::open()?.look()
}

/// What to capture: the default output's monitor (followed), or a source named by the user.
#[derive(Debug, Clone)]
pub enum Wanted {
    System,
    Named(String),
}

impl Wanted {
    fn pick<'a>(&self, server: &'a Server) -> Result<&'a Source, String> {
        match self {
            Wanted::System => server.system().ok_or_else(|| {
                format!(
                    "the sound server ({}) has no default output to capture",
                    server.name
                )
            }),
            Wanted::Named(w) => server.find(w).ok_or_else(|| {
                let names: Vec<String> = server
                    .sources
                    .iter()
                    .map(|s| format!("{:?} ({:?})", s.description, s.name))
                    .collect();
                format!(
                    "no source of the sound server matches {w:?}: its sources are {}",
                    names.join(", ")
                )
            }),
        }
    }
}

/// One capture stream: mono 32-bit float at 44.1 kHz (the server mixes and resamples), with
/// the server sending a fragment about every half hop.
fn record(source: &Source) -> Result<Simple, String> {
    let spec = Spec {
        format: Format::F32le,
        channels: 1,
        rate: super::DEFAULT_RATE,
    };
    let bytes = (READ_FRAMES * 4) as u32;
    let attr = BufferAttr {
        maxlength: u32::MAX,
        tlength: u32::MAX,
        prebuf: u32::MAX,
        minreq: u32::MAX,
        fragsize: bytes,
    };
    Simple::new(
        None,
        "vj-audio",
        Direction::Record,
        Some(&source.name),
        "analysis",
        &spec,
        None,
        Some(&attr),
    )
    .map_err(|e| {
        format!(
            "the sound server cannot record {:?}: {}",
            source.name,
            e.to_string().unwrap_or_default()
        )
    })
}

/// Opens `wanted` on a thread of its own and starts pushing mono samples into `ring`,
/// unparking `reader` after each read. With [`Wanted::System`] a change of the default
/// output moves the capture to its monitor, and `flags.renamed` says what is captured now.
pub fn open(
    wanted: Wanted,
    mut ring: rtrb::Producer<f32>,
    reader: std::thread::Thread,
    timeout: Duration,
) -> Result<Capture, String> {
    let (opened_tx, opened) = mpsc::channel();
    std::thread::Builder::new()
        .name("vj-audio-pulse".into())
        .spawn(move || {
            let start = || -> Result<_, String> {
                let mut conn = Connection::open()?;
                conn.follow()?;
                let server = conn.look()?;
                let source = wanted.pick(&server)?.clone();
                let stream = record(&source)?;
                Ok((conn, source, stream))
            };
            let (mut conn, mut source, mut stream) = match start() {
                Ok(s) => s,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let (capture, closed, flags) = Capture::fed_by_thread(
                source.name.clone(),
                describe(&source),
                source.kind == Kind::Monitor,
                super::DEFAULT_RATE,
                source.channels.into(),
            );
            if opened_tx.send(Ok(capture)).is_err() {
                return;
            }
            let fail = |e: String| {
                let _ = flags.error.set(e);
                reader.unpark();
            };
            let mut bytes = vec![0u8; READ_FRAMES * 4];
            // Until the `Capture` is dropped (its sender with it).
            while let Err(mpsc::TryRecvError::Empty) = closed.try_recv() {
                if let Err(e) = stream.read(&mut bytes) {
                    return fail(format!(
                        "the sound server stopped sending {:?}: {}",
                        source.name,
                        e.to_string().unwrap_or_default()
                    ));
                }
                flags.callbacks.fetch_add(1, Ordering::Relaxed);
                let mut lost = 0u64;
                for b in bytes.chunks_exact(4) {
                    if ring.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).is_err() {
                        lost += 1;
                    }
                }
                if lost > 0 {
                    flags.overruns.fetch_add(lost, Ordering::Relaxed);
                }
                reader.unpark();
                match conn.changes() {
                    Err(e) => return fail(e),
                    Ok(false) => {}
                    Ok(true) => {
                        let next = match conn.look().and_then(|s| wanted.pick(&s).cloned()) {
                            Ok(n) => n,
                            Err(e) => return fail(e),
                        };
                        if next.name != source.name {
                            tracing::info!(device = %next.name, "the default output changed: capturing {}", describe(&next));
                            // The old stream goes before the new one opens: one stream at a time.
                            drop(stream);
                            stream = match record(&next) {
                                Ok(s) => s,
                                Err(e) => return fail(e),
                            };
                            flags.rename(next.name.clone(), describe(&next));
                            source = next;
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, description: &str, output: Option<&str>, default: bool) -> Source {
        Source {
            name: name.into(),
            description: description.into(),
            kind: if output.is_some() {
                Kind::Monitor
            } else {
                Kind::Input
            },
            output: output.map(str::to_string),
            default,
            channels: 2,
            rate: 44_100,
        }
    }

    fn server() -> Server {
        Server {
            name: "pulseaudio".into(),
            sources: vec![
                source(
                    "alsa_output.hdmi.monitor",
                    "Monitor of HDMI",
                    Some("HDMI"),
                    false,
                ),
                source(
                    "alsa_output.analog.monitor",
                    "Monitor of Built-in Audio Analog Stereo",
                    Some("Built-in Audio Analog Stereo"),
                    true,
                ),
                source(
                    "alsa_input.analog",
                    "Built-in Audio Analog Stereo",
                    None,
                    true,
                ),
            ],
        }
    }

    #[test]
    fn system_is_the_default_outputs_monitor() {
        let s = server();
        let system = Wanted::System.pick(&s).unwrap();
        assert_eq!(system.name, "alsa_output.analog.monitor");
        assert_eq!(
            describe(system),
            "what plays on 'Built-in Audio Analog Stereo'"
        );
    }

    #[test]
    fn a_source_is_found_by_exact_name_or_description_before_a_substring() {
        let s = server();
        // The input's description is exactly this; the monitor's only contains it.
        let named = Wanted::Named("built-in audio analog stereo".into());
        assert_eq!(named.pick(&s).unwrap().name, "alsa_input.analog");
        assert_eq!(
            Wanted::Named("hdmi".into()).pick(&s).unwrap().kind,
            Kind::Monitor
        );
        let err = Wanted::Named("usb mic".into()).pick(&s).unwrap_err();
        assert!(
            err.contains("\"usb mic\"") && err.contains("\"Monitor of HDMI\""),
            "{err}"
        );
    }

    #[test]
    fn no_default_output_is_said() {
        let s = Server {
            name: "pulseaudio".into(),
            sources: vec![],
        };
        let err = Wanted::System.pick(&s).unwrap_err();
        assert!(err.contains("no default output"), "{err}");
    }
}
