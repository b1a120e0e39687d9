//! The show recording format that `vj-status record` writes and `vj-status replay` reads: an
//! open one other tools read without us.
//!
//! - The file is a zstd stream (RFC 8878; `zstd -d` unpacks it). Uncompressed, it is an OSC 1.1
//!   stream: each packet framed by SLIP (RFC 1055) with an END byte (0xC0) before and after it.
//! - Every packet is an OSC bundle whose timetag is the NTP time the messages inside were sent
//!   (their arrival at the OSC debugger, on the same machine); bundles follow in time order.
//! - The first bundle holds one message, `/vj/recording` `,isss`: the format version (1), the
//!   suite's name and version, the address prefixes recorded (space-separated; "" = all), and
//!   the config in effect as TOML text. `/vj/recording/missed` `,i` marks messages the debugger
//!   lost before the recorder read them. Neither is ever replayed.
//!
//! Only the framing is written here (SLIP is twenty lines, and a reader must know the byte where
//! damage starts, which the SLIP crates do not say); the OSC codec is `rosc`'s and the
//! compression `zstd`'s. Nothing here does I/O of its own: it reads a `Read` and writes a
//! `Write`, so the fuzzer and the tests feed it bytes.

use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime, OscType};

/// The header message's address.
pub const HEADER_ADDRESS: &str = "/vj/recording";
/// Marks `n` messages the recorder never got (`,i n`), at the time it noticed.
pub const MISSED_ADDRESS: &str = "/vj/recording/missed";
/// The format version in the header.
pub const FORMAT_VERSION: i32 = 1;
/// zstd level 1, its fastest: on the demo loop's OSC (floats, little long-range repetition) it
/// also compresses best of 1, 3, 9 and 19 (docs/BENCHMARKS.md), and a frame a second costs
/// nothing against one frame for the whole file.
pub const ZSTD_LEVEL: i32 = 1;

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;
/// zstd frames start with these bytes (RFC 8878 3.1.1); a file without them is read as plain
/// SLIP, so a stream another tool wrote uncompressed replays too.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// No packet the suite sends comes near this; garbage without an END byte stops here instead of
/// filling memory.
pub const MAX_PACKET: usize = 1 << 20;
/// How much of the file is read at a time.
const READ_CHUNK: usize = 4096;

/// What a recording says of itself in its first bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `vj-suite 0.1.0`.
    pub suite: String,
    /// The address prefixes recorded; empty: every address.
    pub prefixes: Vec<String>,
    /// The config in effect when the recording started, TOML.
    pub config: String,
    /// When it started.
    pub started: OscTime,
}

impl Header {
    pub fn to_message(&self) -> OscMessage {
        OscMessage {
            addr: HEADER_ADDRESS.into(),
            args: vec![
                OscType::Int(FORMAT_VERSION),
                OscType::String(self.suite.clone()),
                OscType::String(self.prefixes.join(" ")),
                OscType::String(self.config.clone()),
            ],
        }
    }

    /// The header in an entry, if it is one.
    pub fn from_entry(entry: &Entry) -> Option<Header> {
        let m = entry.messages.first()?;
        match (m.addr.as_str(), m.args.as_slice()) {
            (
                HEADER_ADDRESS,
                [OscType::Int(_), OscType::String(suite), OscType::String(prefixes), OscType::String(config), ..],
            ) => Some(Header {
                suite: suite.clone(),
                prefixes: prefixes.split_whitespace().map(str::to_string).collect(),
                config: config.clone(),
                started: entry.time,
            }),
            _ => None,
        }
    }
}

/// One bundle of a recording: the messages sent at `time`, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub time: OscTime,
    pub messages: Vec<OscMessage>,
}

impl Entry {
    /// The recording's own notes (header, missed marks), which a replay does not send.
    pub fn is_note(&self) -> bool {
        self.messages.iter().all(|m| is_note(&m.addr))
    }
}

/// An address the recorder writes about the recording itself.
pub fn is_note(address: &str) -> bool {
    address == HEADER_ADDRESS || address.starts_with("/vj/recording/")
}

/// The NTP time of a wall-clock instant ("immediately" if it cannot be told).
pub fn osc_time(t: SystemTime) -> OscTime {
    OscTime::try_from(t).unwrap_or(OscTime {
        seconds: 0,
        fractional: 1,
    })
}

/// A timetag as 64-bit NTP fixed point, for exact differences.
fn ntp64(t: OscTime) -> u64 {
    (u64::from(t.seconds) << 32) | u64::from(t.fractional)
}

/// How long after `origin` `t` is (`None` if it is before it).
pub fn offset(t: OscTime, origin: OscTime) -> Option<Duration> {
    let d = ntp64(t).checked_sub(ntp64(origin))?;
    let nanos = (u128::from(d) * 1_000_000_000) >> 32;
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// OSC's "immediately" (no time of its own).
fn is_immediate(t: OscTime) -> bool {
    t.seconds == 0 && t.fractional <= 1
}

/// Appends `packet` SLIP-framed: END, the bytes with END and ESC escaped, END (OSC 1.1's
/// "double END", so a reader that joins mid-stream resynchronises at once).
pub fn slip_frame(packet: &[u8], out: &mut Vec<u8>) {
    out.reserve(packet.len() + 2);
    out.push(END);
    for &b in packet {
        match b {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            b => out.push(b),
        }
    }
    out.push(END);
}

/// Writes a recording: the header first, then one bundle per [`Writer::write`], through zstd.
/// [`Writer::flush`] ends the zstd frame (with its checksum) and starts the next: everything
/// so far is then readable and verifiable on its own, so a recorder killed later, or bytes
/// damaged later in the file, lose only what came after. [`Writer::finish`] ends the stream.
pub struct Writer<W: Write> {
    /// Always `Some` between calls (taken only to end a frame).
    out: Option<zstd::stream::write::Encoder<'static, W>>,
    buf: Vec<u8>,
    /// SLIP bytes before compression, in all and in the open frame.
    raw: u64,
    frame_raw: u64,
}

fn frame_encoder<W: Write>(out: W) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut e = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    // The reader releases a frame's bytes only once its checksum matched: damaged bytes that
    // would decompress into plausible messages are never replayed.
    e.include_checksum(true)?;
    Ok(e)
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Self> {
        let mut w = Writer {
            out: Some(frame_encoder(out)?),
            buf: Vec::with_capacity(4096),
            raw: 0,
            frame_raw: 0,
        };
        w.write(header.started, vec![header.to_message()])?;
        Ok(w)
    }

    fn encoder(&mut self) -> io::Result<&mut zstd::stream::write::Encoder<'static, W>> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the recording failed to start a zstd frame"))
    }

    /// Appends one bundle: `messages` sent at `time`.
    pub fn write(&mut self, time: OscTime, messages: Vec<OscMessage>) -> io::Result<()> {
        let bundle = OscPacket::Bundle(OscBundle {
            timetag: time,
            content: messages.into_iter().map(OscPacket::Message).collect(),
        });
        let bytes = encoder::encode(&bundle)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        slip_frame(&bytes, &mut buf);
        self.raw += buf.len() as u64;
        self.frame_raw += buf.len() as u64;
        let written = self.encoder()?.write_all(&buf);
        self.buf = buf;
        written
    }

    /// Uncompressed bytes so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw
    }

    /// Ends the zstd frame, if anything is in it, hands it to the file and opens the next.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.frame_raw == 0 {
            return Ok(());
        }
        let done = self.out.take().map(|e| e.finish()).transpose()?;
        if let Some(mut file) = done {
            file.flush()?;
            self.out = Some(frame_encoder(file)?);
        }
        self.frame_raw = 0;
        Ok(())
    }

    /// Ends the last zstd frame and gives the file back.
    pub fn finish(mut self) -> io::Result<W> {
        match self.out.take() {
            Some(e) => e.finish(),
            None => Err(io::Error::other(
                "the recording failed to start a zstd frame",
            )),
        }
    }
}

/// Where and why a recording could not be read further. Everything before it was read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Damage {
    /// Byte offset in the file as stored where reading stopped; everything before it was read.
    /// In a plain file, the start of the packet that could not be read; in a compressed one, the
    /// start of the zstd frame that could not be (corrupt, or cut short by the file's end).
    pub offset: u64,
    pub compressed: bool,
    /// Byte offset in the SLIP stream (after decompression) where reading stopped.
    pub slip_offset: u64,
    pub reason: String,
}

impl Damage {
    fn describe(&self) -> String {
        if self.compressed {
            format!(
                "stopped at byte {} of the file (of the zstd-compressed stream; byte {} of the \
                 SLIP stream inside): {}",
                self.offset, self.slip_offset, self.reason
            )
        } else {
            format!(
                "stopped at byte {} of the file: {}",
                self.offset, self.reason
            )
        }
    }
}

/// A frame this large is passed on before its checksum is seen (a file another tool compressed
/// as one frame); the recorder's frames hold a second each, some 100 KB.
const VERIFY_UP_TO: usize = 8 << 20;

/// The zstd side of a compressed recording: decompresses frame by frame and releases a frame's
/// bytes only once its checksum matched.
struct Unzstd<R> {
    file: R,
    decoder: zstd::stream::raw::Decoder<'static>,
    input: Vec<u8>,
    pos: usize,
    /// Bytes of the file read so far.
    read: u64,
    eof: bool,
    /// The frame being decompressed: where it starts in the file, what it gave so far.
    frame_start: u64,
    frame: Vec<u8>,
    /// Inside a frame that has not ended yet.
    open: bool,
    /// Where the frame whose bytes were released last starts.
    released_from: u64,
}

/// Why a compressed file cannot be read further, and from which byte of the file.
struct ZstdDamage {
    at: u64,
    reason: String,
}

impl<R: Read> Unzstd<R> {
    fn new(file: R, head: Vec<u8>) -> io::Result<Self> {
        Ok(Unzstd {
            file,
            decoder: zstd::stream::raw::Decoder::new()?,
            read: head.len() as u64,
            input: head,
            pos: 0,
            eof: false,
            frame_start: 0,
            frame: Vec::new(),
            open: false,
            released_from: 0,
        })
    }

    /// The file offset of the next byte the decoder has not taken.
    fn at(&self) -> u64 {
        self.read - (self.input.len() - self.pos) as u64
    }

    /// The next verified bytes into `out` (emptied first); `Ok(false)` at a clean end.
    fn fill(&mut self, out: &mut Vec<u8>) -> Result<bool, ZstdDamage> {
        use zstd::stream::raw::Operation;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if self.pos == self.input.len() && !self.eof {
                self.input.resize(READ_CHUNK, 0);
                let n = read_some(&mut self.file, &mut self.input).map_err(|e| ZstdDamage {
                    at: self.frame_start,
                    reason: format!("cannot read it: {e}"),
                })?;
                self.input.truncate(n);
                self.pos = 0;
                self.read += n as u64;
                self.eof = n == 0;
            }
            let status = self
                .decoder
                .run_on_buffers(&self.input[self.pos..], &mut chunk)
                .map_err(|e| ZstdDamage {
                    at: self.frame_start,
                    reason: format!("the zstd frame there is corrupt ({e})"),
                })?;
            self.pos += status.bytes_read;
            self.frame.extend_from_slice(&chunk[..status.bytes_written]);
            let moved = status.bytes_read > 0 || status.bytes_written > 0;
            if moved && status.remaining == 0 {
                // A frame ended and its checksum matched: its bytes are good.
                self.open = false;
                self.released_from = self.frame_start;
                self.frame_start = self.at();
                std::mem::swap(out, &mut self.frame);
                self.frame.clear();
                if !out.is_empty() {
                    return Ok(true);
                }
                continue;
            }
            self.open |= moved;
            if self.frame.len() > VERIFY_UP_TO {
                self.released_from = self.frame_start;
                std::mem::swap(out, &mut self.frame);
                self.frame.clear();
                return Ok(true);
            }
            if self.eof && self.pos == self.input.len() && !moved {
                return if self.open {
                    Err(ZstdDamage {
                        at: self.frame_start,
                        reason: format!(
                            "the file ends at byte {} inside that zstd frame (cut short, or \
                             the recorder was killed before it finished)",
                            self.read
                        ),
                    })
                } else {
                    Ok(false)
                };
            }
        }
    }
}

/// The bytes of the file, decompressed when they are zstd.
enum Source<R> {
    Plain(R),
    Zstd(Box<Unzstd<R>>),
}

/// Reads a recording entry by entry (an iterator); the first error is the last item.
pub struct Reader<R: Read> {
    source: Source<R>,
    /// Decompressed bytes waiting for the SLIP decoder.
    data: Vec<u8>,
    data_pos: usize,
    /// Decompressed bytes handed to the SLIP decoder before `data`.
    slip_pos: u64,
    /// The packet being unframed and where it started in the SLIP stream.
    packet: Vec<u8>,
    packet_start: u64,
    escaped: bool,
    /// The time of the last bundle (a bare message, or "immediately", keeps it).
    last_time: OscTime,
    done: bool,
}

impl<R: Read> Reader<R> {
    /// Opens a recording: zstd-compressed (what `record` writes) or plain SLIP.
    pub fn new(mut file: R) -> Result<Self, Damage> {
        let mut head = Vec::with_capacity(4);
        let damage = |reason: String| Damage {
            offset: 0,
            compressed: false,
            slip_offset: 0,
            reason,
        };
        (&mut file)
            .take(4)
            .read_to_end(&mut head)
            .map_err(|e| damage(format!("cannot read it: {e}")))?;
        // Neither zstd nor a stream of OSC packets (END, or a bundle or message right away).
        if !head.is_empty() && head != ZSTD_MAGIC && ![END, b'#', b'/'].contains(&head[0]) {
            return Err(damage(
                "not a show recording: it starts with neither zstd's magic number nor SLIP-framed \
                 OSC"
                .into(),
            ));
        }
        let (source, data) = if head == ZSTD_MAGIC {
            let unzstd = Unzstd::new(file, head)
                .map_err(|e| damage(format!("cannot start the zstd decoder: {e}")))?;
            (Source::Zstd(Box::new(unzstd)), Vec::new())
        } else {
            (Source::Plain(file), head)
        };
        Ok(Reader {
            source,
            data,
            data_pos: 0,
            slip_pos: 0,
            packet: Vec::new(),
            packet_start: 0,
            escaped: false,
            last_time: OscTime {
                seconds: 0,
                fractional: 1,
            },
            done: false,
        })
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self.source, Source::Zstd(_))
    }

    /// Damage in the packet being read (bad SLIP, not OSC, cut inside it).
    fn damage(&mut self, reason: impl Into<String>) -> Damage {
        self.done = true;
        let (offset, compressed) = match &self.source {
            // A plain file is the SLIP stream: the packet that could not be read starts there.
            Source::Plain(_) => (self.packet_start, false),
            Source::Zstd(z) => (z.released_from, true),
        };
        Damage {
            offset,
            compressed,
            slip_offset: self.packet_start,
            reason: reason.into(),
        }
    }

    /// More bytes for the SLIP decoder; `Ok(false)` at a clean end of the file.
    fn fill(&mut self) -> Result<bool, Damage> {
        self.slip_pos += self.data.len() as u64;
        self.data.clear();
        self.data_pos = 0;
        match &mut self.source {
            Source::Plain(file) => {
                self.data.resize(READ_CHUNK, 0);
                match read_some(file, &mut self.data) {
                    Ok(n) => {
                        self.data.truncate(n);
                        Ok(n > 0)
                    }
                    Err(e) => Err(self.damage(format!("cannot read it: {e}"))),
                }
            }
            Source::Zstd(z) => match z.fill(&mut self.data) {
                Ok(more) => Ok(more),
                Err(ZstdDamage { at, reason }) => {
                    self.done = true;
                    Err(Damage {
                        offset: at,
                        compressed: true,
                        slip_offset: self.slip_pos,
                        reason,
                    })
                }
            },
        }
    }

    /// The next complete SLIP packet.
    fn next_packet(&mut self) -> Option<Result<Vec<u8>, Damage>> {
        loop {
            if self.data_pos == self.data.len() {
                match self.fill() {
                    Ok(true) => continue,
                    Ok(false) if self.packet.is_empty() && !self.escaped => return None,
                    Ok(false) => {
                        return Some(Err(self.damage(
                            "the file ends inside a packet (cut short, or the recorder was \
                             killed before it finished)",
                        )))
                    }
                    Err(d) => return Some(Err(d)),
                }
            }
            let at = self.slip_pos + self.data_pos as u64;
            let b = self.data[self.data_pos];
            self.data_pos += 1;
            if self.packet.is_empty() && !self.escaped {
                self.packet_start = at;
            }
            match (self.escaped, b) {
                (false, END) if self.packet.is_empty() => continue,
                (false, END) => return Some(Ok(std::mem::take(&mut self.packet))),
                (false, ESC) => self.escaped = true,
                (false, b) => self.packet.push(b),
                (true, ESC_END) => {
                    self.escaped = false;
                    self.packet.push(END);
                }
                (true, ESC_ESC) => {
                    self.escaped = false;
                    self.packet.push(ESC);
                }
                (true, b) => {
                    return Some(Err(self.damage(format!(
                        "a bad SLIP escape (0xDB then 0x{b:02X}) at byte {} of the SLIP stream",
                        at - 1
                    ))))
                }
            }
            if self.packet.len() > MAX_PACKET {
                return Some(Err(self.damage(format!(
                    "a packet longer than {MAX_PACKET} bytes (no SLIP END): not a recording"
                ))));
            }
        }
    }
}

/// Reads until `buf` has something or the file ends; interrupted reads are retried.
fn read_some(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Entry, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let packet = match self.next_packet()? {
            Ok(p) => p,
            Err(d) => return Some(Err(d)),
        };
        let decoded = match rosc::decoder::decode_udp(&packet) {
            Ok(([], p)) => p,
            Ok((rest, _)) => {
                return Some(Err(
                    self.damage(format!("{} stray bytes after an OSC packet", rest.len()))
                ))
            }
            Err(e) => return Some(Err(self.damage(format!("not an OSC packet ({e:?})")))),
        };
        let time = match &decoded {
            OscPacket::Bundle(b) if !is_immediate(b.timetag) => b.timetag,
            _ => self.last_time,
        };
        self.last_time = time;
        let mut messages = Vec::new();
        flatten(decoded, &mut messages);
        Some(Ok(Entry { time, messages }))
    }
}

fn flatten(p: OscPacket, out: &mut Vec<OscMessage>) {
    match p {
        OscPacket::Message(m) => out.push(m),
        OscPacket::Bundle(b) => b.content.into_iter().for_each(|p| flatten(p, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header() -> Header {
        Header {
            suite: "vj-suite 0.1.0".into(),
            prefixes: vec!["/audio/".into()],
            config: "[osc]\ntargets = []\n".into(),
            started: OscTime {
                seconds: 3_974_000_000,
                fractional: 0,
            },
        }
    }

    fn msg(addr: &str, i: i32) -> OscMessage {
        OscMessage {
            addr: addr.into(),
            args: vec![OscType::Int(i), OscType::Float(0.25)],
        }
    }

    /// A recording of `n` bundles 11.6 ms apart, two messages each, the second carrying bytes
    /// SLIP must escape.
    fn recording(n: u32) -> (Vec<u8>, Vec<Entry>) {
        let h = sample_header();
        let mut w = Writer::new(Vec::new(), &h).unwrap();
        let mut entries = Vec::new();
        for i in 0..n {
            let time = OscTime {
                seconds: h.started.seconds + 1 + i / 86,
                fractional: (i % 86) * 49_941_480,
            };
            let messages = vec![
                msg("/audio/beat", i as i32),
                OscMessage {
                    addr: "/karaoke/lyrics/line".into(),
                    args: vec![
                        OscType::String("\u{c0}\u{db} é".into()),
                        OscType::Blob(vec![END, ESC, 0]),
                    ],
                },
            ];
            w.write(time, messages.clone()).unwrap();
            entries.push(Entry { time, messages });
            // A frame per second, as the recorder makes them.
            if i % 86 == 85 {
                w.flush().unwrap();
            }
        }
        (w.finish().unwrap(), entries)
    }

    fn read_all(bytes: &[u8]) -> (Option<Header>, Vec<Entry>, Option<Damage>) {
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(d) => return (None, Vec::new(), Some(d)),
        };
        let mut entries = Vec::new();
        let mut damage = None;
        for e in &mut r {
            match e {
                Ok(e) => entries.push(e),
                Err(d) => damage = Some(d),
            }
        }
        let header = entries.first().and_then(Header::from_entry);
        if header.is_some() {
            entries.remove(0);
        }
        (header, entries, damage)
    }

    #[test]
    fn what_is_written_reads_back_with_its_header() {
        let (bytes, written) = recording(500);
        assert_eq!(&bytes[..4], ZSTD_MAGIC);
        let (header, read, damage) = read_all(&bytes);
        assert_eq!(header, Some(sample_header()));
        assert!(read == written);
        assert_eq!(damage, None);
    }

    #[test]
    fn the_uncompressed_stream_is_slip_framed_bundles() {
        let (bytes, written) = recording(3);
        let plain = zstd::stream::decode_all(&bytes[..]).unwrap();
        // What another tool sees after `zstd -d`: END, a bundle, END, END, a bundle, END...
        assert_eq!(plain[0], END);
        assert_eq!(&plain[1..8], b"#bundle");
        assert_eq!(*plain.last().unwrap(), END);
        let packets: Vec<&[u8]> = plain
            .split(|&b| b == END)
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(packets.len(), 4, "the header and three bundles");
        // And the plain stream reads back as it is.
        let (header, read, damage) = read_all(&plain);
        assert!(header.is_some());
        assert!(read == written);
        assert_eq!(damage, None);
    }

    #[test]
    fn a_cut_file_reads_up_to_the_cut_and_says_where() {
        let (bytes, written) = recording(3000);
        let mut last = 0;
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
            let (_, read, damage) = read_all(&bytes[..cut]);
            let damage = damage.expect("a cut file is damage");
            assert!(damage.offset < cut as u64, "{damage}");
            assert!(damage.compressed);
            assert!(
                damage.reason.contains(&format!("ends at byte {cut} ")),
                "{damage}"
            );
            assert!(read[..] == written[..read.len()], "a prefix, in order");
            // Every whole frame before the cut: the next frame starts where the damage is said.
            let (_, rest, _) = read_all(&bytes[damage.offset as usize..]);
            assert!(
                rest.len() + read.len() >= written.len(),
                "frames start there"
            );
            assert!(read.len() >= last, "more of the file, more entries");
            last = read.len();
        }
        assert!(last > 0);
    }

    #[test]
    fn a_corrupt_file_stops_near_the_damage() {
        let (bytes, written) = recording(3000);
        let at = bytes.len() / 2;
        let mut bad = bytes.clone();
        for b in &mut bad[at..at + 64] {
            *b ^= 0x5A;
        }
        let (_, read, damage) = read_all(&bad);
        let damage = damage.expect("corruption is found");
        assert!(damage.offset <= at as u64, "{damage}");
        assert!(damage.offset + 64 * 1024 > at as u64, "{damage}");
        assert!(read.len() < written.len() && !read.is_empty());
        assert!(read[..] == written[..read.len()], "only what is intact");
    }

    #[test]
    fn a_plain_stream_names_the_exact_byte() {
        let mut plain = Vec::new();
        slip_frame(b"#bundle\0", &mut plain);
        let (_, _, damage) = read_all(&plain);
        let damage = damage.unwrap();
        assert!(!damage.compressed);
        assert!(damage.reason.contains("not an OSC packet"), "{damage}");
        // A bad escape, the second packet.
        let mut plain = Vec::new();
        let packet = encoder::encode(&OscPacket::Message(msg("/a", 1))).unwrap();
        slip_frame(&packet, &mut plain);
        let start = plain.len();
        plain.extend_from_slice(&[END, b'x', ESC, b'y', END]);
        let (_, read, damage) = read_all(&plain);
        assert_eq!(read.len(), 1);
        let damage = damage.unwrap();
        assert_eq!(damage.slip_offset, start as u64 + 1, "{damage}");
        assert!(
            damage.reason.contains(&format!("at byte {} ", start + 2)),
            "{damage}"
        );
    }

    #[test]
    fn a_stream_other_tools_wrote_reads_too() {
        // Written by a few lines of Python (SLIP and OSC by hand), compressed by the zstd CLI as
        // one frame: the header, 40 frames of /audio/levels and /audio/beat, a missed mark, a
        // lyric line with bytes SLIP escapes.
        let file = include_bytes!("../../fuzz/regressions/recording/recording.osc.zst");
        let (header, read, damage) = read_all(file);
        assert_eq!(damage, None);
        assert_eq!(header.unwrap().prefixes, ["/audio/"]);
        assert_eq!(read.len(), 42);
        assert!(read[40].is_note());
        assert_eq!(read[0].messages[0].addr, "/audio/levels");
        assert_eq!(
            read[41].messages[0].args[2],
            OscType::String("\u{c0}\u{db} café".into())
        );
        assert_eq!(
            offset(read[1].time, read[0].time),
            Some(Duration::from_nanos(11_627_906))
        );
    }

    #[test]
    fn offsets_are_exact_in_ntp_fixed_point() {
        let t0 = OscTime {
            seconds: 10,
            fractional: 0,
        };
        let t = OscTime {
            seconds: 11,
            fractional: 1 << 31,
        };
        assert_eq!(offset(t, t0), Some(Duration::from_millis(1500)));
        assert_eq!(offset(t0, t), None);
    }

    #[test]
    fn garbage_is_damage_not_a_panic() {
        for bad in [
            &b""[..],
            b"\xC0",
            b"\x28\xB5\x2F\xFD",
            b"\x28\xB5\x2F\xFDgarbage",
            b"\xC0\xDB",
            b"no END at all",
        ] {
            let (_, read, _) = read_all(bad);
            assert!(read.is_empty());
        }
        let mut long = vec![0u8; MAX_PACKET + 10];
        long[0] = END;
        assert!(read_all(&long).2.unwrap().reason.contains("longer"));
        let not = read_all(b"root:x:0:0:root:/root:/bin/bash\n").2.unwrap();
        assert!(not.reason.contains("not a show recording"), "{not}");
    }
}
