//! Reading the JSON objects the identity platform sends. Fields are read one by one, so a
//! failure names the field and never echoes its value (a misplaced token must not end up
//! in an error message).

use crate::json::{self, Object, Value};

use super::error::SigninError;

/// One JSON object of a reply (or of an id_token's payload).
pub(crate) struct JsonObject {
    what: &'static str,
    map: Object,
}

impl JsonObject {
    /// Parses `body` as a JSON object; `what` names it in errors ("the token reply").
    pub fn parse(what: &'static str, body: &[u8]) -> Result<Self, SigninError> {
        match json::parse(body) {
            Some(Value::Object(map)) => Ok(Self { what, map }),
            Some(_) => Err(SigninError::malformed(format_args!(
                "{what} is not a JSON object"
            ))),
            None => Err(SigninError::malformed(format_args!("{what} is not JSON"))),
        }
    }

    /// A string field that must be present and not empty.
    pub fn string(&self, field: &str) -> Result<String, SigninError> {
        self.opt_string(field)?
            .ok_or_else(|| self.fault(field, "is missing or empty"))
    }

    /// A string field that may be absent (or null, or empty, which count as absent).
    pub fn opt_string(&self, field: &str) -> Result<Option<String>, SigninError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.fault(field, "is not a string")),
        }
    }

    /// A duration in seconds that must be present.
    pub fn seconds(&self, field: &str) -> Result<u64, SigninError> {
        self.opt_seconds(field)?
            .ok_or_else(|| self.fault(field, "is missing"))
    }

    /// A duration in seconds, which may be absent. A non-negative integer, or (as older
    /// endpoints of the same platform sent it) a string of digits; anything else, such as
    /// a negative, fractional or huge number, is refused.
    pub fn opt_seconds(&self, field: &str) -> Result<Option<u64>, SigninError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(n @ Value::Number(_)) => json::as_u64(n)
                .map(Some)
                .ok_or_else(|| self.fault(field, "is not a whole number of seconds")),
            Some(Value::String(s))
                if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                s.parse()
                    .map(Some)
                    .map_err(|_| self.fault(field, "is not a whole number of seconds"))
            }
            Some(_) => Err(self.fault(field, "is not a whole number of seconds")),
        }
    }

    /// The raw value of a field, for shapes the helpers above do not cover.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field)
    }

    fn fault(&self, field: &str, problem: &str) -> SigninError {
        SigninError::malformed(format_args!("in {}, `{field}` {problem}", self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::SigninErrorKind;

    fn object(json: &str) -> JsonObject {
        JsonObject::parse("the reply", json.as_bytes()).unwrap()
    }

    #[test]
    fn non_json_and_non_objects_are_malformed() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"[1,2]",
            b"",
            b"\xff\xfe",
        ] {
            let err = JsonObject::parse("the reply", body).err().unwrap();
            assert_eq!(err.kind, SigninErrorKind::MalformedReply);
        }
    }

    #[test]
    fn seconds_accept_integers_and_digit_strings_only() {
        let o = object(
            r#"{"a":900,"b":"3599","c":-1,"d":1.5,"f":"12x","g":99999999999999999999999,"h":null}"#,
        );
        assert_eq!(o.seconds("a").unwrap(), 900);
        assert_eq!(o.seconds("b").unwrap(), 3599);
        for bad in ["c", "d", "f", "g", "missing"] {
            assert!(o.seconds(bad).is_err(), "{bad}");
        }
        assert!(JsonObject::parse("the reply", br#"{"e":1e400}"#).is_err());
        assert_eq!(o.opt_seconds("h").unwrap(), None);
    }

    #[test]
    fn a_wrongly_typed_field_is_named_but_its_value_is_not_quoted() {
        let o = object(r#"{"expires_in":"eyJ0eXAiOiJKV1Qi-secret"}"#);
        let err = o.seconds("expires_in").unwrap_err();
        assert!(err.message.contains("`expires_in`"));
        assert!(!err.message.contains("secret"), "{}", err.message);
    }

    #[test]
    fn empty_strings_count_as_absent() {
        let o = object(r#"{"a":"","b":"x","c":5}"#);
        assert_eq!(o.opt_string("a").unwrap(), None);
        assert!(o.string("a").is_err());
        assert_eq!(o.string("b").unwrap(), "x");
        assert!(o.opt_string("c").is_err());
    }
}
