//! `i` in the console: the analyzer's next input, asked as a person would — its config
//! (`get_state`), what it can listen to (`list_devices`), then `set_config device=…`.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bus::client;
use crate::config;
use crate::registry::AUDIO;

/// Each of the three questions gets this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Switches the analyzer to the input after its current one ([`next_after`]); the footer's
/// words for how it went.
pub async fn next(bus_dir: &Path) -> (String, bool) {
    let socket = config::socket_path(bus_dir, AUDIO.bus_name);
    let ask = |cmd: &'static str, args: Value| {
        let socket = socket.clone();
        async move {
            let args = args.as_object().cloned().unwrap_or_default();
            match client::ask(&socket, cmd, args, COMMAND_TIMEOUT).await {
                Ok(ack) if ack.success => Ok(ack.data),
                Ok(ack) => Err(format!("{cmd}: {}", ack.message.unwrap_or_default())),
                Err(e) => Err(format!("{cmd}: {e}")),
            }
        }
    };
    let switched = async {
        let state = ask("get_state", json!({})).await?;
        let current = state["config"]["device"].as_str().unwrap_or_default();
        let listing = ask("list_devices", json!({})).await?;
        let Some(next) = next_after(&listing, current) else {
            return Err("no other input to switch to".to_string());
        };
        let mut change = json!({ "device": next });
        // On the demo loop or a file, an input is only heard with the device as the source.
        if !matches!(state["config"]["source"].as_str(), Some("auto" | "device")) {
            change["source"] = "auto".into();
        }
        ask("set_config", change).await?;
        Ok(next)
    };
    match switched.await {
        Ok(next) => (format!("{}: input {next}", AUDIO.bus_name), true),
        Err(e) => (format!("{}: {e}", AUDIO.bus_name), false),
    }
}

/// The input after `current` in what `list_devices` answered: the system output first (when
/// a sound server has one), then every listed input and monitor by name, round and round.
/// `None` when there is nothing to switch to.
fn next_after(listing: &Value, current: &str) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    if listing["system"].is_string() {
        names.push(crate::audio::SYSTEM.to_string());
    }
    for d in listing["devices"].as_array().into_iter().flatten() {
        if let Some(n) = d["name"].as_str() {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
    }
    let at = names.iter().position(|n| n.eq_ignore_ascii_case(current));
    let next = match at {
        Some(i) => names.get((i + 1) % names.len())?,
        None => names.first()?,
    };
    (Some(next.as_str()) != at.map(|i| names[i].as_str())).then(|| next.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i_cycles_through_the_system_output_and_every_listed_input() {
        let listing = json!({
            "system": "what plays on 'Null Output'",
            "devices": [
                {"name": "default", "kind": "input"},
                {"name": "vjtest.monitor", "kind": "monitor"},
                {"name": "default", "kind": "input"},
            ],
        });
        let next = |cur: &str| next_after(&listing, cur);
        assert_eq!(next("").as_deref(), Some("system"), "from the default");
        assert_eq!(next("SYSTEM").as_deref(), Some("default"));
        assert_eq!(next("default").as_deref(), Some("vjtest.monitor"));
        assert_eq!(next("vjtest.monitor").as_deref(), Some("system"), "round");
        let one = json!({"system": null, "devices": [{"name": "default"}]});
        assert_eq!(
            next_after(&one, "default"),
            None,
            "nothing else to switch to"
        );
        assert_eq!(next_after(&json!({}), ""), None);
    }
}
