//! JSON, for the stored records and for the identity platform's replies, through miniserde.
//!
//! The component is built small (issue #11): serde_json's code, stamped out again for every
//! record type, was a fifth of it. miniserde reads and writes through trait objects, so each
//! type adds only its field table. Record types derive its `Serialize`/`Deserialize` where
//! its derive says their layout (named fields, unit enums, `#[serde(rename)]`, `Option`
//! fields that may be missing); what it cannot say is said in code beside the type, using
//! the helpers here: [`Fields`] writes an object whose absent fields are left out,
//! [`object_of`] gives the defaults a record fills in ([`crate::storage::records`]), and
//! [`read`] reads a type out of an already parsed [`Value`].
//!
//! miniserde's errors carry no reason, and none of this code quotes a value it failed to
//! read: a misplaced token must not reach an error message.

use std::borrow::Cow;

use miniserde::de::Visitor;
pub use miniserde::json::{Array, Number, Object, Value};
pub use miniserde::{Deserialize, Serialize};

/// Arrays and objects nested deeper than this are refused, as serde_json refused them:
/// replies and records read exactly as they did with it (miniserde itself has no limit).
pub const MAX_DEPTH: usize = 127;

/// `bytes` as one JSON value; `None` when they are not JSON (nor UTF-8), or nest deeper
/// than [`MAX_DEPTH`].
pub fn parse(bytes: &[u8]) -> Option<Value> {
    from_slice(bytes)
}

/// `bytes` read as a `T`; `None` when they are not JSON of that shape (as [`parse`]).
pub fn from_slice<T: Deserialize>(bytes: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !nesting_fits(bytes) {
        return None;
    }
    miniserde::json::from_str(text).ok()
}

/// Whether the arrays and objects of `bytes` nest at most [`MAX_DEPTH`] deep. Exact for
/// JSON text; for anything else the parser's answer is `None` anyway.
fn nesting_fits(bytes: &[u8]) -> bool {
    // Fewer openers than the limit cannot nest past it: one quick count settles it for
    // every record this build writes.
    if mfp_wire::json_openers(bytes) <= MAX_DEPTH {
        return true;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The compact JSON text of `value` (a struct's fields in declaration order, as serde_json
/// wrote them).
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> Vec<u8> {
    miniserde::json::to_string(value).into_bytes()
}

/// The compact JSON text of `value`, for messages.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> String {
    miniserde::json::to_string(value)
}

/// `value` read as a `T`: its parts are handed to `T`'s visitor as the parser hands those
/// of a text (writing the value out and parsing it again made every panel read parse each
/// record twice).
pub fn read<T: Deserialize>(value: &Value) -> Option<T> {
    let mut out = None;
    visit(value, T::begin(&mut out), 0).ok()?;
    out
}

/// Hands `value` to `visitor`, depth first, at most [`MAX_DEPTH`] deep as in parsing.
fn visit(value: &Value, visitor: &mut dyn Visitor, depth: usize) -> miniserde::Result<()> {
    if depth > MAX_DEPTH {
        return Err(miniserde::Error);
    }
    match value {
        Value::Null => visitor.null(),
        Value::Bool(b) => visitor.boolean(*b),
        Value::Number(Number::U64(n)) => visitor.nonnegative(*n),
        // The parser makes `I64` of negative integers only; be exact for a built value too.
        Value::Number(Number::I64(n)) => match u64::try_from(*n) {
            Ok(n) => visitor.nonnegative(n),
            Err(_) => visitor.negative(*n),
        },
        Value::Number(Number::F64(n)) => visitor.float(*n),
        Value::String(s) => visitor.string(s),
        Value::Array(items) => {
            let mut seq = visitor.seq()?;
            for item in items {
                visit(item, seq.element()?, depth + 1)?;
            }
            seq.finish()
        }
        Value::Object(fields) => {
            let mut map = visitor.map()?;
            for (key, field) in fields {
                visit(field, map.key(key)?, depth + 1)?;
            }
            map.finish()
        }
    }
}

/// The object `value` writes as (empty when it does not write an object).
pub fn object_of<T: ?Sized + Serialize>(value: &T) -> Object {
    match parse(&to_vec(value)) {
        Some(Value::Object(object)) => object,
        _ => Object::new(),
    }
}

/// Adds to `object` every field of `defaults` it lacks; where both hold an object, that
/// object is completed the same way. A field present with another type (or `null`) is
/// left for the reader to refuse, as serde's `#[serde(default)]` did.
pub fn fill_missing(object: &mut Object, defaults: Object) {
    // Recursion as deep as `defaults` (this build's own layout), whatever `object` holds.
    for (key, default) in defaults {
        match (object.get_mut(&key), default) {
            (None, default) => {
                object.insert(key, default);
            }
            (Some(Value::Object(inner)), Value::Object(default)) => fill_missing(inner, default),
            (Some(_), _) => {}
        }
    }
}

/// A JSON number as a `u64`: an integer written without a sign, not a fraction nor a huge
/// number (which JSON parsers read as floating point). `-0` is not one (nor was it for
/// serde_json).
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(Number::U64(n)) => Some(*n),
        _ => None,
    }
}

/// A JSON string's text.
pub fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// An object's fields to write, in order, leaving out those given as `None` (serde's
/// `skip_serializing_if = "Option::is_none"`). `Serialize` for a struct is then
/// `Fields::new(vec![("a", Some(&self.a)), ("b", self.b.as_ref().map(|b| b as _))]).begin()`.
pub struct Fields<'a> {
    fields: std::vec::IntoIter<(&'static str, Option<&'a dyn Serialize>)>,
}

impl<'a> Fields<'a> {
    pub fn new(fields: Vec<(&'static str, Option<&'a dyn Serialize>)>) -> Self {
        Self {
            fields: fields.into_iter(),
        }
    }

    /// The fragment that writes them as an object.
    pub fn begin(self) -> miniserde::ser::Fragment<'a> {
        miniserde::ser::Fragment::Map(Box::new(self))
    }
}

impl miniserde::ser::Map for Fields<'_> {
    fn next(&mut self) -> Option<(Cow<'_, str>, &dyn Serialize)> {
        self.fields
            .by_ref()
            .find_map(|(name, value)| Some((Cow::Borrowed(name), value?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_json_and_refuses_the_rest() {
        assert!(matches!(
            parse(br#"{"a":[1,"x",null]}"#),
            Some(Value::Object(_))
        ));
        for bad in [&b""[..], b"{", b"[1,]", b"\xff", b"1 2", b"{\"a\":1e400}"] {
            assert!(parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        // Nesting is bounded where serde_json bounded it, brackets in strings not counted.
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for n in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 100_000] {
            let text = nested(n);
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(parse(text.as_bytes()).is_some(), theirs, "{n}");
        }
        let text = format!(
            r#"{{"a":"{}\"[{{","b":{}}}"#,
            "[".repeat(200),
            nested(MAX_DEPTH - 1)
        );
        assert!(parse(text.as_bytes()).is_some());
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }

    /// The replies and records read as before: what serde_json took (and the number it
    /// read as a `u64`), miniserde takes; what it refused, miniserde refuses.
    #[test]
    fn parse_takes_what_serde_json_took() {
        let cases = [
            "",
            " ",
            "1",
            "-0",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1E+2",
            "1e400",
            "-1e400",
            "1e-400",
            "0.1e1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "[1,]",
            "{,}",
            r#"{"a"}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud83d\ude00""#,
            r#""\x""#,
            "\"\t\"",
            "\"\u{7f}\"",
            "\"\u{1}\"",
            "nul",
            "true false",
            "[",
            "]",
            "null ",
            "\u{feff}1",
            "\"a\" \n\t\r",
            r#"{"a":{"b":[{"c":null}]},"a":2}"#,
        ];
        for case in cases {
            let ours = parse(case.as_bytes());
            let theirs = serde_json::from_str::<serde_json::Value>(case);
            assert_eq!(ours.is_some(), theirs.is_ok(), "{case:?}");
            if let (Some(ours), Ok(theirs)) = (&ours, &theirs) {
                assert_eq!(as_u64(ours), theirs.as_u64(), "{case:?}");
            }
        }
    }

    #[test]
    fn numbers_read_as_u64_only_when_whole_and_in_range() {
        let v = parse(br#"[0,18446744073709551615,-1,1.0,1.5,18446744073709551616,"1"]"#);
        let Some(Value::Array(all)) = v else {
            panic!("not an array")
        };
        let read: Vec<_> = all.iter().map(as_u64).collect();
        assert_eq!(
            read,
            [Some(0), Some(u64::MAX), None, None, None, None, None]
        );
    }

    #[test]
    fn missing_fields_are_filled_in_nested_objects_too_and_present_ones_kept() {
        let Some(Value::Object(mut o)) = parse(br#"{"a":1,"n":{"x":true},"z":null}"#) else {
            panic!("not an object")
        };
        let Some(Value::Object(d)) = parse(br#"{"a":2,"b":3,"n":{"x":false,"y":4},"z":{"w":5}}"#)
        else {
            panic!("not an object")
        };
        fill_missing(&mut o, d);
        assert_eq!(
            to_string(&o),
            r#"{"a":1,"b":3,"n":{"x":true,"y":4},"z":null}"#
        );
    }

    #[test]
    fn fields_leave_out_absent_values_and_keep_their_order() {
        struct Two {
            b: u32,
            a: Option<String>,
        }
        impl Serialize for Two {
            fn begin(&self) -> miniserde::ser::Fragment<'_> {
                Fields::new(vec![
                    ("b", Some(&self.b)),
                    ("a", self.a.as_ref().map(|a| a as &dyn Serialize)),
                ])
                .begin()
            }
        }
        let two = Two { b: 1, a: None };
        assert_eq!(to_string(&two), r#"{"b":1}"#);
        let two = Two {
            b: 1,
            a: Some("\"\n".into()),
        };
        assert_eq!(to_string(&two), r#"{"b":1,"a":"\"\n"}"#);
    }
}
