//! `[virtualdj]` of `vj.toml`: where VirtualDJ writes what it plays.

use serde::{Deserialize, Serialize};

use crate::config::Section;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualDjConfig {
    pub path: String,
    pub lead_s: f64,
    pub poll_interval_ms: u64,
}

impl Section for VirtualDjConfig {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=600.0).contains(&self.lead_s) || self.poll_interval_ms < 100 {
            return Err(format!(
                "virtualdj.lead_s must be 0..=600 (not {}) and virtualdj.poll_interval_ms at least 100 (not {})",
                self.lead_s, self.poll_interval_ms
            ));
        }
        Ok(())
    }
}
