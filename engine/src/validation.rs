//! Record validation against a resource's JSON Schema (the `jsonschema` crate).
//!
//! Inserts are checked against the schema as written; updates carry only some fields,
//! so they are checked against the same schema with its top-level `required` removed.
//! Errors name the field path (`author: "author" is a required property`).
//!
//! Validation is the engine's cargo feature `json-schema` (on by default). A build without
//! it (the JS hosts' lean module) refuses a config that sets a `schema` with a config
//! error that says so, instead of accepting records it cannot check.

use std::fmt;

use serde_json::Value;

/// A compiled schema.
#[cfg(feature = "json-schema")]
type Validator = jsonschema::Validator;
/// Without the feature no schema compiles (`compile` always fails), so there is no
/// validator: the type has no values and the checks cannot be reached.
#[cfg(not(feature = "json-schema"))]
type Validator = std::convert::Infallible;

/// A compiled record schema.
pub struct RecordSchema {
    full: Validator,
    partial: Validator,
}

/// The config error of a build without the `json-schema` feature.
pub const UNSUPPORTED: &str = "JSON Schema validation is not compiled into this build \
     (engine cargo feature `json-schema`; the JS hosts' lean module leaves it out): \
     remove `schema` or use the full build";

impl fmt::Debug for RecordSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordSchema")
    }
}

/// Most problems listed in one VALIDATION_ERROR message.
#[cfg(feature = "json-schema")]
const MAX_REPORTED: usize = 5;

impl RecordSchema {
    /// Compile a schema; the error says what is wrong with it.
    #[cfg(not(feature = "json-schema"))]
    pub fn compile(_schema: &Value) -> Result<RecordSchema, String> {
        Err(UNSUPPORTED.into())
    }

    /// Compile a schema; the error says what is wrong with it.
    #[cfg(feature = "json-schema")]
    pub fn compile(schema: &Value) -> Result<RecordSchema, String> {
        #[cfg(test)]
        crate::compile_count::schema();
        if !schema.is_object() {
            return Err("must be a JSON Schema object".into());
        }
        let full = jsonschema::validator_for(schema)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        let mut relaxed = schema.clone();
        if let Some(m) = relaxed.as_object_mut() {
            m.shift_remove("required");
        }
        let partial = jsonschema::validator_for(&relaxed)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))?;
        Ok(RecordSchema { full, partial })
    }

    /// Check a full record (insert).
    pub fn check_insert(&self, data: &Value) -> Result<(), String> {
        report(&self.full, data)
    }

    /// Check a partial record (update).
    pub fn check_update(&self, patch: &Value) -> Result<(), String> {
        report(&self.partial, patch)
    }
}

#[cfg(not(feature = "json-schema"))]
fn report(v: &Validator, _: &Value) -> Result<(), String> {
    match *v {}
}

#[cfg(feature = "json-schema")]
fn report(v: &Validator, data: &Value) -> Result<(), String> {
    let mut problems: Vec<String> = Vec::new();
    let mut total = 0;
    for e in v.iter_errors(data) {
        total += 1;
        if problems.len() < MAX_REPORTED {
            let pointer = e.instance_path().as_str().to_string();
            let mut path = pointer.trim_start_matches('/').replace('/', ".");
            // A missing property is reported on its parent; name the property itself.
            if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
                if let Some(p) = property.as_str() {
                    path = if path.is_empty() {
                        p.to_string()
                    } else {
                        format!("{path}.{p}")
                    };
                }
            }
            let path = if path.is_empty() {
                "data".to_string()
            } else {
                path
            };
            problems.push(format!("{path}: {e}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut msg = problems.join("; ");
    if total > MAX_REPORTED {
        msg.push_str(&format!(" (and {} more)", total - MAX_REPORTED));
    }
    Err(msg)
}

#[cfg(all(test, feature = "json-schema"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> RecordSchema {
        RecordSchema::compile(&json!({
            "type": "object",
            "properties": {
                "content": {"type": "string", "maxLength": 5},
                "author": {"type": "string"},
                "meta": {"type": "object", "properties": {"n": {"type": "integer"}}}
            },
            "required": ["content", "author"]
        }))
        .unwrap()
    }

    #[test]
    fn insert_errors_name_field_paths() {
        let s = schema();
        assert!(s
            .check_insert(&json!({"content":"hi","author":"a"}))
            .is_ok());
        let e = s
            .check_insert(&json!({"content":"toolong","meta":{"n":"x"}}))
            .unwrap_err();
        assert!(e.contains("content:"), "{e}");
        assert!(e.contains("meta.n:"), "{e}");
        assert!(e.contains("author: "), "{e}");
    }

    #[test]
    fn updates_skip_required() {
        let s = schema();
        assert!(s.check_update(&json!({"author":"b"})).is_ok());
        assert!(s.check_update(&json!({"content":5})).is_err());
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(RecordSchema::compile(&json!(5)).is_err());
        assert!(RecordSchema::compile(&json!({"type": 12})).is_err());
    }
}
