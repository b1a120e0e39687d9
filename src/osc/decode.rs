//! Turns received datagrams into messages a person can read: address, type tags, arguments as
//! JSON, and the timetag of the bundle that carried them (bundles nest; they are flattened).

use crate::service::files::hex_string;
use rosc::{OscPacket, OscTime, OscType};
use serde::Serialize;
use serde_json::{json, Value};

/// A datagram that is not OSC.
#[derive(Debug, thiserror::Error)]
#[error("malformed OSC packet ({len} bytes): {reason}")]
pub struct DecodeError {
    pub len: usize,
    pub reason: String,
}

/// One message as received, ready for `get_messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedMessage {
    pub address: String,
    pub types: String,
    pub args: Vec<Value>,
    /// The timetag of the innermost bundle, as seconds since 1970 (`null` if it was no bundle
    /// or "immediately").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_time: Option<f64>,
}

/// Decodes one datagram into its messages, in order.
pub fn decode(datagram: &[u8]) -> Result<Vec<CapturedMessage>, DecodeError> {
    let mut out = Vec::new();
    flatten(packet(datagram)?, None, &mut out);
    Ok(out)
}

/// Decodes one datagram into its messages as `rosc` messages, bundles flattened (for a worker
/// that passes them on).
pub fn decode_messages(datagram: &[u8]) -> Result<Vec<rosc::OscMessage>, DecodeError> {
    fn walk(p: OscPacket, out: &mut Vec<rosc::OscMessage>) {
        match p {
            OscPacket::Message(m) => out.push(m),
            OscPacket::Bundle(b) => b.content.into_iter().for_each(|p| walk(p, out)),
        }
    }
    let mut out = Vec::new();
    walk(packet(datagram)?, &mut out);
    Ok(out)
}

/// The one packet a datagram holds, nothing after it.
fn packet(datagram: &[u8]) -> Result<OscPacket, DecodeError> {
    let (rest, packet) = rosc::decoder::decode_udp(datagram).map_err(|e| DecodeError {
        len: datagram.len(),
        reason: format!("{e:?}"),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError {
            len: datagram.len(),
            reason: format!("{} bytes after the packet", rest.len()),
        });
    }
    Ok(packet)
}

fn flatten(packet: OscPacket, time: Option<f64>, out: &mut Vec<CapturedMessage>) {
    match packet {
        OscPacket::Message(m) => out.push(CapturedMessage {
            types: super::type_tags(&m.args),
            args: m.args.iter().map(arg_json).collect(),
            address: m.addr,
            bundle_time: time,
        }),
        OscPacket::Bundle(b) => {
            let t = unix_seconds(b.timetag).or(time);
            for p in b.content {
                flatten(p, t, out);
            }
        }
    }
}

const NTP_TO_UNIX: f64 = 2_208_988_800.0;

fn unix_seconds(t: OscTime) -> Option<f64> {
    // (0, 1) means "immediately".
    if t.seconds == 0 && t.fractional <= 1 {
        return None;
    }
    Some(f64::from(t.seconds) - NTP_TO_UNIX + f64::from(t.fractional) / 4_294_967_296.0)
}

fn float_json(f: f64) -> Value {
    // JSON has no NaN or infinity: say it in words rather than lose it.
    if f.is_finite() {
        json!(f)
    } else {
        json!(f.to_string())
    }
}

/// One OSC argument as JSON (`get_messages`, OSCQuery `VALUE`).
pub fn arg_json(arg: &OscType) -> Value {
    match arg {
        OscType::Int(i) => json!(i),
        OscType::Float(f) => float_json(f64::from(*f)),
        OscType::String(s) => json!(s),
        OscType::Blob(b) => json!({ "blob": hex_string(b) }),
        OscType::Time(t) => json!({ "time": unix_seconds(*t) }),
        OscType::Long(h) => json!(h),
        OscType::Double(d) => float_json(*d),
        OscType::Char(c) => json!(c.to_string()),
        OscType::Color(c) => json!({ "rgba": [c.red, c.green, c.blue, c.alpha] }),
        OscType::Midi(m) => json!({ "midi": [m.port, m.status, m.data1, m.data2] }),
        OscType::Bool(b) => json!(b),
        OscType::Nil => Value::Null,
        OscType::Inf => json!("inf"),
        OscType::Array(a) => Value::Array(a.content.iter().map(arg_json).collect()),
    }
}

/// The OSC arguments that `types` and their JSON form (as [`arg_json`] wrote them) describe: the
/// inverse of `arg_json`, for a tool that re-sends what the debugger pushed (`vj-status record`).
/// Exact for every type the suite sends (`f` goes through JSON's f64 and back unchanged).
pub fn args_from_json(types: &str, args: &[Value]) -> Result<Vec<OscType>, String> {
    let mut tags = types.chars();
    let mut values = args.iter();
    let out = args_from(&mut tags, &mut values, false)?;
    if values.next().is_some() {
        return Err(format!("more arguments than type tags {types:?}"));
    }
    Ok(out)
}

fn args_from<'a>(
    tags: &mut std::str::Chars<'_>,
    values: &mut impl Iterator<Item = &'a Value>,
    in_array: bool,
) -> Result<Vec<OscType>, String> {
    let mut out = Vec::new();
    while let Some(tag) = tags.next() {
        if tag == ']' {
            return if in_array {
                Ok(out)
            } else {
                Err("a `]` without its `[`".into())
            };
        }
        let v = values
            .next()
            .ok_or_else(|| format!("no argument for type tag `{tag}`"))?;
        out.push(match tag {
            '[' => {
                let items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
                let mut inner = items.iter();
                let content = args_from(tags, &mut inner, true)?;
                OscType::Array(rosc::OscArray { content })
            }
            _ => arg_from(tag, v)?,
        });
    }
    if in_array {
        return Err("a `[` without its `]`".into());
    }
    Ok(out)
}

fn arg_from(tag: char, v: &Value) -> Result<OscType, String> {
    let bad = || format!("type tag `{tag}` with the value {v}");
    let float = || match v {
        Value::String(s) => s.parse::<f64>().map_err(|_| bad()),
        v => v.as_f64().ok_or_else(bad),
    };
    let field = |name: &str| v.get(name).ok_or_else(bad);
    let bytes = |name: &str, n: usize| -> Result<Vec<u8>, String> {
        let list = field(name)?.as_array().ok_or_else(bad)?;
        let got: Option<Vec<u8>> = list
            .iter()
            .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
            .collect();
        got.filter(|b| b.len() == n).ok_or_else(bad)
    };
    Ok(match tag {
        'i' => OscType::Int(
            v.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(bad)?,
        ),
        'f' => OscType::Float(float()? as f32),
        'd' => OscType::Double(float()?),
        'h' => OscType::Long(v.as_i64().ok_or_else(bad)?),
        's' => OscType::String(v.as_str().ok_or_else(bad)?.to_string()),
        'c' => OscType::Char(v.as_str().and_then(|s| s.chars().next()).ok_or_else(bad)?),
        'b' => {
            let hex = field("blob")?.as_str().ok_or_else(bad)?;
            OscType::Blob(from_hex(hex).ok_or_else(bad)?)
        }
        't' => OscType::Time(match field("time")? {
            Value::Null => OscTime {
                seconds: 0,
                fractional: 1,
            },
            t => ntp_time(t.as_f64().ok_or_else(bad)?),
        }),
        'r' => {
            let [red, green, blue, alpha] =
                <[u8; 4]>::try_from(bytes("rgba", 4)?).map_err(|_| bad())?;
            OscType::Color(rosc::OscColor {
                red,
                green,
                blue,
                alpha,
            })
        }
        'm' => {
            let [port, status, data1, data2] =
                <[u8; 4]>::try_from(bytes("midi", 4)?).map_err(|_| bad())?;
            OscType::Midi(rosc::OscMidiMessage {
                port,
                status,
                data1,
                data2,
            })
        }
        'T' => OscType::Bool(true),
        'F' => OscType::Bool(false),
        'N' => OscType::Nil,
        'I' => OscType::Inf,
        _ => return Err(format!("unknown type tag `{tag}`")),
    })
}

/// Seconds since 1970 as an NTP timetag.
fn ntp_time(unix: f64) -> OscTime {
    let ntp = (unix + NTP_TO_UNIX).max(0.0);
    OscTime {
        seconds: ntp as u32,
        fractional: (ntp.fract() * 4_294_967_296.0) as u32,
    }
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosc::{encoder, OscArray, OscBundle, OscColor, OscMessage, OscMidiMessage};

    fn encode(p: &OscPacket) -> Vec<u8> {
        encoder::encode(p).unwrap()
    }

    #[test]
    fn every_osc_type_decodes_with_its_tag() {
        let msg = OscMessage {
            addr: "/all".into(),
            args: vec![
                OscType::Int(-3),
                OscType::Float(0.5),
                OscType::String("hé".into()),
                OscType::Blob(vec![1, 255]),
                OscType::Time(OscTime {
                    seconds: 3_900_000_000,
                    fractional: 0,
                }),
                OscType::Long(1 << 40),
                OscType::Double(2.25),
                OscType::Char('x'),
                OscType::Color(OscColor {
                    red: 1,
                    green: 2,
                    blue: 3,
                    alpha: 4,
                }),
                OscType::Midi(OscMidiMessage {
                    port: 0,
                    status: 0x90,
                    data1: 60,
                    data2: 127,
                }),
                OscType::Bool(true),
                OscType::Bool(false),
                OscType::Nil,
                OscType::Inf,
                OscType::Array(OscArray {
                    content: vec![OscType::Int(1), OscType::Float(2.0)],
                }),
            ],
        };
        let got = decode(&encode(&OscPacket::Message(msg))).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].types, "ifsbthdcrmTFNI[if]");
        assert_eq!(got[0].args[0], json!(-3));
        assert_eq!(got[0].args[2], json!("hé"));
        assert_eq!(got[0].args[3], json!({"blob": "01ff"}));
        assert_eq!(got[0].args[5], json!(1_u64 << 40));
        assert_eq!(got[0].args[12], Value::Null);
        assert_eq!(got[0].args[14], json!([1, 2.0]));
    }

    #[test]
    fn json_arguments_turn_back_into_the_same_osc() {
        let args = vec![
            OscType::Int(-3),
            OscType::Float(0.1),
            OscType::Float(f32::NAN),
            OscType::Float(f32::NEG_INFINITY),
            OscType::String("hé".into()),
            OscType::Blob(vec![1, 255]),
            OscType::Long(1 << 40),
            OscType::Double(2.25),
            OscType::Char('x'),
            OscType::Color(OscColor {
                red: 1,
                green: 2,
                blue: 3,
                alpha: 4,
            }),
            OscType::Midi(OscMidiMessage {
                port: 0,
                status: 0x90,
                data1: 60,
                data2: 127,
            }),
            OscType::Bool(true),
            OscType::Bool(false),
            OscType::Nil,
            OscType::Inf,
            OscType::Array(OscArray {
                content: vec![OscType::Int(1), OscType::Float(2.5)],
            }),
            OscType::Float(0.333_333_34),
        ];
        let msg = OscMessage {
            addr: "/all".into(),
            args: args.clone(),
        };
        let got = &decode(&encode(&OscPacket::Message(msg))).unwrap()[0];
        let json: Vec<Value> =
            serde_json::from_str(&serde_json::to_string(&got.args).unwrap()).unwrap();
        let back = args_from_json(&got.types, &json).unwrap();
        assert_eq!(back.len(), args.len());
        for (b, a) in back.iter().zip(&args) {
            match (b, a) {
                (OscType::Float(x), OscType::Float(y)) if y.is_nan() => assert!(x.is_nan()),
                _ => assert_eq!(b, a),
            }
        }
        assert!(args_from_json("i", &[json!("x")])
            .unwrap_err()
            .contains("`i`"));
        assert!(args_from_json("ii", &[json!(1)]).is_err());
        assert!(args_from_json("i", &[json!(1), json!(2)]).is_err());
        assert!(args_from_json("[i", &[json!([1])]).is_err());
        assert!(args_from_json("]", &[json!(1)]).is_err());
        assert!(args_from_json("b", &[json!({"blob": "0g"})]).is_err());
    }

    #[test]
    fn nested_bundles_flatten_in_order_with_their_time() {
        let m = |a: &str| {
            OscPacket::Message(OscMessage {
                addr: a.into(),
                args: vec![],
            })
        };
        let inner = OscPacket::Bundle(OscBundle {
            timetag: OscTime {
                seconds: 3_900_000_000,
                fractional: 0,
            },
            content: vec![m("/b"), m("/c")],
        });
        let outer = OscPacket::Bundle(OscBundle {
            timetag: OscTime {
                seconds: 0,
                fractional: 1,
            },
            content: vec![m("/a"), inner],
        });
        let got = decode(&encode(&outer)).unwrap();
        let addrs: Vec<_> = got.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addrs, ["/a", "/b", "/c"]);
        assert_eq!(got[0].bundle_time, None);
        assert_eq!(got[1].bundle_time, Some(3_900_000_000.0 - NTP_TO_UNIX));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"hello", b"/a\0\0,i\0\0\0\0", b"#bundle\0\0\0"] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.len, bad.len());
        }
    }
}
