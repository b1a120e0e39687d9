//! The suite's OSC namespace as OSCQuery describes it: every `/audio/*` and `/karaoke/*`
//! address of SPEC.md section 4 with its exact type tags, ranges, a description and access,
//! plus the latest value the suite sent to each. Pure data; the HTTP side serializes it.

use std::collections::{BTreeMap, VecDeque};

use rosc::OscMessage;
use serde_json::{json, Map, Value};

use crate::lyrics::moods::MOODS;

/// OSCQuery `ACCESS`: 1 = the value can be read (the suite sends it; nobody sets it here).
pub const READ_ONLY: u8 = 1;

/// The range of one argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// 0..1 (levels, confidences, phases, scores).
    Unit,
    /// 0 or 1 (a beat, a flag).
    Flag,
    /// At least this (an index, a time, a tempo).
    AtLeast(f64),
    /// Between these.
    Between(f64, f64),
    /// Text or unbounded.
    Any,
}

impl Range {
    fn json(self) -> Value {
        match self {
            Range::Unit => json!({"MIN": 0.0, "MAX": 1.0}),
            Range::Flag => json!({"VALS": [0, 1]}),
            Range::AtLeast(min) => json!({ "MIN": min }),
            Range::Between(min, max) => json!({"MIN": min, "MAX": max}),
            Range::Any => json!({}),
        }
    }
}

/// One address of SPEC.md section 4.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub path: String,
    /// The exact OSC type tags (`"ff"`; `""` for a message without arguments).
    pub types: String,
    pub ranges: Vec<Range>,
    pub description: String,
}

fn addr(path: &str, types: &str, ranges: &[Range], description: &str) -> Address {
    debug_assert_eq!(types.len(), ranges.len(), "{path}");
    Address {
        path: path.to_string(),
        types: types.to_string(),
        ranges: ranges.to_vec(),
        description: description.to_string(),
    }
}

/// SPEC.md section 4, address by address.
pub fn spec_addresses() -> Vec<Address> {
    use Range::*;
    let drum = |name: &str| {
        addr(
            &format!("/audio/{name}"),
            "if",
            &[Flag, Unit],
            &format!("musical time, every frame: 1 on the frame of a {name} onset, else 0; strength 0..1"),
        )
    };
    let mut v = vec![
        addr(
            "/audio/levels",
            "ffffffff",
            &[Unit; 8],
            "sub_bass 20-60 Hz, bass 60-250, low_mid 250-500, mid 500-2k, high_mid 2-4k, presence 4-6k, air 6-20k, overall RMS; each 0..1, auto-gained, compressed, smoothed",
        ),
        addr(
            "/audio/spectrum",
            &"f".repeat(32),
            &[Unit; 32],
            "log-spaced magnitude spectrum, 32 bands, 0..1",
        ),
        addr(
            "/audio/beat",
            "if",
            &[Flag, AtLeast(0.0)],
            "1 on the frame of a beat, else 0; onset strength",
        ),
        addr(
            "/audio/bpm",
            "ff",
            &[Between(0.0, 300.0), Unit],
            "tempo in BPM (0 until known), confidence 0..1",
        ),
        addr(
            "/audio/pitch",
            "ff",
            &[AtLeast(0.0), Unit],
            "dominant pitch Hz (0 when unvoiced), confidence 0..1",
        ),
        addr(
            "/audio/structure",
            "iiff",
            &[Flag, Flag, Any, Unit],
            "build-up 0/1, drop 0/1, energy trend, brightness (centroid / Nyquist)",
        ),
        addr(
            "/audio/phase",
            "ffff",
            &[Unit; 4],
            "musical time, every frame: beat phase, bar phase, phrase phase (each 0..1, 0 on the beat / downbeat / phrase start), downbeat confidence 0..1",
        ),
        addr(
            "/audio/count",
            "iii",
            &[AtLeast(1.0), AtLeast(1.0), AtLeast(0.0)],
            "musical time, on each beat only: beat in bar 1..N (1 = downbeat), bar in phrase 1..P, phrases since lock",
        ),
        drum("kick"),
        drum("snare"),
        drum("hat"),
        addr(
            "/karaoke/track",
            "issssfi",
            &[Flag, Any, Any, Any, Any, AtLeast(0.0), Flag],
            "active, source (spotify/virtualdj/...), artist, title, album, duration s, has_lyrics; 0,\"\",\"\",\"\",\"\",0,0 when nothing plays",
        ),
        addr("/karaoke/pos", "fi", &[AtLeast(0.0), Flag], "position s, is_playing"),
    ];
    for part in ["lyrics", "refrain", "keywords"] {
        v.push(addr(
            &format!("/karaoke/{part}/reset"),
            "",
            &[],
            "new song; clear",
        ));
    }
    v.extend([
        addr(
            "/karaoke/lyrics/line",
            "ifs",
            &[AtLeast(0.0), AtLeast(0.0), Any],
            "a lyric line: index, time s, text",
        ),
        addr(
            "/karaoke/refrain/line",
            "ifs",
            &[AtLeast(0.0), AtLeast(0.0), Any],
            "a refrain line: index, time s, text",
        ),
        addr(
            "/karaoke/keywords/line",
            "ifs",
            &[AtLeast(0.0), AtLeast(0.0), Any],
            "a line's keywords: index, time s, keywords",
        ),
        addr(
            "/karaoke/line/active",
            "i",
            &[AtLeast(-1.0)],
            "index of the line being sung (-1 none); sent on change only",
        ),
        addr(
            "/karaoke/refrain/active",
            "is",
            &[AtLeast(0.0), Any],
            "refrain index, text",
        ),
        addr(
            "/karaoke/keywords/active",
            "is",
            &[AtLeast(-1.0), Any],
            "line index, keywords",
        ),
    ]);
    for mood in MOODS {
        v.push(addr(
            &format!("/karaoke/categories/{mood}"),
            "f",
            &[Unit],
            &format!("score 0..1 of the mood '{mood}' (top moods only)"),
        ));
    }
    v
}

/// Only these prefixes are the suite's telemetry.
pub fn is_telemetry(path: &str) -> bool {
    path.starts_with("/audio/") || path.starts_with("/karaoke/")
}

/// Addresses learned from UDP (telemetry that SPEC's table does not list) kept at most; the
/// oldest is dropped for a new one. Anyone on the machine can send to the OSC input.
pub const MAX_LEARNED: usize = 256;
/// A learned address longer than this, or with more arguments, is not kept (SPEC's longest
/// address is 27 bytes, its widest message 32 arguments).
pub const MAX_LEARNED_PATH: usize = 128;
pub const MAX_LEARNED_ARGS: usize = 64;

/// The namespace with the latest values.
#[derive(Debug)]
pub struct Namespace {
    addresses: BTreeMap<String, Address>,
    values: BTreeMap<String, Vec<Value>>,
    /// Learned addresses, oldest first.
    learned: VecDeque<String>,
    /// Telemetry addresses seen that SPEC's table does not list: served with what they carry.
    pub unlisted: u64,
    /// Learned addresses dropped to keep at most [`MAX_LEARNED`], or not kept at all.
    pub unlisted_dropped: u64,
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace {
            addresses: spec_addresses()
                .into_iter()
                .map(|a| (a.path.clone(), a))
                .collect(),
            values: BTreeMap::new(),
            learned: VecDeque::new(),
            unlisted: 0,
            unlisted_dropped: 0,
        }
    }
}

impl Namespace {
    /// Records a message the suite sent; false if it is not telemetry (ignored).
    pub fn record(&mut self, msg: &OscMessage) -> bool {
        if !is_telemetry(&msg.addr) || msg.addr.ends_with('/') {
            return false;
        }
        if !self.addresses.contains_key(&msg.addr) {
            self.unlisted += 1;
            if msg.addr.len() > MAX_LEARNED_PATH || msg.args.len() > MAX_LEARNED_ARGS {
                self.unlisted_dropped += 1;
                return false;
            }
            if self.learned.len() >= MAX_LEARNED {
                if let Some(old) = self.learned.pop_front() {
                    self.addresses.remove(&old);
                    self.values.remove(&old);
                    self.unlisted_dropped += 1;
                }
            }
            self.learned.push_back(msg.addr.clone());
            let types = crate::osc::type_tags(&msg.args);
            self.addresses.insert(
                msg.addr.clone(),
                Address {
                    path: msg.addr.clone(),
                    ranges: vec![Range::Any; types.len()],
                    types,
                    description: "sent by the suite; not in SPEC.md's table".into(),
                },
            );
        }
        let value = msg.args.iter().map(crate::osc::arg_json).collect();
        self.values.insert(msg.addr.clone(), value);
        true
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// How many addresses were learned from UDP and are kept.
    pub fn learned(&self) -> usize {
        self.learned.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Is `path` an address (a leaf) of the namespace?
    pub fn has_address(&self, path: &str) -> bool {
        self.addresses.contains_key(path)
    }

    fn leaf(&self, a: &Address) -> Value {
        let mut m = Map::new();
        m.insert("FULL_PATH".into(), a.path.clone().into());
        m.insert("TYPE".into(), a.types.clone().into());
        m.insert("ACCESS".into(), READ_ONLY.into());
        m.insert("DESCRIPTION".into(), a.description.clone().into());
        if !a.types.is_empty() {
            m.insert(
                "RANGE".into(),
                Value::Array(a.ranges.iter().map(|r| r.json()).collect()),
            );
        }
        // VALUE only once the suite sent one: nothing is made up.
        if let Some(v) = self.values.get(&a.path) {
            if !v.is_empty() {
                m.insert("VALUE".into(), Value::Array(v.clone()));
            }
        }
        Value::Object(m)
    }

    /// The node at `path` (`/`, `/audio`, `/audio/bpm`) as OSCQuery JSON, `None` if there is
    /// none.
    pub fn node(&self, path: &str) -> Option<Value> {
        let path = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        if let Some(a) = self.addresses.get(path) {
            return Some(self.leaf(a));
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let below: Vec<&Address> = self
            .addresses
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(_, a)| a)
            .collect();
        if below.is_empty() {
            return None;
        }
        let mut contents = Map::new();
        for a in &below {
            let rest = &a.path[prefix.len()..];
            let child = rest.split('/').next().unwrap_or(rest);
            if contents.contains_key(child) {
                continue;
            }
            let child_path = format!("{prefix}{child}");
            if let Some(node) = self.node(&child_path) {
                contents.insert(child.to_string(), node);
            }
        }
        let mut m = Map::new();
        m.insert("FULL_PATH".into(), path.into());
        m.insert("ACCESS".into(), 0.into());
        if path == "/" {
            m.insert(
                "DESCRIPTION".into(),
                "vj-suite: live music described over OSC".into(),
            );
        }
        m.insert("CONTENTS".into(), Value::Object(contents));
        Some(Value::Object(m))
    }

    /// Every address, for `get_state`.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.addresses.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosc::OscType;

    #[test]
    fn every_spec_address_is_there_with_its_exact_types() {
        let ns = Namespace::default();
        let node = |p: &str| ns.node(p).unwrap_or_else(|| panic!("{p}"));
        assert_eq!(node("/audio/levels")["TYPE"], "ffffffff");
        assert_eq!(node("/audio/spectrum")["TYPE"], "f".repeat(32));
        assert_eq!(
            node("/audio/spectrum")["RANGE"].as_array().unwrap().len(),
            32
        );
        assert_eq!(node("/audio/phase")["TYPE"], "ffff");
        assert_eq!(node("/audio/count")["TYPE"], "iii");
        assert_eq!(node("/audio/kick")["TYPE"], "if");
        assert_eq!(node("/karaoke/track")["TYPE"], "issssfi");
        assert_eq!(node("/karaoke/lyrics/reset")["TYPE"], "");
        assert_eq!(node("/karaoke/categories/nostalgic")["TYPE"], "f");
        assert_eq!(node("/audio/bpm")["ACCESS"], 1);
        assert!(
            node("/audio/bpm").get("VALUE").is_none(),
            "no value before one is sent"
        );
        let root = node("/");
        assert_eq!(
            root["CONTENTS"]["karaoke"]["CONTENTS"]["line"]["CONTENTS"]["active"]["TYPE"],
            "i"
        );
        assert_eq!(node("/audio/")["FULL_PATH"], "/audio");
        assert!(ns.node("/audio/nope").is_none());
        assert!(ns.node("/aud").is_none(), "a prefix of a name is no node");
        let types: usize = spec_addresses()
            .iter()
            .filter(|a| a.types.len() != a.ranges.len())
            .count();
        assert_eq!(types, 0, "a range per argument");
    }

    #[test]
    fn values_are_what_the_suite_sent_last() {
        let mut ns = Namespace::default();
        let bpm = |b: f32| OscMessage {
            addr: "/audio/bpm".into(),
            args: vec![OscType::Float(b), OscType::Float(0.5)],
        };
        assert!(ns.record(&bpm(120.0)));
        assert!(ns.record(&bpm(128.0)));
        assert_eq!(ns.node("/audio/bpm").unwrap()["VALUE"], json!([128.0, 0.5]));
        assert!(!ns.record(&OscMessage {
            addr: "/vj/x".into(),
            args: vec![]
        }));
        let new = OscMessage {
            addr: "/audio/new".into(),
            args: vec![OscType::Int(3)],
        };
        assert!(ns.record(&new));
        assert_eq!(ns.node("/audio/new").unwrap()["TYPE"], "i");
        assert_eq!(ns.unlisted, 1);
    }

    #[test]
    fn junk_addresses_are_bounded_and_the_oldest_go_first() {
        let mut ns = Namespace::default();
        let spec = ns.len();
        for i in 0..5000 {
            assert!(ns.record(&OscMessage {
                addr: format!("/audio/junk{i}"),
                args: vec![OscType::Int(i)],
            }));
        }
        assert_eq!(ns.len(), spec + MAX_LEARNED);
        assert_eq!(ns.learned(), MAX_LEARNED);
        assert_eq!(ns.unlisted, 5000);
        assert_eq!(ns.unlisted_dropped, 5000 - MAX_LEARNED as u64);
        assert!(ns.node("/audio/junk0").is_none(), "the oldest went");
        assert_eq!(ns.node("/audio/junk4999").unwrap()["VALUE"], json!([4999]));
        assert!(ns.node("/audio/bpm").is_some(), "SPEC's addresses stay");
        let long = OscMessage {
            addr: format!("/audio/{}", "x".repeat(MAX_LEARNED_PATH)),
            args: vec![],
        };
        assert!(!ns.record(&long));
        assert!(!ns.has_address(&long.addr));
    }
}
