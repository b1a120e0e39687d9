//! A request's `cmd` and arguments decoded into a command type: each worker's commands are a
//! serde enum, one variant per `cmd` (`rename_all = "snake_case"`), its arguments the
//! variant's fields. Decoding names what was wrong: an unknown `cmd`, or the argument at fault.
//!
//! ```
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! #[serde(rename_all = "snake_case")]
//! enum Cmd {
//!     Clear,
//!     Nudge { ms: f64 },
//! }
//! let args = serde_json::json!({"ms": 20}).as_object().unwrap().clone();
//! assert_eq!(vj::bus::command::decode::<Cmd>("nudge", &args), Ok(Cmd::Nudge { ms: 20.0 }));
//! ```
//!
//! An argument the variant does not name is refused, named (`set_tempo {bpm, lock, wat}` gets
//! "bad argument `wat`: set_tempo takes bpm, lock"), for every command of every worker: this
//! decoder is serde's `deny_unknown_fields` for all of them at once. A missing `Option` field
//! is `None`. Values may also come in order, as a list under [`POSITIONAL`] (`{"_args": [20]}`
//! is `{"ms": 20}` for `nudge`): control over OSC sends them that way, so it needs to know no
//! worker's argument names; a command without arguments ignores values in order (a button's
//! value), not names.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use super::message::Outcome;

/// The key of arguments given in order rather than by name.
pub const POSITIONAL: &str = "_args";

/// Why a request is not a command of the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// No variant is called `cmd`.
    Unknown,
    /// The variant exists; this says which argument is wrong and how.
    BadArgument(String),
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Unknown => f.write_str("unknown command"),
            Rejected::BadArgument(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Rejected {}

impl de::Error for Rejected {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Rejected::BadArgument(format!("bad argument: {msg}"))
    }

    fn missing_field(field: &'static str) -> Self {
        Rejected::BadArgument(format!("bad argument `{field}`: missing"))
    }
}

impl Rejected {
    /// The reply SPEC section 3 gives: `Unknown command: <cmd>`, or the argument's fault.
    pub fn outcome(self, cmd: &str) -> Outcome {
        match self {
            Rejected::Unknown => Outcome::unknown(cmd),
            Rejected::BadArgument(m) => Outcome::fail(m),
        }
    }
}

/// Decodes `cmd` with `args` into `C`, an enum.
pub fn decode<C: DeserializeOwned>(cmd: &str, args: &Map<String, Value>) -> Result<C, Rejected> {
    C::deserialize(AsEnum { cmd, args })
}

/// The request as a deserializer that only knows how to be an enum.
struct AsEnum<'a> {
    cmd: &'a str,
    args: &'a Map<String, Value>,
}

impl<'de> de::Deserializer<'de> for AsEnum<'de> {
    type Error = Rejected;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Rejected> {
        if !variants.contains(&self.cmd) {
            return Err(Rejected::Unknown);
        }
        visitor.visit_enum(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Rejected> {
        Err(Rejected::BadArgument(
            "a command type must be an enum (a bug in the worker)".into(),
        ))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de> EnumAccess<'de> for AsEnum<'de> {
    type Error = Rejected;
    type Variant = Args<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Args<'de>), Rejected> {
        let variant = seed.deserialize(self.cmd.into_deserializer())?;
        Ok((
            variant,
            Args {
                cmd: self.cmd,
                args: self.args,
            },
        ))
    }
}

/// The arguments of the chosen variant.
struct Args<'a> {
    cmd: &'a str,
    args: &'a Map<String, Value>,
}

impl<'de> VariantAccess<'de> for Args<'de> {
    type Error = Rejected;

    /// A command without arguments refuses named ones and ignores values in order.
    fn unit_variant(self) -> Result<(), Rejected> {
        unknown_argument(self.cmd, self.args, &[])
    }

    /// A newtype variant takes every argument as one value (`SetConfig(Map)`), which checks
    /// its own keys.
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Rejected> {
        if self.args.contains_key(POSITIONAL) {
            return Err(Rejected::BadArgument(
                "bad argument: this command takes key value pairs, not values in order".into(),
            ));
        }
        seed.deserialize(Value::Object(self.args.clone()))
            .map_err(|e| Rejected::BadArgument(format!("bad argument: {e}")))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Rejected> {
        Err(Rejected::BadArgument(
            "arguments are named, not positional".into(),
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Rejected> {
        unknown_argument(self.cmd, self.args, fields)?;
        visitor.visit_map(ArgMap {
            iter: named(self.args, fields)?.into_iter(),
            value: None,
        })
    }
}

/// The first argument named in `args` that `cmd` does not take (`fields`), refused by name.
fn unknown_argument(cmd: &str, args: &Map<String, Value>, fields: &[&str]) -> Result<(), Rejected> {
    let Some(key) = args
        .keys()
        .find(|k| k.as_str() != POSITIONAL && !fields.contains(&k.as_str()))
    else {
        return Ok(());
    };
    let takes = if fields.is_empty() {
        "no arguments".to_string()
    } else {
        fields.join(", ")
    };
    Err(Rejected::BadArgument(format!(
        "bad argument `{key}`: unknown ({cmd} takes {takes})"
    )))
}

/// The arguments by name: positional values laid onto the fields not named already, in order.
fn named(args: &Map<String, Value>, fields: &[&str]) -> Result<Vec<(String, Value)>, Rejected> {
    let mut out: Vec<(String, Value)> = args
        .iter()
        .filter(|(k, _)| k.as_str() != POSITIONAL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let Some(positional) = args.get(POSITIONAL) else {
        return Ok(out);
    };
    let values = positional.as_array().ok_or_else(|| {
        Rejected::BadArgument(format!("bad argument `{POSITIONAL}`: a list of values"))
    })?;
    let mut free = fields.iter().filter(|f| !args.contains_key(**f));
    for v in values {
        let field = free.next().ok_or_else(|| {
            Rejected::BadArgument(format!(
                "bad argument: {} values given, the command takes {}",
                values.len(),
                if fields.is_empty() {
                    "none".to_string()
                } else {
                    fields.join(", ")
                }
            ))
        })?;
        out.push((field.to_string(), v.clone()));
    }
    Ok(out)
}

/// The arguments as a map whose value errors name their key.
struct ArgMap {
    iter: std::vec::IntoIter<(String, Value)>,
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for ArgMap {
    type Error = Rejected;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Rejected> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(key.as_str().into_deserializer());
        self.value = Some((key, value));
        k.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Rejected> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| Rejected::BadArgument("bad argument: a value without a key".into()))?;
        seed.deserialize(value)
            .map_err(|e| Rejected::BadArgument(format!("bad argument `{key}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Cmd {
        Clear,
        GetMessages {
            count: Option<u64>,
            prefix: Option<String>,
        },
        Nudge {
            ms: f64,
        },
        SetConfig(Map<String, Value>),
    }

    #[derive(Debug, Deserialize)]
    enum Nothing {}

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn each_cmd_becomes_its_variant() {
        assert_eq!(decode::<Cmd>("clear", &Map::new()), Ok(Cmd::Clear));
        assert_eq!(
            decode::<Cmd>("get_messages", &args(json!({"count": 3}))),
            Ok(Cmd::GetMessages {
                count: Some(3),
                prefix: None
            })
        );
        assert_eq!(
            decode::<Cmd>("get_messages", &args(json!({"prefix": null}))),
            Ok(Cmd::GetMessages {
                count: None,
                prefix: None
            })
        );
        assert_eq!(
            decode::<Cmd>("set_config", &args(json!({"capacity": 7}))),
            Ok(Cmd::SetConfig(args(json!({"capacity": 7}))))
        );
    }

    #[test]
    fn an_argument_the_command_does_not_take_is_refused_by_name() {
        assert_eq!(
            decode::<Cmd>("nudge", &args(json!({"ms": 20, "wat": 1}))),
            Err(Rejected::BadArgument(
                "bad argument `wat`: unknown (nudge takes ms)".into()
            ))
        );
        assert_eq!(
            decode::<Cmd>("clear", &args(json!({"extra": 1}))),
            Err(Rejected::BadArgument(
                "bad argument `extra`: unknown (clear takes no arguments)".into()
            ))
        );
        // A misspelt optional argument is not silently its default.
        let Err(Rejected::BadArgument(m)) =
            decode::<Cmd>("get_messages", &args(json!({"cuont": 3})))
        else {
            panic!("refused")
        };
        assert!(m.starts_with("bad argument `cuont`: unknown"), "{m}");
    }

    #[test]
    fn values_in_order_fill_the_arguments_not_named() {
        assert_eq!(
            decode::<Cmd>("nudge", &args(json!({ POSITIONAL: [-20] }))),
            Ok(Cmd::Nudge { ms: -20.0 })
        );
        assert_eq!(
            decode::<Cmd>(
                "get_messages",
                &args(json!({"count": 2, POSITIONAL: ["/audio/"]}))
            ),
            Ok(Cmd::GetMessages {
                count: Some(2),
                prefix: Some("/audio/".into())
            })
        );
        assert_eq!(
            decode::<Cmd>("clear", &args(json!({ POSITIONAL: [1.0] }))),
            Ok(Cmd::Clear),
            "a command without arguments ignores a button's value"
        );
        let too_many = decode::<Cmd>("nudge", &args(json!({ POSITIONAL: [1, 2] }))).unwrap_err();
        assert_eq!(
            too_many,
            Rejected::BadArgument("bad argument: 2 values given, the command takes ms".into())
        );
        assert!(decode::<Cmd>("set_config", &args(json!({ POSITIONAL: [1] }))).is_err());
    }

    #[test]
    fn unknown_commands_and_bad_arguments_are_told_apart() {
        assert_eq!(
            decode::<Cmd>("frobnicate", &Map::new()),
            Err(Rejected::Unknown)
        );
        assert_eq!(
            decode::<Nothing>("clear", &Map::new()).unwrap_err(),
            Rejected::Unknown
        );
        let Rejected::BadArgument(m) =
            decode::<Cmd>("get_messages", &args(json!({"count": "lots"}))).unwrap_err()
        else {
            panic!("a bad argument")
        };
        assert!(
            m.starts_with("bad argument `count`: invalid type: string \"lots\""),
            "{m}"
        );
        assert_eq!(
            decode::<Cmd>("nudge", &Map::new()),
            Err(Rejected::BadArgument("bad argument `ms`: missing".into()))
        );
        assert_eq!(
            Rejected::Unknown.outcome("frobnicate").message.as_deref(),
            Some("Unknown command: frobnicate")
        );
    }
}
