//! What the debugger remembers: the last `capacity` messages, per-address counts, rates and last
//! values, and malformed packets (counted, the latest kept as a hex sample).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::osc::{decode, CapturedMessage};
use crate::service::files::hex_string;

/// Rates are counted over windows of this length.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// An address silent for this long has a rate of 0.
const RATE_STALE: Duration = Duration::from_secs(2);
/// Malformed samples are cut to this many bytes (the hex is twice as long).
const SAMPLE_BYTES: usize = 256;
/// Per-address figures kept at most (any local sender can invent addresses); past it the
/// addresses heard from longest ago are forgotten and counted.
pub const MAX_ADDRESSES: usize = 4096;

/// One received message, numbered in arrival order.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Arrival number, from 1; `get_messages {since}` asks for what came after one.
    pub seq: u64,
    /// Wall-clock arrival time, seconds since 1970, to the microsecond (a recording's timetags
    /// come from it).
    pub time: f64,
    #[serde(flatten)]
    pub message: CapturedMessage,
}

#[derive(Debug)]
struct AddressStats {
    count: u64,
    types: String,
    last: Vec<Value>,
    last_seen: Instant,
    window_start: Instant,
    window_count: u64,
    rate_hz: f64,
}

impl AddressStats {
    fn new(now: Instant) -> Self {
        AddressStats {
            count: 0,
            types: String::new(),
            last: Vec::new(),
            last_seen: now,
            window_start: now,
            window_count: 0,
            rate_hz: 0.0,
        }
    }

    fn record(&mut self, msg: &CapturedMessage, now: Instant) {
        self.count += 1;
        self.window_count += 1;
        let elapsed = now.duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.rate_hz = self.window_count as f64 / elapsed.as_secs_f64();
            self.window_start = now;
            self.window_count = 0;
        }
        self.last_seen = now;
        self.types.clone_from(&msg.types);
        self.last.clone_from(&msg.args);
    }

    fn rate(&self, now: Instant) -> f64 {
        if now.duration_since(self.last_seen) > RATE_STALE {
            0.0
        } else {
            (self.rate_hz * 10.0).round() / 10.0
        }
    }
}

/// What a subscription sends next (see [`OscCapture::after`]).
#[derive(Debug)]
pub struct Batch<'a> {
    pub messages: Vec<&'a Received>,
    /// The sequence number the next batch starts after.
    pub cursor: u64,
    /// Messages after the cursor that the ring no longer holds.
    pub missed: u64,
}

/// The debugger's memory.
#[derive(Debug)]
pub struct OscCapture {
    capacity: usize,
    ring: VecDeque<Received>,
    addresses: HashMap<String, AddressStats>,
    /// Addresses forgotten to keep at most [`MAX_ADDRESSES`].
    addresses_dropped: u64,
    next_seq: u64,
    packets: u64,
    bytes: u64,
    malformed: u64,
    malformed_sample: Option<Value>,
}

impl OscCapture {
    pub fn new(capacity: usize) -> Self {
        OscCapture {
            capacity: capacity.max(1),
            ring: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            addresses: HashMap::new(),
            addresses_dropped: 0,
            next_seq: 1,
            packets: 0,
            bytes: 0,
            malformed: 0,
            malformed_sample: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps the newest `capacity` messages.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.ring.len() > self.capacity {
            self.ring.pop_front();
        }
        self.ring.shrink_to(self.capacity);
    }

    /// Takes one datagram; a malformed one is counted and sampled, never an error.
    pub fn record(&mut self, datagram: &[u8], now: Instant) {
        self.packets += 1;
        self.bytes += datagram.len() as u64;
        match decode(datagram) {
            Ok(messages) => {
                let time = unix_now();
                for message in messages {
                    // Look up before inserting: no key allocation for an address already seen.
                    match self.addresses.get_mut(&message.address) {
                        Some(stats) => stats.record(&message, now),
                        None => {
                            if self.addresses.len() >= MAX_ADDRESSES {
                                self.forget_stalest_addresses();
                            }
                            let mut stats = AddressStats::new(now);
                            stats.record(&message, now);
                            self.addresses.insert(message.address.clone(), stats);
                        }
                    }
                    if self.ring.len() == self.capacity {
                        self.ring.pop_front();
                    } else if self.ring.len() == self.ring.capacity() {
                        // Doubling, but never past the capacity asked for: a ring of 5000
                        // would otherwise hold 8192 slots, and touch them all as it turns.
                        let len = self.ring.len();
                        self.ring.reserve_exact(len.min(self.capacity - len));
                    }
                    self.ring.push_back(Received {
                        seq: self.next_seq,
                        time,
                        message,
                    });
                    self.next_seq += 1;
                }
            }
            Err(e) => {
                self.malformed += 1;
                let cut = &datagram[..datagram.len().min(SAMPLE_BYTES)];
                self.malformed_sample = Some(json!({
                    "time": unix_now(),
                    "len": datagram.len(),
                    "error": e.reason,
                    "hex": hex_string(cut),
                }));
            }
        }
    }

    /// Forgets the eighth of the addresses heard from longest ago: one scan per
    /// `MAX_ADDRESSES / 8` new addresses, so a flood of invented ones stays cheap.
    fn forget_stalest_addresses(&mut self) {
        let mut by_age: Vec<(Instant, &String)> = self
            .addresses
            .iter()
            .map(|(a, s)| (s.last_seen, a))
            .collect();
        let n = (by_age.len() / 8).max(1);
        by_age.select_nth_unstable(n - 1);
        let stale: Vec<String> = by_age[..n].iter().map(|(_, a)| (*a).clone()).collect();
        for a in stale {
            self.addresses.remove(&a);
        }
        self.addresses_dropped += n as u64;
    }

    /// The newest `count` messages (oldest first) whose address starts with `prefix` and that
    /// came after `since`.
    pub fn messages(&self, count: usize, prefix: &str, since: u64) -> Vec<&Received> {
        let mut picked: Vec<&Received> = self
            .ring
            .iter()
            .rev()
            .take_while(|r| r.seq > since)
            .filter(|r| r.message.address.starts_with(prefix))
            .take(count)
            .collect();
        picked.reverse();
        picked
    }

    /// What a subscriber whose cursor is `since` gets next: up to `max` messages after it,
    /// oldest first, whose address starts with `prefix`; the cursor to go on from; and how many
    /// messages after `since` fell out of the ring before it asked. A cursor from beyond the
    /// newest message (a subscriber of an earlier run) starts from the oldest kept.
    pub fn after(&self, since: u64, prefix: &str, max: usize) -> Batch<'_> {
        let since = if since > self.last_seq() { 0 } else { since };
        let oldest = self.ring.front().map_or(self.next_seq, |r| r.seq);
        let missed = oldest.saturating_sub(since + 1);
        let start = self.ring.partition_point(|r| r.seq <= since);
        let mut messages = Vec::new();
        let mut cursor = self.last_seq();
        for r in self.ring.range(start..) {
            if !r.message.address.starts_with(prefix) {
                continue;
            }
            if messages.len() == max {
                cursor = r.seq - 1;
                break;
            }
            messages.push(r);
        }
        Batch {
            messages,
            cursor,
            missed,
        }
    }

    /// Malformed packets so far.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Counters and per-address figures, as `get_stats` reports them.
    pub fn stats(&self, now: Instant) -> Value {
        let mut addresses: Vec<(&String, &AddressStats)> = self.addresses.iter().collect();
        addresses.sort_by(|a, b| a.0.cmp(b.0));
        let per_address: serde_json::Map<String, Value> = addresses
            .into_iter()
            .map(|(addr, s)| {
                (
                    addr.clone(),
                    json!({
                        "count": s.count,
                        "rate_hz": s.rate(now),
                        "types": s.types,
                        "last": s.last,
                        "last_seen_sec_ago":
                            (now.duration_since(s.last_seen).as_secs_f64() * 10.0).round() / 10.0,
                    }),
                )
            })
            .collect();
        json!({
            "packets": self.packets,
            "bytes": self.bytes,
            "messages": self.next_seq - 1,
            "buffered": self.ring.len(),
            "capacity": self.capacity,
            "malformed": self.malformed,
            "malformed_sample": self.malformed_sample,
            "addresses": per_address,
            "addresses_dropped": self.addresses_dropped,
        })
    }

    /// Small counters for heartbeats.
    pub fn counters(&self) -> Value {
        json!({
            "packets": self.packets,
            "messages": self.next_seq - 1,
            "malformed": self.malformed,
            "addresses": self.addresses.len(),
            "addresses_dropped": self.addresses_dropped,
        })
    }

    /// Forgets everything but the capacity; numbering goes on so followers are not confused.
    pub fn clear(&mut self) {
        self.ring.clear();
        self.addresses.clear();
        self.addresses_dropped = 0;
        self.packets = 0;
        self.bytes = 0;
        self.malformed = 0;
        self.malformed_sample = None;
    }

    /// Newest sequence number handed out (0 before the first message).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

fn unix_now() -> f64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_secs_f64() * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime, OscType};

    fn packet(addr: &str, args: Vec<OscType>) -> Vec<u8> {
        encoder::encode(&OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        }))
        .unwrap()
    }

    #[test]
    fn invented_addresses_are_bounded_and_the_stalest_forgotten() {
        let mut c = OscCapture::new(10);
        let t0 = Instant::now();
        c.record(&packet("/audio/beat", vec![OscType::Int(1)]), t0);
        for i in 0..MAX_ADDRESSES + 1000 {
            let now = t0 + Duration::from_micros(i as u64 + 1);
            c.record(&packet(&format!("/junk/{i}"), vec![]), now);
            if i % 100 == 0 {
                // A live address keeps being heard from, so it is never the stalest.
                c.record(&packet("/audio/beat", vec![OscType::Int(1)]), now);
            }
        }
        let counters = c.counters();
        let (kept, dropped) = (
            counters["addresses"].as_u64().unwrap(),
            counters["addresses_dropped"].as_u64().unwrap(),
        );
        assert!(kept <= MAX_ADDRESSES as u64, "{counters}");
        assert_eq!(kept + dropped, MAX_ADDRESSES as u64 + 1001, "{counters}");
        let stats = c.stats(t0);
        let kept = stats["addresses"].as_object().unwrap();
        assert!(kept.contains_key("/audio/beat"));
        assert!(kept.contains_key(&format!("/junk/{}", MAX_ADDRESSES + 999)));
        assert!(!kept.contains_key("/junk/0"));
    }

    /// Records `/audio/beat 0`, `/audio/beat 1` … up to `n`, one packet each.
    fn record_beats(c: &mut OscCapture, n: i32, now: Instant) {
        for i in 0..n {
            c.record(&packet("/audio/beat", vec![OscType::Int(i)]), now);
        }
    }

    #[test]
    fn keeps_only_the_newest_capacity_messages() {
        let mut c = OscCapture::new(3);
        let now = Instant::now();
        record_beats(&mut c, 5, now);
        let got = c.messages(10, "", 0);
        let ints: Vec<_> = got.iter().map(|r| r.message.args[0].clone()).collect();
        assert_eq!(ints, [json!(2), json!(3), json!(4)]);
        assert_eq!(c.stats(now)["messages"], json!(5));
        assert_eq!(c.stats(now)["addresses"]["/audio/beat"]["count"], json!(5));
    }

    #[test]
    fn the_ring_holds_as_many_slots_as_its_capacity_and_no_more() {
        // 5000 is past the first allocation (4096): doubling would make 8192 slots.
        let mut c = OscCapture::new(5000);
        let now = Instant::now();
        record_beats(&mut c, 6000, now);
        assert_eq!(c.messages(usize::MAX, "", 0).len(), 5000);
        assert_eq!(c.ring.capacity(), 5000);
        c.set_capacity(1000);
        assert_eq!(c.ring.capacity(), 1000);
        c.set_capacity(3000);
        record_beats(&mut c, 3000, now);
        assert_eq!(c.ring.capacity(), 3000);
    }

    #[test]
    fn filters_by_prefix_count_and_since() {
        let mut c = OscCapture::new(100);
        let now = Instant::now();
        for addr in [
            "/audio/levels",
            "/karaoke/pos",
            "/audio/beat",
            "/karaoke/track",
        ] {
            c.record(&packet(addr, vec![]), now);
        }
        let addrs = |v: Vec<&Received>| {
            v.iter()
                .map(|r| r.message.address.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            addrs(c.messages(10, "/karaoke/", 0)),
            ["/karaoke/pos", "/karaoke/track"]
        );
        assert_eq!(addrs(c.messages(1, "/audio/", 0)), ["/audio/beat"]);
        assert_eq!(addrs(c.messages(10, "", 3)), ["/karaoke/track"]);
    }

    #[test]
    fn a_bundle_counts_each_message_inside() {
        let mut c = OscCapture::new(10);
        let b = OscPacket::Bundle(OscBundle {
            timetag: OscTime {
                seconds: 0,
                fractional: 1,
            },
            content: vec![
                OscPacket::Message(OscMessage {
                    addr: "/a".into(),
                    args: vec![OscType::Float(0.5)],
                }),
                OscPacket::Message(OscMessage {
                    addr: "/b".into(),
                    args: vec![],
                }),
            ],
        });
        c.record(&encoder::encode(&b).unwrap(), Instant::now());
        let s = c.stats(Instant::now());
        assert_eq!(s["packets"], json!(1));
        assert_eq!(s["messages"], json!(2));
        assert_eq!(s["addresses"]["/a"]["last"], json!([0.5]));
        assert_eq!(s["addresses"]["/a"]["types"], json!("f"));
    }

    #[test]
    fn malformed_packets_are_counted_with_a_hex_sample() {
        let mut c = OscCapture::new(10);
        c.record(b"\x01\x02not osc", Instant::now());
        c.record(&packet("/ok", vec![]), Instant::now());
        let s = c.stats(Instant::now());
        assert_eq!(s["malformed"], json!(1));
        assert_eq!(s["messages"], json!(1));
        let hex = s["malformed_sample"]["hex"].as_str().unwrap();
        assert!(hex.starts_with("0102"), "{hex}");
    }

    #[test]
    fn rate_follows_the_arrival_rate_and_falls_to_zero_when_silent() {
        let mut c = OscCapture::new(10);
        let t0 = Instant::now();
        // 50 messages, 20 ms apart: 50 Hz.
        for i in 0..=100 {
            c.record(
                &packet("/audio/levels", vec![]),
                t0 + Duration::from_millis(20 * i),
            );
        }
        let at = t0 + Duration::from_millis(2000);
        let rate = c.stats(at)["addresses"]["/audio/levels"]["rate_hz"]
            .as_f64()
            .unwrap();
        assert!((rate - 50.0).abs() < 2.0, "{rate}");
        let later = at + Duration::from_secs(5);
        assert_eq!(
            c.stats(later)["addresses"]["/audio/levels"]["rate_hz"],
            json!(0.0)
        );
    }

    #[test]
    fn clear_forgets_but_numbering_goes_on() {
        let mut c = OscCapture::new(10);
        c.record(&packet("/a", vec![]), Instant::now());
        c.clear();
        assert!(c.messages(10, "", 0).is_empty());
        c.record(&packet("/b", vec![]), Instant::now());
        assert_eq!(c.messages(10, "", 0)[0].seq, 2);
    }

    #[test]
    fn a_subscriber_gets_what_came_after_its_cursor_oldest_first() {
        let mut c = OscCapture::new(4);
        let now = Instant::now();
        for addr in ["/a", "/b", "/a", "/b", "/a", "/b"] {
            c.record(&packet(addr, vec![]), now);
        }
        // Seqs 3..=6 are kept; a cursor at 1 missed seq 2.
        let b = c.after(1, "", 10);
        let seqs: Vec<u64> = b.messages.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, b.cursor, b.missed), (vec![3, 4, 5, 6], 6, 1));
        let b = c.after(3, "/a", 10);
        let seqs: Vec<u64> = b.messages.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, b.cursor, b.missed), (vec![5], 6, 0));
        // At most `max`: the cursor stops where the next batch goes on.
        let b = c.after(2, "", 2);
        let seqs: Vec<u64> = b.messages.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, b.cursor), (vec![3, 4], 4));
        assert!(c.after(6, "", 10).messages.is_empty());
        // A cursor from an earlier run of the debugger: everything kept.
        assert_eq!(c.after(99, "", 10).messages.len(), 4);
    }

    #[test]
    fn shrinking_capacity_drops_the_oldest() {
        let mut c = OscCapture::new(10);
        for _ in 0..10 {
            c.record(&packet("/a", vec![]), Instant::now());
        }
        c.set_capacity(4);
        let got = c.messages(100, "", 0);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].seq, 7);
    }
}
