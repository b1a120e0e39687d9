//! What travels in a frame: requests (`type: "command"`) and the replies a worker sends —
//! `ack`, `error`, `heartbeat` — in python-vj's shapes, and the `push` frames that follow the
//! ack of a subscription.

use serde::Serialize;
use serde_json::{Map, Value};

/// A request: `{"type":"command","cmd":"get_state","msg_id":"42", ...args}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub cmd: String,
    /// Echoed back exactly as sent: a string, a number or null (absent = null).
    pub msg_id: Value,
    /// Every other top-level key.
    pub args: Map<String, Value>,
}

/// A frame that is not a usable request; the reply is `{"type":"error",...}` and the
/// connection stays open.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    pub msg_id: Value,
    pub error: String,
}

impl Command {
    /// Parses one frame body.
    pub fn parse(body: &[u8]) -> Result<Command, BadRequest> {
        let bad = |msg_id: &Value, error: String| BadRequest {
            msg_id: msg_id.clone(),
            error,
        };
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| bad(&Value::Null, format!("invalid JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(bad(
                &Value::Null,
                format!("expected a JSON object, got {}", kind(&value)),
            ));
        };
        let msg_id = obj.remove("msg_id").unwrap_or(Value::Null);
        match obj.remove("type") {
            None => return Err(bad(&msg_id, "missing field: type".into())),
            Some(Value::String(t)) if t == "command" => {}
            Some(Value::String(t)) => {
                return Err(bad(
                    &msg_id,
                    format!("unknown message type: {t:?} (expected \"command\")"),
                ))
            }
            Some(other) => {
                return Err(bad(
                    &msg_id,
                    format!("field type must be a string, got {}", kind(&other)),
                ))
            }
        }
        let cmd = match obj.remove("cmd") {
            Some(Value::String(c)) => c,
            None => return Err(bad(&msg_id, "missing field: cmd".into())),
            Some(other) => {
                return Err(bad(
                    &msg_id,
                    format!("field cmd must be a string, got {}", kind(&other)),
                ))
            }
        };
        Ok(Command {
            cmd,
            msg_id,
            args: obj,
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a non-negative integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a command did: becomes the `ack`, and for a subscription the pushes after it.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub message: Option<String>,
    pub data: Value,
    /// A subscription: each value becomes `{"type":"push","msg_id":..,"data":..}` on the
    /// connection, after the ack, until the sender is dropped (then a last push says
    /// `"done":true`) or the connection closes.
    pub pushes: Option<Pushes>,
}

/// The values a subscription pushes. The server takes the next only once the last is written
/// to the socket, so a client that reads slowly slows the subscription instead of filling memory.
#[derive(Debug)]
pub struct Pushes(pub tokio::sync::mpsc::Receiver<Value>);

impl PartialEq for Outcome {
    /// Two outcomes are equal when their acks are; pushes are not compared.
    fn eq(&self, other: &Outcome) -> bool {
        (self.success, &self.message, &self.data) == (other.success, &other.message, &other.data)
    }
}

impl Outcome {
    pub fn ok(data: Value) -> Self {
        Outcome {
            success: true,
            message: None,
            data,
            pushes: None,
        }
    }
    pub fn fail(message: impl Into<String>) -> Self {
        Outcome {
            success: false,
            message: Some(message.into()),
            data: Value::Null,
            pushes: None,
        }
    }
    /// A successful subscription: `data` in the ack, then whatever `pushes` yields.
    pub fn subscribed(data: Value, pushes: tokio::sync::mpsc::Receiver<Value>) -> Self {
        Outcome {
            pushes: Some(Pushes(pushes)),
            ..Outcome::ok(data)
        }
    }
    pub fn unknown(cmd: &str) -> Self {
        Outcome::fail(format!("Unknown command: {cmd}"))
    }
    /// An argument of the right type but a value the command cannot take.
    pub fn bad_argument(name: &str, problem: impl std::fmt::Display) -> Self {
        Outcome::fail(format!("bad argument `{name}`: {problem}"))
    }
}

#[derive(Serialize)]
struct Ack<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    success: bool,
    message: &'a Option<String>,
    data: &'a Value,
    msg_id: &'a Value,
}

/// `{"type":"ack","success":..,"message":..,"data":..,"msg_id":..}`
pub fn ack_json(outcome: &Outcome, msg_id: &Value) -> Vec<u8> {
    serde_json::to_vec(&Ack {
        kind: "ack",
        success: outcome.success,
        message: &outcome.message,
        data: &outcome.data,
        msg_id,
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: &'a str,
    msg_id: &'a Value,
}

/// `{"type":"error","error":..,"msg_id":..}`
pub fn error_json(error: &str, msg_id: &Value) -> Vec<u8> {
    serde_json::to_vec(&ErrorReply {
        kind: "error",
        error,
        msg_id,
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Push<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    msg_id: &'a Value,
    data: &'a Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    done: bool,
}

/// `{"type":"push","msg_id":..,"data":..}`, one value of a subscription; `None` is the last,
/// `{"type":"push","msg_id":..,"data":null,"done":true}`.
pub fn push_json(data: Option<&Value>, msg_id: &Value) -> Vec<u8> {
    serde_json::to_vec(&Push {
        kind: "push",
        msg_id,
        data: data.unwrap_or(&Value::Null),
        done: data.is_none(),
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Heartbeat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    worker: &'a str,
    pid: u32,
    uptime_sec: f64,
    stats: &'a Value,
}

/// `{"type":"heartbeat","worker":..,"pid":..,"uptime_sec":..,"stats":{..}}`
pub fn heartbeat_json(worker: &str, uptime_sec: f64, stats: &Value) -> Vec<u8> {
    serde_json::to_vec(&Heartbeat {
        kind: "heartbeat",
        worker,
        pid: std::process::id(),
        uptime_sec,
        stats,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: &str) -> BadRequest {
        Command::parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_command_keeps_its_args_and_msg_id() {
        let c = Command::parse(br#"{"type":"command","cmd":"get_messages","msg_id":7,"count":3}"#)
            .unwrap();
        assert_eq!(c.cmd, "get_messages");
        assert_eq!(c.msg_id, json!(7));
        assert_eq!(c.args, json!({"count":3}).as_object().unwrap().clone());
    }

    #[test]
    fn each_bad_request_says_what_is_wrong() {
        assert!(err("{nope").error.starts_with("invalid JSON"));
        assert_eq!(err("[1]").error, "expected a JSON object, got an array");
        assert_eq!(
            err(r#"{"cmd":"x","msg_id":"a"}"#).error,
            "missing field: type"
        );
        assert_eq!(err(r#"{"cmd":"x","msg_id":"a"}"#).msg_id, json!("a"));
        assert_eq!(err(r#"{"type":"command"}"#).error, "missing field: cmd");
        assert_eq!(
            err(r#"{"type":"telemetry","cmd":"x"}"#).error,
            "unknown message type: \"telemetry\" (expected \"command\")"
        );
    }

    #[test]
    fn replies_have_python_vj_shapes() {
        let ack: Value =
            serde_json::from_slice(&ack_json(&Outcome::ok(json!({"a":1})), &json!("42"))).unwrap();
        assert_eq!(
            ack,
            json!({"type":"ack","success":true,"message":null,"data":{"a":1},"msg_id":"42"})
        );
        let e: Value = serde_json::from_slice(&error_json("boom", &Value::Null)).unwrap();
        assert_eq!(e, json!({"type":"error","error":"boom","msg_id":null}));
        let p: Value = serde_json::from_slice(&push_json(Some(&json!([1])), &json!(3))).unwrap();
        assert_eq!(p, json!({"type":"push","msg_id":3,"data":[1]}));
        let last: Value = serde_json::from_slice(&push_json(None, &json!(3))).unwrap();
        assert_eq!(
            last,
            json!({"type":"push","msg_id":3,"data":null,"done":true})
        );
    }
}
