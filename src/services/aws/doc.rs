//! Conversions between the SDK's `Document` (what S3 Vectors metadata and filters are) and
//! plain values. Written here: `aws_smithy_types::Document` has serde support only behind an
//! unstable cfg flag, so no crate converts it to and from `serde_json::Value`.
use aws_smithy_types::{Document, Number};
use serde_json::Value;

/// A number as an i64, when it is a whole number within range.
pub fn as_i64(d: &Document) -> Option<i64> {
    match d.as_number()? {
        Number::PosInt(u) => i64::try_from(*u).ok(),
        Number::NegInt(i) => Some(*i),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        Number::Float(_) => None,
    }
}

/// A number as an f64 (finite only).
pub fn as_f64(d: &Document) -> Option<f64> {
    let f = match d.as_number()? {
        Number::PosInt(u) => *u as f64,
        Number::NegInt(i) => *i as f64,
        Number::Float(f) => *f,
    };
    f.is_finite().then_some(f)
}

/// A JSON value as a Document.
pub fn from_json(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Document::Number(Number::PosInt(u)),
            (_, Some(i), _) => Document::Number(Number::NegInt(i)),
            (_, _, Some(f)) => Document::Number(Number::Float(f)),
            _ => Document::Null,
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(from_json).collect()),
        Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A Document as a JSON value (a non-finite float becomes null, as JSON has no such number).
pub fn to_json(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Document::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_round_trip_through_json() {
        let v = json!({"a": [1, -2, 2.5, "x", true, null], "b": {"c": "d"}});
        assert_eq!(to_json(&from_json(&v)), v);
    }

    #[test]
    fn versions_read_back_from_whole_floats() {
        assert_eq!(as_i64(&Document::Number(Number::Float(42.0))), Some(42));
        assert_eq!(as_i64(&Document::Number(Number::Float(4.5))), None);
        assert_eq!(as_i64(&Document::String("42".into())), None);
    }
}
