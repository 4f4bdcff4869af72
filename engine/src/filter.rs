//! Record filters: equality AND across fields, plus `$in`, `$ne`, `$gt`, `$gte`, `$lt`,
//! `$lte` and `$exists`.
//!
//! A filter is a JSON object `{field: condition, ...}`; every field must match. A field
//! may be a dotted path (`meta.owner`). A condition is either a literal (equality) or an
//! object of operators, all of which must hold. Numbers compare as numbers (`1 == 1.0`),
//! strings compare by code point, and ordering operators never match values of
//! different kinds. A top-level `$and: [filter, ...]` requires every listed filter
//! (the engine uses it to combine a client's filter with a guard's forced filter).

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A parsed, validated filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    path: Vec<String>,
    ops: Vec<Op>,
}

/// One condition on a field (see the module docs for how each compares).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal (`$eq` or a literal).
    Eq(Value),
    /// Not equal; a missing field matches (`$ne`).
    Ne(Value),
    /// Equal to one of the values (`$in`).
    In(Vec<Value>),
    /// Greater than (`$gt`; same-kind numbers or strings only).
    Gt(Value),
    /// Greater or equal (`$gte`).
    Gte(Value),
    /// Less than (`$lt`).
    Lt(Value),
    /// Less or equal (`$lte`).
    Lte(Value),
    /// Present (`true`) or absent (`false`) (`$exists`).
    Exists(bool),
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Largest number of clauses/operators a filter may have (keeps matching cost bounded).
pub const MAX_FILTER_TERMS: usize = 64;

impl Filter {
    /// Parse a filter object. `null` and `{}` give the empty filter (matches everything).
    pub fn parse(value: &Value) -> Result<Filter, FilterError> {
        let obj = match value {
            Value::Null => return Ok(Filter { clauses: vec![] }),
            Value::Object(o) => o,
            other => {
                return Err(FilterError(format!(
                    "`filter` must be an object, got {}",
                    crate::protocol::codec::json_kind(other)
                )))
            }
        };
        let mut clauses = Vec::with_capacity(obj.len());
        let mut terms = 0;
        for (field, cond) in obj {
            if field == "$and" {
                let Value::Array(parts) = cond else {
                    return Err(FilterError("`$and` needs an array of filters".into()));
                };
                for part in parts {
                    if !part.is_object() {
                        return Err(FilterError("`$and` items must be filter objects".into()));
                    }
                    let sub = Filter::parse(part)?;
                    terms += sub.clauses.iter().map(|c| c.ops.len()).sum::<usize>();
                    if terms > MAX_FILTER_TERMS {
                        return Err(FilterError(format!(
                            "filter has more than {MAX_FILTER_TERMS} conditions"
                        )));
                    }
                    clauses.extend(sub.clauses);
                }
                continue;
            }
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(FilterError(format!(
                    "invalid field path `{field}` in filter"
                )));
            }
            if field.starts_with('$') {
                return Err(FilterError(format!(
                    "unknown top-level operator `{field}`; filters are {{field: condition}}"
                )));
            }
            let path = field.split('.').map(str::to_string).collect();
            let ops = parse_condition(field, cond)?;
            terms += ops.len();
            if terms > MAX_FILTER_TERMS {
                return Err(FilterError(format!(
                    "filter has more than {MAX_FILTER_TERMS} conditions"
                )));
            }
            clauses.push(Clause { path, ops });
        }
        Ok(Filter { clauses })
    }

    /// Both filters: the same filter as parsing `{"$and": [a, b]}` from the JSON of
    /// `a` and `b`, so it fails the same way when together they have more than
    /// [`MAX_FILTER_TERMS`] conditions.
    pub fn and(&self, other: &Filter) -> Result<Filter, FilterError> {
        let terms: usize = self
            .clauses
            .iter()
            .chain(&other.clauses)
            .map(|c| c.ops.len())
            .sum();
        if terms > MAX_FILTER_TERMS {
            return Err(FilterError(format!(
                "filter has more than {MAX_FILTER_TERMS} conditions"
            )));
        }
        let mut clauses = Vec::with_capacity(self.clauses.len() + other.clauses.len());
        clauses.extend(self.clauses.iter().cloned());
        clauses.extend(other.clauses.iter().cloned());
        Ok(Filter { clauses })
    }

    /// The first field of this filter that reaches a `protected` path: the path itself,
    /// one of its parents (`meta` for `meta.secret`) or one of its children
    /// (`password.hash` for `password`), compared segment by segment. A client filter
    /// that reaches one could tell a protected value from its matches (a binary search
    /// with `$gte`), so the engine refuses it; guards' forced filters are not checked.
    pub fn protected_field(&self, protected: &[String]) -> Option<String> {
        self.clauses.iter().find_map(|c| {
            protected.iter().find_map(|p| {
                let p: Vec<&str> = p.split('.').collect();
                let n = p.len().min(c.path.len());
                let overlaps = c.path[..n].iter().zip(&p[..n]).all(|(a, b)| a == b);
                overlaps.then(|| c.path.join("."))
            })
        })
    }

    /// Every field path with its conditions (all must hold; `$and` is flattened). Stores
    /// use it to narrow a query in their own language before [`Filter::matches`] decides.
    pub fn clauses(&self) -> impl Iterator<Item = (&[String], &[Op])> {
        self.clauses
            .iter()
            .map(|c| (c.path.as_slice(), c.ops.as_slice()))
    }

    /// Whether the filter has no conditions.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether `record` matches every condition.
    pub fn matches(&self, record: &Value) -> bool {
        self.clauses.iter().all(|c| {
            let v = lookup(record, &c.path);
            c.ops.iter().all(|op| op.holds(v))
        })
    }

    /// Whether every condition of `other` is also a condition of this filter, so that
    /// any record this filter matches also matches `other` (a structural check: it may
    /// answer `false` for filters that are equivalent but written differently).
    pub fn implies(&self, other: &Filter) -> bool {
        other.clauses.iter().all(|c| self.clauses.contains(c))
    }

    /// Whether the filter is one top-level field compared by equality with a scalar
    /// (exactly what [`Filter::index_key`] indexes).
    pub fn is_single_equality(&self) -> bool {
        matches!(self.clauses.as_slice(), [c] if c.path.len() == 1
            && matches!(c.ops.as_slice(), [Op::Eq(v)] if scalar_key(v).is_some()))
    }

    /// The first top-level field compared by plain equality with a scalar, with its index
    /// key; used to index subscriptions so fan-out need not test every subscriber.
    pub fn index_key(&self) -> Option<(String, String)> {
        self.clauses.iter().find_map(|c| {
            if c.path.len() != 1 {
                return None;
            }
            c.ops.iter().find_map(|op| match op {
                Op::Eq(v) => scalar_key(v).map(|k| (c.path[0].clone(), k)),
                _ => None,
            })
        })
    }
}

/// Canonical key of a scalar for equality indexing: two scalars have the same key
/// exactly when [`values_equal`] holds for them (`1`, `1.0` and `1e0` share a key;
/// `1e16` and `10000000000000000` too), which is what lets a bucket hit prove an
/// equality filter.
pub fn scalar_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("s{s}")),
        Value::Bool(b) => Some(format!("b{b}")),
        Value::Null => Some("z".into()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(format!("n{i}"))
            } else if let Some(u) = n.as_u64() {
                Some(format!("n{u}"))
            } else {
                let f = n.as_f64()?;
                if f == 0.0 {
                    Some("n0".into()) // 0.0 and -0.0
                } else if f.fract() == 0.0 {
                    // An integral float: its exact integer digits, as an integer prints.
                    Some(format!("n{f:.0}"))
                } else {
                    // Never equal to an integer; distinct floats print differently.
                    Some(format!("n{f:e}"))
                }
            }
        }
        _ => None,
    }
}

fn parse_condition(field: &str, cond: &Value) -> Result<Vec<Op>, FilterError> {
    let Value::Object(ops) = cond else {
        return Ok(vec![Op::Eq(cond.clone())]);
    };
    if !ops.keys().any(|k| k.starts_with('$')) {
        // A plain object literal: equality with that object.
        return Ok(vec![Op::Eq(cond.clone())]);
    }
    let mut out = Vec::with_capacity(ops.len());
    for (op, arg) in ops {
        let parsed = match op.as_str() {
            "$eq" => Op::Eq(arg.clone()),
            "$ne" => Op::Ne(arg.clone()),
            "$in" => match arg {
                Value::Array(items) => Op::In(items.clone()),
                _ => return Err(FilterError(format!("`$in` on `{field}` needs an array"))),
            },
            "$gt" | "$gte" | "$lt" | "$lte" => {
                if !matches!(arg, Value::Number(_) | Value::String(_)) {
                    return Err(FilterError(format!(
                        "`{op}` on `{field}` needs a number or a string"
                    )));
                }
                match op.as_str() {
                    "$gt" => Op::Gt(arg.clone()),
                    "$gte" => Op::Gte(arg.clone()),
                    "$lt" => Op::Lt(arg.clone()),
                    _ => Op::Lte(arg.clone()),
                }
            }
            "$exists" => match arg {
                Value::Bool(b) => Op::Exists(*b),
                _ => {
                    return Err(FilterError(format!(
                        "`$exists` on `{field}` needs true or false"
                    )))
                }
            },
            other => {
                let (last, rest) = OPERATORS.split_last().unwrap_or((&"", &[]));
                return Err(FilterError(format!(
                    "unknown operator `{other}` on `{field}`; use {} or {last}",
                    rest.join(", ")
                )));
            }
        };
        out.push(parsed);
    }
    Ok(out)
}

/// Every comparison operator a filter condition may use, as spelled on the wire (the
/// client schema's list and the conformance coverage list are checked against it).
pub const OPERATORS: &[&str] = &["$eq", "$ne", "$in", "$gt", "$gte", "$lt", "$lte", "$exists"];

fn lookup<'a>(record: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = record;
    for part in path {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

impl Op {
    fn holds(&self, v: Option<&Value>) -> bool {
        match self {
            Op::Exists(want) => v.is_some() == *want,
            Op::Eq(x) => v.is_some_and(|v| values_equal(v, x)),
            Op::Ne(x) => !v.is_some_and(|v| values_equal(v, x)),
            Op::In(xs) => v.is_some_and(|v| xs.iter().any(|x| values_equal(v, x))),
            Op::Gt(x) => cmp(v, x) == Some(Ordering::Greater),
            Op::Gte(x) => matches!(cmp(v, x), Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt(x) => cmp(v, x) == Some(Ordering::Less),
            Op::Lte(x) => matches!(cmp(v, x), Some(Ordering::Less | Ordering::Equal)),
        }
    }
}

/// JSON equality where numbers compare by value and objects ignore key order.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len()
        && x.iter()
            .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
}

/// Numbers compare by their exact value: integers never go through a lossy `f64`
/// conversion, so equality is transitive and agrees with [`scalar_key`]
/// (`9007199254740993` ≠ `9007199254740992.0`, while `1e16` = `10000000000000000`).
fn num_cmp(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    match (int_of(x), int_of(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        (Some(a), None) => int_float_cmp(a, y.as_f64()?),
        (None, Some(b)) => int_float_cmp(b, x.as_f64()?).map(Ordering::reverse),
        (None, None) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// A JSON integer (i64 or u64) as i128.
fn int_of(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Exact comparison of an integer (|n| < 2^64) with a float.
fn int_float_cmp(n: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // Beyond ±1e38 (and infinities) the float is out of reach of any 64-bit integer.
    if f >= 1e38 {
        return Some(Ordering::Less);
    }
    if f <= -1e38 {
        return Some(Ordering::Greater);
    }
    let floor = f.floor();
    // Exact: floor is integral and far inside i128.
    match n.cmp(&(floor as i128)) {
        // n == floor(f): equal if f is integral, otherwise n < f.
        Ordering::Equal if f == floor => Some(Ordering::Equal),
        Ordering::Equal => Some(Ordering::Less),
        // n < floor(f) <= f, or n >= floor(f) + 1 > f.
        other => Some(other),
    }
}

fn cmp(v: Option<&Value>, x: &Value) -> Option<Ordering> {
    match (v?, x) {
        (Value::Number(a), Value::Number(b)) => num_cmp(a, b),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(filter: Value, record: Value) -> bool {
        Filter::parse(&filter).unwrap().matches(&record)
    }

    #[test]
    fn a_filter_reaching_a_protected_path_its_parent_or_child_is_found() {
        let protected = vec!["password".to_string(), "meta.internal".to_string()];
        let field = |v: Value| Filter::parse(&v).unwrap().protected_field(&protected);
        assert_eq!(
            field(json!({"password": {"$gte": "T"}})),
            Some("password".into())
        );
        assert_eq!(
            field(json!({"password.hash": 1})),
            Some("password.hash".into())
        );
        assert_eq!(field(json!({"meta": {"internal": 1}})), Some("meta".into()));
        assert_eq!(
            field(json!({"meta.internal": {"$exists": true}})),
            Some("meta.internal".into())
        );
        assert_eq!(
            field(json!({"$and": [{"id": "x"}, {"meta.internal.a": 1}]})),
            Some("meta.internal.a".into())
        );
        assert_eq!(
            field(json!({"id": "x", "meta.owner": "a", "passwords": 1})),
            None
        );
        assert_eq!(field(json!({})), None);
    }

    #[test]
    fn equality_and_across_fields() {
        assert!(m(json!({"a":1,"b":"x"}), json!({"a":1,"b":"x","c":2})));
        assert!(!m(json!({"a":1,"b":"x"}), json!({"a":1,"b":"y"})));
        assert!(m(json!({"a":1}), json!({"a":1.0})));
        assert!(m(json!({}), json!({"anything":true})));
        assert!(m(json!(null), json!({})));
    }

    #[test]
    fn and_combines_filters() {
        let f = json!({"$and":[{"a":1},{"b":{"$gt":1}}]});
        assert!(m(f.clone(), json!({"a":1,"b":2})));
        assert!(!m(f, json!({"a":1,"b":1})));
    }

    #[test]
    fn nested_paths_and_object_literals() {
        assert!(m(
            json!({"meta.owner":"u1"}),
            json!({"meta":{"owner":"u1"}})
        ));
        assert!(!m(json!({"meta.owner":"u1"}), json!({"meta":"u1"})));
        assert!(m(json!({"o":{"b":2,"a":1}}), json!({"o":{"a":1,"b":2}})));
    }

    #[test]
    fn every_operator() {
        let r = json!({"n":5,"s":"m","t":true});
        assert!(m(json!({"n":{"$in":[1,5]}}), r.clone()));
        assert!(!m(json!({"n":{"$in":[1,2]}}), r.clone()));
        assert!(m(json!({"n":{"$ne":4}}), r.clone()));
        assert!(!m(json!({"n":{"$ne":5}}), r.clone()));
        assert!(m(json!({"missing":{"$ne":5}}), r.clone()));
        assert!(m(json!({"n":{"$gt":4,"$lt":6}}), r.clone()));
        assert!(m(json!({"n":{"$gte":5,"$lte":5}}), r.clone()));
        assert!(!m(json!({"n":{"$gt":5}}), r.clone()));
        assert!(m(json!({"s":{"$gt":"a","$lt":"z"}}), r.clone()));
        assert!(
            !m(json!({"s":{"$gt":1}}), r.clone()),
            "mixed kinds never order"
        );
        assert!(m(json!({"s":{"$exists":true}}), r.clone()));
        assert!(m(json!({"x":{"$exists":false}}), r.clone()));
        assert!(!m(json!({"x":{"$exists":true}}), r.clone()));
        assert!(m(json!({"t":{"$eq":true}}), r));
    }

    #[test]
    fn bad_filters_are_refused_with_reasons() {
        for (f, needle) in [
            (json!([1]), "must be an object"),
            (json!({"a":{"$regex":"x"}}), "unknown operator `$regex`"),
            (json!({"a":{"$in":1}}), "needs an array"),
            (json!({"a":{"$gt":[1]}}), "number or a string"),
            (json!({"a":{"$exists":1}}), "true or false"),
            (json!({"$or":[]}), "top-level operator"),
            (json!({"$and":{}}), "needs an array"),
            (json!({"$and":[1]}), "filter objects"),
            (json!({"a..b":1}), "invalid field path"),
        ] {
            let e = Filter::parse(&f).unwrap_err();
            assert!(e.0.contains(needle), "{f}: {e}");
        }
    }

    #[test]
    fn index_key_picks_first_scalar_equality() {
        let f = Filter::parse(&json!({"n":{"$gt":1},"channel":"general"})).unwrap();
        assert_eq!(
            f.index_key(),
            Some(("channel".to_string(), "sgeneral".to_string()))
        );
        assert_eq!(scalar_key(&json!(1)), scalar_key(&json!(1.0)));
        assert_eq!(Filter::parse(&json!({"a.b":1})).unwrap().index_key(), None);
    }

    #[test]
    fn number_equality_is_exact_and_agrees_with_index_keys() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(0), json!(-0.0), true),
            (json!(10_000_000_000_000_000_i64), json!(1e16), true),
            (
                json!(9_007_199_254_740_992_i64),
                json!(9_007_199_254_740_992.0),
                true,
            ),
            // 2^53 + 1 has no f64; it must not equal its rounded neighbour.
            (
                json!(9_007_199_254_740_993_i64),
                json!(9_007_199_254_740_992.0),
                false,
            ),
            (json!(u64::MAX), json!(18_446_744_073_709_551_615.0), false),
            (json!(u64::MAX), json!(-1), false),
            (json!(2), json!(2.5), false),
            (json!(1.5), json!(1.5), true),
            (json!(0.1), json!(0.30000000000000004), false),
        ];
        for (a, b, eq) in cases {
            assert_eq!(values_equal(&a, &b), eq, "{a} == {b}");
            assert_eq!(values_equal(&b, &a), eq, "{b} == {a}");
            assert_eq!(scalar_key(&a) == scalar_key(&b), eq, "keys of {a} and {b}");
        }
        let ord = |a: Value, b: Value| match (a, b) {
            (Value::Number(x), Value::Number(y)) => num_cmp(&x, &y),
            _ => unreachable!(),
        };
        assert_eq!(ord(json!(2), json!(2.5)), Some(Ordering::Less));
        assert_eq!(ord(json!(3), json!(2.5)), Some(Ordering::Greater));
        assert_eq!(ord(json!(-3), json!(-2.5)), Some(Ordering::Less));
        assert_eq!(ord(json!(-2), json!(-2.5)), Some(Ordering::Greater));
        assert_eq!(ord(json!(u64::MAX), json!(1e300)), Some(Ordering::Less));
        assert_eq!(ord(json!(i64::MIN), json!(-1e300)), Some(Ordering::Greater));
        assert_eq!(
            ord(
                json!(9_007_199_254_740_993_i64),
                json!(9_007_199_254_740_992.0)
            ),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn implies_is_clause_containment() {
        let p = |v: Value| Filter::parse(&v).unwrap();
        let forced = p(json!({"tenantId":"t1"}));
        let both = p(json!({"$and":[{"n":{"$gt":1}},{"tenantId":"t1"}]}));
        assert!(both.implies(&forced));
        assert!(forced.implies(&forced));
        assert!(!forced.implies(&both));
        assert!(!p(json!({"tenantId":"t2"})).implies(&forced));
        assert!(forced.implies(&p(json!({}))));
        assert!(!p(json!({})).implies(&forced));
    }

    #[test]
    fn too_many_terms_refused() {
        let mut o = Map::new();
        for i in 0..(MAX_FILTER_TERMS + 1) {
            o.insert(format!("f{i}"), json!(i));
        }
        assert!(Filter::parse(&Value::Object(o)).is_err());
    }

    #[test]
    fn and_of_parsed_filters_equals_parsing_their_and() {
        let many = |n: usize, prefix: &str| {
            let mut o = Map::new();
            for i in 0..n {
                o.insert(format!("{prefix}{i}"), json!(i));
            }
            Value::Object(o)
        };
        let cases = [
            (json!({"a": 1}), json!({"b": {"$gte": 2, "$lt": 5}})),
            (json!({}), json!({"t": "x"})),
            (
                json!({"$and": [{"a": 1}, {"c": {"$in": [1, 2]}}]}),
                json!({"$and": []}),
            ),
            (many(40, "x"), many(24, "y")),
            (many(40, "x"), many(25, "y")),
        ];
        for (a, b) in cases {
            let joined = Filter::parse(&json!({"$and": [a.clone(), b.clone()]}));
            let and = Filter::parse(&a).unwrap().and(&Filter::parse(&b).unwrap());
            assert_eq!(and, joined, "{a} AND {b}");
        }
    }
}
