//! Row-level guards: CEL expressions over `user`, `filter`, `data`, `record` and `id`.
//!
//! A guard yields one of three outcomes, exactly like the s3db.js JavaScript guards:
//! `true` → allow, `false` (or `null`) → deny (`FORBIDDEN`), a map → allow with that
//! map as a forced filter. For example
//! `user != null && user.role == 'admin' ? true : {'ownerId': user.id}`.
//! An evaluation error (a missing field, a type mismatch) denies: guards fail closed.
//! Expressions are compiled once, when the config is loaded (CEL via the `cel` crate),
//! against one shared standard environment ([`GuardEnv`]).
//!
//! Variables are converted to CEL values before evaluation. A value used by many
//! evaluations (a connection's user, the record of a change fanned out to every
//! subscriber) can be converted once as a [`GuardValue`] and passed to
//! [`Guard::evaluate_values`]; [`Guard::evaluate`] converts JSON on every call.

use std::fmt;
use std::sync::Arc;

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde_json::{Map, Value};

use crate::filter::Filter;

pub use crate::vocabulary::GuardAction;

/// What a guard decided.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardOutcome {
    /// Go ahead.
    Allow,
    /// Refuse (`FORBIDDEN`).
    Deny,
    /// Go ahead, restricted to records matching this filter.
    Filter(Value),
}

/// The variables a guard sees.
#[derive(Debug, Clone, Default)]
pub struct GuardContext<'a> {
    /// The user (`{id, role, scopes, ...claims}`) or `None` when anonymous (`null`).
    pub user: Option<&'a Value>,
    /// The client's filter, if any.
    pub filter: Option<&'a Value>,
    /// The data sent (create/update).
    pub data: Option<&'a Value>,
    /// The stored record (update/delete/read).
    pub record: Option<&'a Value>,
    /// The record id (get/update/delete).
    pub id: Option<&'a str>,
}

/// The CEL standard environment guards run in (its functions, types and macros). Building
/// it registers every standard overload, so it is built once and shared by every guard.
#[derive(Clone)]
pub struct GuardEnv(Arc<cel::Env>);

impl GuardEnv {
    /// A fresh standard environment.
    pub fn new() -> GuardEnv {
        GuardEnv(Arc::new(cel::Env::stdlib()))
    }
}

impl Default for GuardEnv {
    fn default() -> Self {
        GuardEnv::new()
    }
}

impl fmt::Debug for GuardEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardEnv")
    }
}

/// A guard variable converted to a CEL value once, to be shared by any number of
/// evaluations. A value that cannot be converted keeps the error: every evaluation that
/// uses it fails (and so denies), as converting it on each evaluation would.
#[derive(Debug, Clone)]
pub struct GuardValue(Result<Arc<dyn Val>, String>);

impl GuardValue {
    /// Convert a JSON value; `None` is CEL `null`.
    pub fn new(v: Option<&Value>) -> GuardValue {
        let converted = match v {
            None => Ok(cel::Value::Null),
            Some(v) => cel::to_value(v).map_err(|e| e.to_string()),
        };
        GuardValue::from_cel(converted)
    }

    /// CEL `null`.
    pub fn null() -> GuardValue {
        GuardValue::from_cel(Ok(cel::Value::Null))
    }

    /// A CEL string (the `id` variable); `None` is `null`.
    pub fn string(s: Option<&str>) -> GuardValue {
        GuardValue::from_cel(Ok(s.map_or(cel::Value::Null, |s| {
            cel::Value::String(s.to_string().into())
        })))
    }

    fn from_cel(v: Result<cel::Value, String>) -> GuardValue {
        GuardValue(v.and_then(|v| {
            Box::<dyn Val>::try_from(v)
                .map(Arc::from)
                .map_err(|e| e.to_string())
        }))
    }

    fn val(&self) -> Result<&dyn Val, String> {
        self.0.as_deref().map_err(Clone::clone)
    }
}

/// The variables of one evaluation, already converted (see [`GuardValue`]).
#[derive(Debug, Clone, Copy)]
pub struct GuardValues<'a> {
    /// `user`.
    pub user: &'a GuardValue,
    /// `filter`.
    pub filter: &'a GuardValue,
    /// `data`.
    pub data: &'a GuardValue,
    /// `record`.
    pub record: &'a GuardValue,
    /// `id`.
    pub id: &'a GuardValue,
}

/// Hands the converted values to the interpreter by reference (no copy per evaluation).
struct Resolver<'a> {
    user: &'a dyn Val,
    filter: &'a dyn Val,
    data: &'a dyn Val,
    record: &'a dyn Val,
    id: &'a dyn Val,
}

impl VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = match variable {
            "user" => self.user,
            "filter" => self.filter,
            "data" => self.data,
            "record" => self.record,
            "id" => self.id,
            _ => return None,
        };
        Some(CowVal::Borrowed(v))
    }
}

/// A compiled guard expression.
pub struct Guard {
    source: String,
    program: cel::Program,
    env: GuardEnv,
    uses_record: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("source", &self.source)
            .finish()
    }
}

impl Guard {
    /// Compile an expression (with an environment of its own); the error names the
    /// problem.
    pub fn compile(source: &str) -> Result<Guard, String> {
        Guard::compile_in(&GuardEnv::new(), source)
    }

    /// Compile an expression that runs in the shared environment `env`.
    pub fn compile_in(env: &GuardEnv, source: &str) -> Result<Guard, String> {
        #[cfg(test)]
        crate::compile_count::cel();
        let program = cel::Program::compile(source)
            .map_err(|e| format!("not a valid CEL expression: {e}"))?;
        // `.record` is CEL's root-qualified spelling of the same variable.
        let refs = program.references();
        let uses_record = refs.has_variable("record") || refs.has_variable(".record");
        Ok(Guard {
            source: source.to_string(),
            program,
            env: env.clone(),
            uses_record,
        })
    }

    /// The expression text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `record` (the engine fetches it first if so).
    pub fn uses_record(&self) -> bool {
        self.uses_record
    }

    /// Evaluate, converting the JSON variables first. Errors deny; the error text is for
    /// logs and metrics, never for clients.
    pub fn evaluate(&self, ctx: &GuardContext<'_>) -> Result<GuardOutcome, String> {
        let user = GuardValue::new(ctx.user);
        let filter = GuardValue::new(ctx.filter);
        let data = GuardValue::new(ctx.data);
        let record = GuardValue::new(ctx.record);
        let id = GuardValue::string(ctx.id);
        self.evaluate_values(&GuardValues {
            user: &user,
            filter: &filter,
            data: &data,
            record: &record,
            id: &id,
        })
    }

    /// Evaluate with variables converted beforehand; the same outcome as
    /// [`Guard::evaluate`] with the JSON they were converted from. A variable that
    /// failed to convert is an error (`user`'s first, then `filter`, `data`, `record`).
    pub fn evaluate_values(&self, values: &GuardValues<'_>) -> Result<GuardOutcome, String> {
        Ok(match self.evaluate_parsed(values)? {
            ParsedOutcome::Allow => GuardOutcome::Allow,
            ParsedOutcome::Deny => GuardOutcome::Deny,
            ParsedOutcome::Filter(json, _) => GuardOutcome::Filter(json),
        })
    }

    /// [`Guard::evaluate_values`], with a forced filter also returned parsed (the
    /// engine matches records with it instead of parsing the JSON again).
    pub(crate) fn evaluate_parsed(
        &self,
        values: &GuardValues<'_>,
    ) -> Result<ParsedOutcome, String> {
        let resolver = Resolver {
            user: values.user.val()?,
            filter: values.filter.val()?,
            data: values.data.val()?,
            record: values.record.val()?,
            id: values.id.val()?,
        };
        let mut c = cel::Context::with_env(Arc::clone(&self.env.0));
        c.set_variable_resolver(&resolver);
        let out = self.program.execute(&c).map_err(|e| e.to_string())?;
        match out {
            cel::Value::Bool(true) => Ok(ParsedOutcome::Allow),
            cel::Value::Bool(false) | cel::Value::Null => Ok(ParsedOutcome::Deny),
            cel::Value::Map(_) => {
                let json = out.json().map_err(|e| e.to_string())?;
                let json = canonical(json);
                let parsed = Filter::parse(&json)
                    .map_err(|e| format!("guard returned an invalid filter: {e}"))?;
                Ok(ParsedOutcome::Filter(json, parsed))
            }
            other => Err(format!(
                "a guard must return true, false or a filter map, got {:?}",
                other.type_of()
            )),
        }
    }
}

/// A [`GuardOutcome`] whose filter is also parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParsedOutcome {
    /// Go ahead.
    Allow,
    /// Refuse.
    Deny,
    /// Go ahead with this filter forced: its JSON (keys sorted) and its parsed form.
    Filter(Value, Filter),
}

/// Sort object keys recursively so a guard's map (unordered in CEL) always serializes
/// the same way: transcripts stay byte-identical.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// AND two filters (either may be absent/null).
pub fn and_filters(a: Option<&Value>, b: Option<&Value>) -> Option<Value> {
    let is_empty = |v: &&Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
    match (a.filter(|v| !is_empty(v)), b.filter(|v| !is_empty(v))) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(x), Some(y)) => {
            let mut m = Map::new();
            m.insert("$and".into(), Value::Array(vec![x.clone(), y.clone()]));
            Some(Value::Object(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, user: Option<Value>) -> Result<GuardOutcome, String> {
        let g = Guard::compile(src).unwrap();
        g.evaluate(&GuardContext {
            user: user.as_ref(),
            ..Default::default()
        })
    }

    #[test]
    fn three_outcomes() {
        let admin = json!({"id":"a","role":"admin"});
        let user = json!({"id":"u1","role":"user","tenantId":"t1"});
        let src = "user != null && user.role == 'admin' ? true : {'ownerId': user.id}";
        assert_eq!(eval(src, Some(admin)).unwrap(), GuardOutcome::Allow);
        assert_eq!(
            eval(src, Some(user.clone())).unwrap(),
            GuardOutcome::Filter(json!({"ownerId":"u1"}))
        );
        assert_eq!(eval("false", Some(user)).unwrap(), GuardOutcome::Deny);
    }

    #[test]
    fn errors_and_wrong_types_fail_closed() {
        assert!(eval("user.role == 'admin'", None).is_err());
        assert!(eval("42", None).is_err());
        assert!(eval("{'a': {'$regex': 1}}", None).is_err());
        assert!(Guard::compile("user.role ==").is_err());
    }

    #[test]
    fn record_use_is_detected() {
        assert!(Guard::compile("record.ownerId == user.id")
            .unwrap()
            .uses_record());
        assert!(!Guard::compile("user.role == 'admin'")
            .unwrap()
            .uses_record());
        // CEL's root-qualified spelling reads the same variable.
        let dotted = Guard::compile(".record.ownerId == user.id").unwrap();
        assert!(dotted.uses_record());
        let (user, record) = (json!({"id": "u1"}), json!({"ownerId": "u1"}));
        let ctx = GuardContext {
            user: Some(&user),
            record: Some(&record),
            ..GuardContext::default()
        };
        assert!(matches!(dotted.evaluate(&ctx), Ok(GuardOutcome::Allow)));
    }

    /// The plain way to run a guard: a fresh standard context per evaluation with the
    /// JSON variables bound in it (what `evaluate` did before values were shared).
    fn reference_outcome(g: &Guard, ctx: &GuardContext<'_>) -> Result<cel::Value, String> {
        let mut c = cel::Context::default();
        let var = |v: Option<&Value>| match v {
            None => cel::Value::Null,
            Some(v) => cel::to_value(v).unwrap(),
        };
        c.add_variable_from_value("user", var(ctx.user));
        c.add_variable_from_value("filter", var(ctx.filter));
        c.add_variable_from_value("data", var(ctx.data));
        c.add_variable_from_value("record", var(ctx.record));
        c.add_variable_from_value(
            "id",
            ctx.id.map_or(cel::Value::Null, |s| {
                cel::Value::String(s.to_string().into())
            }),
        );
        g.program.execute(&c).map_err(|e| e.to_string())
    }

    #[test]
    fn converted_values_give_the_outcomes_of_json_ones_and_can_be_reused() {
        let env = GuardEnv::new();
        let guards: Vec<Guard> = [
            "user != null && record.tenantId == user.tenantId",
            "user.role == 'admin' ? true : {'tenantId': user.tenantId}",
            "id == 'd1' && filter == null && data == null",
            "record.missing == 1",
            "[1, 2].exists(user, user == 2) && user.id == 'u1'",
        ]
        .iter()
        .map(|s| Guard::compile_in(&env, s).unwrap())
        .collect();
        let users = [
            Some(json!({"id":"u1","role":"user","tenantId":"t1","n":1.5,"tags":["a"]})),
            Some(json!({"id":"a","role":"admin","tenantId":"t2"})),
            None,
        ];
        let record = json!({"id":"d1","tenantId":"t1","meta":{"x":[1,{"y":null}]}});
        let converted_record = GuardValue::new(Some(&record));
        let id = GuardValue::string(Some("d1"));
        let null = GuardValue::null();
        for user in &users {
            let converted_user = GuardValue::new(user.as_ref());
            for g in &guards {
                let ctx = GuardContext {
                    user: user.as_ref(),
                    record: Some(&record),
                    id: Some("d1"),
                    ..Default::default()
                };
                let from_json = g.evaluate(&ctx);
                let reference = reference_outcome(g, &ctx);
                match (&from_json, &reference) {
                    (Ok(GuardOutcome::Allow), Ok(cel::Value::Bool(true)))
                    | (Ok(GuardOutcome::Deny), Ok(cel::Value::Bool(false)))
                    | (Ok(GuardOutcome::Filter(_)), Ok(cel::Value::Map(_))) => {}
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    other => panic!("{}: {other:?}", g.source()),
                }
                for _ in 0..2 {
                    let converted = g.evaluate_values(&GuardValues {
                        user: &converted_user,
                        filter: &null,
                        data: &null,
                        record: &converted_record,
                        id: &id,
                    });
                    assert_eq!(converted, from_json, "{} with {user:?}", g.source());
                }
            }
        }
    }

    #[test]
    fn filter_maps_are_canonical() {
        let out = eval("{'b': 1, 'a': {'z': 1, 'y': 2}}", None).unwrap();
        let GuardOutcome::Filter(f) = out else {
            panic!()
        };
        assert_eq!(f.to_string(), r#"{"a":{"y":2,"z":1},"b":1}"#);
    }

    #[test]
    fn and_filters_combines() {
        assert_eq!(and_filters(None, Some(&json!({}))), None);
        assert_eq!(
            and_filters(Some(&json!({"a":1})), None),
            Some(json!({"a":1}))
        );
        assert_eq!(
            and_filters(Some(&json!({"a":1})), Some(&json!({"b":2}))),
            Some(json!({"$and":[{"a":1},{"b":2}]}))
        );
    }
}
