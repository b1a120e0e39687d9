//! The OSC the console is fed: messages as the debugger's subscription pushes them, and the
//! arrival time of each on the console's own clock (a flash lights when the beat happened,
//! not when the batch carrying it arrived).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

/// One captured message (`get_messages`/`subscribe` shape; `seq` is not needed here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OscMsg {
    /// Arrival at the debugger, seconds since 1970; 0 when unknown (seeded from stats).
    #[serde(default)]
    pub time: f64,
    pub address: String,
    #[serde(default)]
    pub types: String,
    #[serde(default)]
    pub args: Vec<Value>,
}

impl OscMsg {
    pub fn new(address: &str, args: Vec<Value>) -> OscMsg {
        OscMsg {
            time: 0.0,
            address: address.to_string(),
            types: String::new(),
            args,
        }
    }

    pub fn f(&self, i: usize) -> Option<f32> {
        self.args.get(i)?.as_f64().map(|v| v as f32)
    }

    pub fn i(&self, i: usize) -> Option<i64> {
        let v = self.args.get(i)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    pub fn s(&self, i: usize) -> Option<&str> {
        self.args.get(i)?.as_str()
    }

    /// Every argument as a float (levels, spectrum), `None` if one is not a number.
    pub fn floats(&self) -> Option<Vec<f32>> {
        self.args
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect()
    }
}

/// Maps the debugger's wall-clock arrival times onto this process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    now: Instant,
    wall: f64,
}

impl Arrival {
    pub fn now() -> Arrival {
        Arrival::at(Instant::now(), SystemTime::now())
    }

    pub fn at(now: Instant, wall: SystemTime) -> Arrival {
        let wall = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Arrival { now, wall }
    }

    /// When `msg` arrived, never later than now; a message without a time arrived now.
    pub fn of(&self, msg: &OscMsg) -> Instant {
        if msg.time <= 0.0 {
            return self.now;
        }
        let ago = (self.wall - msg.time).clamp(0.0, 3600.0);
        self.now
            .checked_sub(Duration::from_secs_f64(ago))
            .unwrap_or(self.now)
    }

    pub fn instant(&self) -> Instant {
        self.now
    }
}

/// What the debugger's `get_stats` (and a subscription's ack) says of each address, as
/// messages carrying its last value, arrived `last_seen_sec_ago` before now.
pub fn seed_messages(stats: &Value, clock: &Arrival) -> Vec<(OscMsg, f64)> {
    let mut out = Vec::new();
    let Some(addresses) = stats.get("addresses").and_then(Value::as_object) else {
        return out;
    };
    for (address, s) in addresses {
        let ago = s["last_seen_sec_ago"].as_f64().unwrap_or(0.0);
        let msg = OscMsg {
            time: clock.wall - ago,
            address: address.clone(),
            types: s["types"].as_str().unwrap_or("").to_string(),
            args: s["last"].as_array().cloned().unwrap_or_default(),
        };
        out.push((msg, s["rate_hz"].as_f64().unwrap_or(0.0)));
    }
    out
}

/// Minutes and seconds, `3:07`.
pub fn clock_time(seconds: f32) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrival_goes_back_by_the_wall_clock_age() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1000);
        let clock = Arrival::at(now, wall);
        let mut m = OscMsg::new("/audio/beat", vec![json!(1), json!(0.5)]);
        assert_eq!(clock.of(&m), now);
        m.time = 999.75;
        assert_eq!(now.duration_since(clock.of(&m)), Duration::from_millis(250));
        // A clock step the wrong way never puts an arrival in the future.
        m.time = 1005.0;
        assert_eq!(clock.of(&m), now);
        assert_eq!(m.i(0), Some(1));
        assert_eq!(m.f(1), Some(0.5));
        assert_eq!(m.s(0), None);
    }

    #[test]
    fn stats_seed_the_last_value_of_every_address() {
        let stats = json!({"addresses": {
            "/karaoke/track": {"count": 1, "rate_hz": 0.0, "types": "issssfi",
                "last": [1, "virtualdj", "A", "B", "", 200.0, 0], "last_seen_sec_ago": 2.0}
        }});
        let clock = Arrival::at(Instant::now(), UNIX_EPOCH + Duration::from_secs(100));
        let seeded = seed_messages(&stats, &clock);
        assert_eq!(seeded.len(), 1);
        assert_eq!(seeded[0].0.s(3), Some("B"));
        assert_eq!(seeded[0].0.time, 98.0);
        assert_eq!(clock_time(187.9), "3:07");
    }
}
