//! Refusals counted per source address, in a bounded map: each source is logged once (the
//! first time), and a flood from many addresses grows nothing past [`MAX_SOURCES`] — the rest
//! are counted together.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;

use crate::service::lock;

/// Sources remembered one by one.
pub const MAX_SOURCES: usize = 256;

/// How many times each source was refused.
#[derive(Debug, Default)]
pub struct Tally {
    by_source: Mutex<(BTreeMap<IpAddr, u64>, u64)>,
}

/// What `get_state` shows of a tally.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TallyState {
    pub by_source: BTreeMap<String, u64>,
    /// Refusals of sources beyond the first [`MAX_SOURCES`].
    pub others: u64,
}

impl Tally {
    /// Counts one refusal of `ip`; true the first time `ip` is seen (log it then). A source
    /// that no longer fits is counted in `others` and never logged.
    pub fn count(&self, ip: IpAddr) -> bool {
        let mut guard = lock(&self.by_source);
        let (map, others) = &mut *guard;
        if let Some(n) = map.get_mut(&ip) {
            *n += 1;
            return false;
        }
        if map.len() >= MAX_SOURCES {
            *others += 1;
            return false;
        }
        map.insert(ip, 1);
        true
    }

    pub fn total(&self) -> u64 {
        let guard = lock(&self.by_source);
        guard.0.values().sum::<u64>() + guard.1
    }

    pub fn state(&self) -> TallyState {
        let guard = lock(&self.by_source);
        TallyState {
            by_source: guard.0.iter().map(|(ip, n)| (ip.to_string(), *n)).collect(),
            others: guard.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn each_source_is_logged_once_and_the_map_stays_bounded() {
        let t = Tally::default();
        let ip = IpAddr::from([10, 9, 0, 3]);
        assert!(t.count(ip));
        assert!(!t.count(ip));
        for i in 0..10_000u32 {
            t.count(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i + 100)));
        }
        let s = t.state();
        assert_eq!(s.by_source.len(), MAX_SOURCES);
        assert_eq!(s.by_source["10.9.0.3"], 2);
        assert_eq!(s.others, 10_000 - (MAX_SOURCES as u64 - 1));
        assert_eq!(t.total(), 10_002);
    }
}
