//! `[osc_debugger]` of `vj.toml`.

use serde::{Deserialize, Serialize};

use crate::config::Section;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscDebuggerConfig {
    /// Where OSC is received when not socket-activated.
    pub listen: String,
    /// How many of the latest messages `get_messages` can return.
    pub capacity: usize,
}

impl Section for OscDebuggerConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.capacity) {
            return Err(format!(
                "osc_debugger.capacity must be 1..=1000000, not {}",
                self.capacity
            ));
        }
        Ok(())
    }
}
